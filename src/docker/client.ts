// The Docker engine as the rest of the service sees it: a small interface, so that decisions and
// remediations never import dockerode and unit tests can use a fake.
import { CONTAINER_LABELS } from '../core/labels.js';
import { checkSelector, resolveTarget, type TargetResolution } from '../core/targets.js';
import type { ContainerView, HealthStatus, TargetSelector } from '../core/types.js';
import type { SwarmService, SwarmTask } from '../core/swarm-rules.js';

export interface ContainerSummary extends ContainerView {
  readonly image: string;
  readonly status: string;
  readonly created: number;
  /** HostConfig.NetworkMode as the listing gives it (`container:ID` for one in another's namespace). */
  readonly networkMode?: string | undefined;
}

export interface ContainerDetails extends ContainerView {
  readonly image: string;
  readonly running: boolean;
  readonly exitCode: number;
  readonly oomKilled: boolean;
  readonly finishedAt?: number | undefined;
  readonly restartPolicy: string;
  readonly hasHealthCheck: boolean;
  readonly logPath?: string | undefined;
  readonly lastHealthOutput?: string | undefined;
  /** HostConfig.NetworkMode: `none`, `bridge`, a network's name, `container:ID` (another's namespace). */
  readonly networkMode?: string | undefined;
  /** The id of the image it runs (`sha256:…`): what its tag named when it was created. */
  readonly imageId?: string | undefined;
}

/** A local image: its id and the `repository@digest` lines the engine keeps for each registry it came from. */
export interface ImageInfo {
  readonly id: string;
  readonly repoDigests: ReadonlyArray<string>;
  /** The tags that name it (`repo:tag`); none once a pull has moved its tag to a newer image. */
  readonly repoTags?: ReadonlyArray<string> | undefined;
}

/** Credentials for a registry, as the engine takes them for a pull (X-Registry-Auth). */
export interface RegistryCredentials {
  readonly username: string;
  readonly password: string;
  readonly serveraddress: string;
}

/** What pull() did: the id of the image the reference now names, or why the engine could not pull it. */
export type PullOutcome = { readonly id: string } | { readonly failed: true; readonly detail: string };

/**
 * A container's create body rebuilt from its inspect (definition()), for create(): the engine's own
 * shapes, passed through as they are. Only the network mode is read and changed outside the client
 * (a container in another's namespace is re-created against that one's new id).
 */
export interface ContainerDefinition {
  readonly image: string;
  readonly networkMode: string;
  /** Config's fields (Image, Cmd, Entrypoint, Env, Labels, Healthcheck, …) without the engine's own Hostname. */
  readonly config: Readonly<Record<string, unknown>>;
  /** HostConfig as inspect gave it (mounts, restart policy, resources, …). */
  readonly hostConfig: Readonly<Record<string, unknown>>;
  /** The networks it is attached to, by name, without the per-container runtime fields. */
  readonly endpoints: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

/** What create() did: the new container's id, or why the engine refused (no throw for these two). */
export type CreateOutcome =
  | { readonly id: string }
  | { readonly refused: 'no_such_image' | 'name_in_use'; readonly detail: string };

/** An inspected container (a lookup by name inspects; a listing of a service or project does not). */
export const isDetails = (c: ContainerView): c is ContainerDetails => 'hasHealthCheck' in c;

export interface DockerEvent {
  readonly action: string;
  readonly id: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly attributes: Readonly<Record<string, string>>;
  /** Milliseconds since the epoch, from the engine's timeNano. */
  readonly time: number;
  readonly timeNano: bigint;
}

export type PruneKind = 'containers' | 'images' | 'networks' | 'volumes' | 'build';

export interface PruneReport {
  readonly kind: PruneKind;
  readonly deleted: ReadonlyArray<string>;
  readonly reclaimedBytes: number;
}

export interface PruneFilters {
  readonly until?: string;
  readonly labelNot?: ReadonlyArray<string>;
  readonly danglingOnly?: boolean;
}

// A Swarm service and its tasks are core's vocabulary (the Swarm rules judge them); the client maps
// the engine's answers into them.
export type { SwarmService, SwarmTask } from '../core/swarm-rules.js';

/** What an update of a service did: `out_of_date` when its version moved meanwhile (someone else updated it). */
export type ServiceUpdateOutcome = 'updated' | 'gone' | 'out_of_date' | 'no_previous_spec' | 'not_replicated';

export type StopOutcome = 'stopped' | 'already_stopped' | 'gone';
export type StartOutcome = 'started' | 'already_running' | 'gone';

export interface DockerClient {
  ping(): Promise<void>;
  /** Containers, with health parsed from the status; one API call. */
  listContainers(opts?: { all?: boolean; labels?: ReadonlyArray<string> }): Promise<ContainerSummary[]>;
  /**
   * undefined when the container does not exist. Give it an id from a listing, never a caller's text:
   * the engine reads any hex text as an id prefix (use lookupContainer for a name someone typed).
   */
  inspect(idOrName: string): Promise<ContainerDetails | undefined>;
  restart(id: string, stopTimeoutSec: number): Promise<'restarted' | 'gone'>;
  stop(id: string, stopTimeoutSec: number): Promise<StopOutcome>;
  start(id: string): Promise<StartOutcome>;
  kill(id: string): Promise<'killed' | 'not_running' | 'gone'>;
  /** Removes a stopped container (a running one too with force); reports the bytes its writable layer held. */
  remove(id: string, opts?: { force?: boolean }): Promise<{ removed: boolean; reclaimedBytes: number }>;
  /** The body that would create this container again; undefined when it does not exist. */
  definition(id: string): Promise<ContainerDefinition | undefined>;
  /** Creates (does not start) a container of this name from a definition. */
  create(name: string, definition: ContainerDefinition): Promise<CreateOutcome>;
  rename(id: string, newName: string): Promise<'renamed' | 'gone' | 'name_in_use'>;
  prune(kind: PruneKind, filters: PruneFilters): Promise<PruneReport>;
  /** The local image a reference or id names; undefined when there is none. */
  imageInfo(ref: string): Promise<ImageInfo | undefined>;
  /**
   * Removes an image by its id, never by force: `in_use` when a container (running or not) still uses
   * it or the engine refuses for another reason it names as a conflict.
   */
  removeImage(id: string): Promise<'removed' | 'in_use' | 'gone'>;
  /** Pulls an image reference (credentials when the registry needs them); engine failures throw. */
  pull(ref: string, credentials?: RegistryCredentials): Promise<PullOutcome>;
  /** This engine's part in a Swarm, from /info: a manager can act on services. */
  swarmRole(): Promise<'manager' | 'worker' | 'none'>;
  /** The services of the Swarm (managers only; throws on a worker). */
  listServices(): Promise<SwarmService[]>;
  /** A service's tasks (every service's, without an id), every state, as the manager keeps them. */
  listTasks(serviceId?: string): Promise<SwarmTask[]>;
  /** Restarts every task: the current spec with TaskTemplate.ForceUpdate incremented, at `version`. */
  forceUpdate(serviceId: string, version: number): Promise<ServiceUpdateOutcome>;
  /** Back to the spec before the last update (the engine's own rollback), at `version`. */
  rollbackService(serviceId: string, version: number): Promise<ServiceUpdateOutcome>;
  /** Sets a replicated service's Replicas (the rest of its spec as it is), at `version`. */
  scaleService(serviceId: string, version: number, replicas: number): Promise<ServiceUpdateOutcome>;
  /**
   * What changes on a Swarm manager, as it happens (a service created, updated or removed; a task's
   * container on this node exiting), one line each, until the signal aborts or the stream ends.
   */
  swarmChanges(signal: AbortSignal): AsyncIterable<string>;
  /** Container events, parsed line by line, until the signal aborts or the stream ends. */
  events(opts: { since?: number; signal: AbortSignal }): AsyncIterable<DockerEvent>;
}

export const parseHealth = (status: string | undefined): HealthStatus => {
  if (!status) return 'none';
  if (status.includes('(unhealthy)')) return 'unhealthy';
  if (status.includes('(healthy)')) return 'healthy';
  if (status.includes('health: starting')) return 'starting';
  return 'none';
};

/** An error from the engine that says the container or object does not exist. */
export const isNotFound = (err: unknown): boolean => (err as { statusCode?: number })?.statusCode === 404;

/**
 * A container reference the client refused to put in a URL (empty, `.`, `..`, or with a `/`): the
 * engine would read it as another path. Inputs check names first (core/names.ts), so this is a last
 * line of defence; it means the text was the caller's mistake, not an engine failure.
 */
export class InvalidReferenceError extends Error {
  override readonly name = 'InvalidReferenceError';
}

type Lookup = Pick<DockerClient, 'listContainers' | 'inspect'>;

/**
 * The container a caller's text names, looked up the one safe way: the text is checked against
 * Docker's grammar (no engine call when it fails), matched against one listing (names exactly; ids as
 * the full id or a unique prefix of 12 or more), and the match is inspected by its full id. Never
 * `inspect(text)`: the engine reads any hex text as an id prefix, so `df` would find `df4b…`.
 * Throws only when the engine fails.
 */
export async function lookupContainer(
  docker: Lookup,
  text: string,
): Promise<TargetResolution<ContainerDetails>> {
  const target: TargetSelector = { kind: 'container', name: text };
  const checked = checkSelector(target);
  if (!checked.ok) return checked;
  const listed = resolveTarget(target, await docker.listContainers({ all: true }));
  if (!listed.ok) return listed;
  const found = listed.containers[0];
  const details = found && (await docker.inspect(found.id));
  if (!details) {
    return {
      ok: false,
      reason: 'target_not_found',
      detail: `no container named "${found?.name ?? text}" any more`,
    };
  }
  return { ok: true, containers: [details] };
}

/**
 * The containers a selector names: a container through lookupContainer, a Compose service or project
 * from one listing filtered by its label, resolved by core's resolveTarget. Names that break the
 * grammar never reach the engine.
 */
export async function lookupTargets(
  docker: Lookup,
  target: TargetSelector,
): Promise<TargetResolution<ContainerDetails | ContainerSummary>> {
  if (target.kind === 'container') return lookupContainer(docker, target.name);
  const checked = checkSelector(target);
  if (!checked.ok) return checked;
  const label =
    target.kind === 'service'
      ? `${CONTAINER_LABELS.composeService}=${target.service}`
      : target.kind === 'project'
        ? `${CONTAINER_LABELS.composeProject}=${target.project}`
        : undefined;
  if (label === undefined) return resolveTarget(target, []);
  return resolveTarget(target, await docker.listContainers({ all: true, labels: [label] }));
}
