// DockerClient on dockerode. Every single call carries its own AbortSignal timeout; the event stream
// carries none (a quiet stream is healthy) and is parsed line by line so it never buffers whole.
// The engine is root on the host, so what this client sends is held tight: a container reference is
// one encoded URL path segment or refused, requests never follow a redirect, and every error of a
// connection ends as a rejected call, never as an unhandled 'error' event.
import http from 'node:http';
import https from 'node:https';
import { createInterface } from 'node:readline';
import { addAbortSignal } from 'node:stream';
import Docker from 'dockerode';
import { parseContainerRef, quoteInput } from '../core/names.js';
import type { HealthStatus } from '../core/types.js';
import {
  type ContainerDefinition,
  type ContainerDetails,
  type ContainerSummary,
  type CreateOutcome,
  type DockerClient,
  type DockerEvent,
  type ImageInfo,
  InvalidReferenceError,
  isNotFound,
  type PruneFilters,
  type PruneKind,
  type PruneReport,
  type PullOutcome,
  parseHealth,
  type RegistryCredentials,
  type ServiceUpdateOutcome,
  type StartOutcome,
  type StopOutcome,
  type SwarmService,
  type SwarmTask,
} from './client.js';

export const WATCHED_EVENTS = ['health_status', 'die', 'oom', 'start', 'destroy', 'kill', 'stop'] as const;

/** dockerode connection options from a DOCKER_HOST value (unix:///path or tcp://host:port). */
export function dockerOptions(dockerHost: string): Docker.DockerOptions {
  const url = new URL(dockerHost);
  if (url.protocol === 'unix:') return { socketPath: url.pathname };
  const protocol = url.protocol === 'https:' ? 'https' : 'http';
  return { host: url.hostname, port: Number(url.port || (protocol === 'https' ? 2376 : 2375)), protocol };
}

/**
 * A container name or id as one URL path segment. dockerode pastes it into `/containers/<id>/json` as
 * it stands, and the engine cleans the path after decoding it: `..`, `.` or a `/` (even as `%2F`)
 * would make it another path, which the engine answers with a redirect. Those are refused; anything
 * else is percent-encoded, so a space or `?` stays inside the segment.
 */
export function pathSegment(ref: string): string {
  if (ref === '' || ref === '.' || ref === '..' || ref.includes('/')) {
    throw new InvalidReferenceError(`${quoteInput(ref)} cannot name a container in an engine URL`);
  }
  try {
    return encodeURIComponent(ref);
  } catch {
    // A lone UTF-16 surrogate cannot be encoded.
    throw new InvalidReferenceError(`${quoteInput(ref)} cannot name a container in an engine URL`);
  }
}

/**
 * An image reference (`host:port/path/name:tag`, `name@sha256:…`) or id as it goes into an engine
 * path. Unlike a container it has slashes, so it is not encoded but held to the characters Docker's
 * reference grammar allows, with no empty, `.` or `..` path part: nothing the engine could read as
 * another path or a query.
 */
export function imagePath(ref: string): string {
  const parts = ref.split('/');
  if (
    ref.length > 512 ||
    !/^[A-Za-z0-9._:@/+-]+$/.test(ref) ||
    parts.some((p) => p === '' || p === '.' || p === '..')
  ) {
    throw new InvalidReferenceError(`${quoteInput(ref)} cannot name an image in an engine URL`);
  }
  return ref;
}

/** The repository and the tag (or digest) of a reference, as the engine's pull takes them apart. */
export function pullParams(ref: string): { fromImage: string; tag: string } {
  const at = ref.indexOf('@');
  if (at >= 0) return { fromImage: ref.slice(0, at), tag: ref.slice(at + 1) };
  const colon = ref.lastIndexOf(':');
  // A colon before the last slash is a registry's port, not a tag; without a tag the engine would pull every tag.
  if (colon > ref.lastIndexOf('/')) return { fromImage: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { fromImage: ref, tag: 'latest' };
}

/** A pull's progress lines carry its failure (`{"error": …}`) after a 200; the last one says why. */
function pullError(line: string): string | undefined {
  const msg = parseJson(line) as { error?: unknown; errorDetail?: { message?: unknown } } | null;
  if (!msg || typeof msg !== 'object') return undefined;
  const text = msg.errorDetail?.message ?? msg.error;
  return text === undefined ? undefined : String(text);
}

/** How long a pull may take, on top of the client's timeout: layers can be large. */
const PULL_EXTRA_MS = 10 * 60_000;

interface ModemContext {
  readonly isStream?: boolean;
  readonly hijack?: boolean;
  readonly openStdin?: boolean;
  readonly statusCodes: Record<number, boolean | string>;
}
type ModemCallback = (err: unknown, result?: unknown) => void;
/** The two methods of docker-modem 5 that this client takes over or reuses (private in its types). */
interface ModemInternals {
  protocol?: string;
  timeout?: number;
  buildRequest(
    options: http.RequestOptions,
    context: ModemContext,
    data: unknown,
    callback: ModemCallback,
  ): void;
  buildPayload(
    err: unknown,
    isStream: boolean,
    statusCodes: ModemContext['statusCodes'],
    openStdin: boolean,
    req: unknown,
    res: unknown,
    json: unknown,
    callback: ModemCallback,
  ): void;
}

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
};

/**
 * Makes a docker-modem instance send its requests through node:http, which follows no redirect.
 * docker-modem's own transport is a copy of follow-redirects: it follows a 3xx to wherever the
 * Location points (off the socket, over TCP, to a host the path named), and nothing listens for
 * errors of that second request, so a failed lookup of its host ends the process. Here a 3xx other
 * than 304 is an error of the call, and the request and the response always have an 'error' listener.
 * Only plain requests are supported (no attach, upload or ssh): this client sends no other kind.
 */
export function refuseRedirects(modem: unknown): void {
  const m = modem as ModemInternals;
  if (typeof m.buildRequest !== 'function' || typeof m.buildPayload !== 'function') {
    throw new Error(
      'docker-modem has changed (no buildRequest/buildPayload): the Docker client cannot be kept from following redirects; pin docker-modem 5 or adapt src/docker/dockerode-client.ts',
    );
  }
  m.buildRequest = (options, context, data, callback) => {
    const plain = data === undefined || typeof data === 'string' || Buffer.isBuffer(data);
    if (context.hijack || context.openStdin || m.protocol === 'ssh' || !plain) {
      callback(new Error('this Docker client sends plain requests only (no attach, upload or ssh)'));
      return;
    }
    let req: http.ClientRequest;
    let finished = false;
    const finish = (err: unknown, res?: http.IncomingMessage, body: unknown = null) => {
      if (finished) return;
      finished = true;
      m.buildPayload(
        err,
        context.isStream === true,
        context.statusCodes,
        false,
        req,
        res ?? {},
        body,
        callback,
      );
    };
    try {
      req = (m.protocol === 'https' ? https : http).request(options);
    } catch (err) {
      callback(err);
      return;
    }
    req.on('error', (err) => finish(err));
    if (m.timeout) {
      const ms = m.timeout;
      req.setTimeout(ms, () => req.destroy(new Error(`the Docker engine did not answer within ${ms} ms`)));
    }
    req.on('response', (res) => {
      // Stays attached: after the call has its answer, a late error of the stream is not a crash.
      res.on('error', (err) => finish(err));
      const code = res.statusCode ?? 0;
      if (code >= 300 && code < 400 && code !== 304) {
        res.resume();
        const to = res.headers.location;
        finish(
          Object.assign(
            new Error(
              `the Docker engine answered ${code}${to ? ` (a redirect to ${quoteInput(to)})` : ''}; redirects from the engine are never followed`,
            ),
            { statusCode: code },
          ),
        );
        return;
      }
      if (context.isStream === true) return finish(null, res);
      // The response, too, ends with an error when the call's signal aborts.
      if (options.signal) addAbortSignal(options.signal, res);
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const buffer = Buffer.concat(chunks);
        finish(null, res, parseJson(buffer.toString()) || buffer);
      });
    });
    if (data !== undefined) req.write(data);
    req.end();
  };
}

/** The engine's own words from a failed call (docker-modem puts its JSON body in `json`). */
const engineMessage = (err: unknown): string => {
  const json = (err as { json?: { message?: unknown } })?.json;
  if (json && typeof json === 'object' && json.message !== undefined) return String(json.message);
  return (err as Error)?.message ?? String(err);
};
const statusOf = (err: unknown) => (err as { statusCode?: number })?.statusCode;
const ms = (iso: string | undefined): number | undefined => {
  if (!iso || iso.startsWith('0001-')) return undefined;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? undefined : t;
};

/** A Swarm object id in a URL: only what the engine hands out (letters and digits). */
function swarmId(id: string): string {
  if (!/^[A-Za-z0-9]{1,64}$/.test(id))
    throw new InvalidReferenceError(`${quoteInput(id)} is not a Swarm object id`);
  return id;
}

interface RawService {
  ID?: string;
  Version?: { Index?: number };
  Spec?: {
    Name?: string;
    Labels?: Record<string, string> | null;
    TaskTemplate?: {
      ForceUpdate?: number;
      ContainerSpec?: { Image?: string; Healthcheck?: { Test?: string[] } };
    };
    Mode?: { Replicated?: { Replicas?: number } };
  };
  PreviousSpec?: unknown;
  UpdateStatus?: { State?: string; Message?: string; StartedAt?: string };
}

function toService(s: RawService): SwarmService {
  const test = s.Spec?.TaskTemplate?.ContainerSpec?.Healthcheck?.Test;
  return {
    id: s.ID ?? '',
    name: s.Spec?.Name ?? '',
    labels: s.Spec?.Labels ?? {},
    version: s.Version?.Index ?? 0,
    image: s.Spec?.TaskTemplate?.ContainerSpec?.Image ?? '',
    replicas: s.Spec?.Mode?.Replicated?.Replicas,
    hasHealthCheck: Boolean(test && test.length > 0 && test[0] !== 'NONE'),
    forceUpdate: s.Spec?.TaskTemplate?.ForceUpdate ?? 0,
    hasPreviousSpec: s.PreviousSpec !== undefined && s.PreviousSpec !== null,
    updateState: s.UpdateStatus?.State,
    updateMessage: s.UpdateStatus?.Message,
    updateStartedAt: ms(s.UpdateStatus?.StartedAt),
  };
}

interface RawTask {
  ID?: string;
  ServiceID?: string;
  Slot?: number;
  DesiredState?: string;
  Spec?: { ForceUpdate?: number; ContainerSpec?: { Image?: string } };
  Status?: {
    State?: string;
    Message?: string;
    Err?: string;
    Timestamp?: string;
    ContainerStatus?: { ContainerID?: string; ExitCode?: number };
  };
}

const toTask = (x: RawTask): SwarmTask => ({
  id: x.ID ?? '',
  serviceId: x.ServiceID ?? '',
  slot: x.Slot,
  state: x.Status?.State ?? 'unknown',
  desiredState: x.DesiredState ?? 'unknown',
  message: x.Status?.Message ?? '',
  error: x.Status?.Err || undefined,
  containerId: x.Status?.ContainerStatus?.ContainerID || undefined,
  exitCode: x.Status?.ContainerStatus?.ExitCode,
  at: ms(x.Status?.Timestamp) ?? 0,
  image: x.Spec?.ContainerSpec?.Image ?? '',
  forceUpdate: x.Spec?.ForceUpdate ?? 0,
});

/** An update refused because the service moved on (another update landed first), or is gone. */
function updateRefusal(err: unknown): ServiceUpdateOutcome | undefined {
  if (isNotFound(err)) return 'gone';
  const text = engineMessage(err);
  if (/out of sequence/i.test(text)) return 'out_of_date';
  if (/does not have a previous spec/i.test(text)) return 'no_previous_spec';
  return undefined;
}

export class DockerodeClient implements DockerClient {
  readonly docker: Docker;
  constructor(
    dockerHost: string,
    private readonly timeoutMs = 10_000,
  ) {
    this.docker = new Docker(dockerOptions(dockerHost));
    refuseRedirects(this.docker.modem);
  }

  /** A container handle whose id is one safe URL path segment (see pathSegment). */
  private container(idOrName: string): Docker.Container {
    return this.docker.getContainer(pathSegment(idOrName));
  }

  private signal(extraMs = 0): AbortSignal {
    return AbortSignal.timeout(this.timeoutMs + extraMs);
  }

  async ping(): Promise<void> {
    // dockerode accepts options on ping; its published types do not say so.
    const ping = this.docker.ping as unknown as (opts: object) => Promise<unknown>;
    await ping.call(this.docker, { abortSignal: this.signal() });
  }

  async listContainers(
    opts: { all?: boolean; labels?: ReadonlyArray<string> } = {},
  ): Promise<ContainerSummary[]> {
    const filters: Record<string, string[]> = {};
    if (opts.labels?.length) filters.label = [...opts.labels];
    const list = await this.docker.listContainers({
      all: opts.all ?? true,
      filters: JSON.stringify(filters),
      abortSignal: this.signal(),
    } as Docker.ContainerListOptions);
    return list.map((c) => ({
      id: c.Id,
      name: (c.Names?.[0] ?? c.Id).replace(/^\//, ''),
      labels: c.Labels ?? {},
      image: c.Image,
      state: c.State,
      status: c.Status,
      health: c.State === 'running' ? parseHealth(c.Status) : 'none',
      created: c.Created * 1000,
      // Listed, so that who runs in another's namespace is known without inspecting every container.
      networkMode: c.HostConfig?.NetworkMode || undefined,
    }));
  }

  async inspect(idOrName: string): Promise<ContainerDetails | undefined> {
    try {
      const c = await this.container(idOrName).inspect({
        abortSignal: this.signal(),
      } as Docker.ContainerInspectOptions);
      const health = c.State.Health?.Status as HealthStatus | undefined;
      const log = c.State.Health?.Log;
      const stopTimeout = (c.Config as { StopTimeout?: number }).StopTimeout;
      return {
        id: c.Id,
        name: c.Name.replace(/^\//, ''),
        labels: c.Config.Labels ?? {},
        image: c.Config.Image,
        state: c.State.Status,
        running: c.State.Running,
        health: c.State.Running && health ? health : 'none',
        hasHealthCheck: Boolean(
          c.Config.Healthcheck?.Test?.length && c.Config.Healthcheck.Test[0] !== 'NONE',
        ),
        startedAt: ms(c.State.StartedAt),
        finishedAt: ms(c.State.FinishedAt),
        exitCode: c.State.ExitCode,
        oomKilled: c.State.OOMKilled,
        restartCount: c.RestartCount,
        restartPolicy: c.HostConfig.RestartPolicy?.Name || 'no',
        networkMode: c.HostConfig.NetworkMode || undefined,
        stopTimeoutSec: typeof stopTimeout === 'number' ? stopTimeout : undefined,
        logPath: c.LogPath || undefined,
        imageId: c.Image || undefined,
        // A check cut short by a restart logs an empty output; the last real one says more.
        lastHealthOutput: [...(log ?? [])].reverse().find((l) => l.Output?.trim())?.Output,
      };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async restart(id: string, stopTimeoutSec: number): Promise<'restarted' | 'gone'> {
    try {
      // The HTTP call must outlive the stop timeout, or a slow stop is reported as a failure; a restart
      // is a stop and then a start, so it gets the client timeout once more for the start.
      await this.container(id).restart({
        t: stopTimeoutSec,
        abortSignal: this.signal(stopTimeoutSec * 1000 + this.timeoutMs),
      } as { t: number });
      return 'restarted';
    } catch (err) {
      if (isNotFound(err)) return 'gone';
      throw err;
    }
  }

  async stop(id: string, stopTimeoutSec: number): Promise<StopOutcome> {
    try {
      await this.container(id).stop({
        t: stopTimeoutSec,
        abortSignal: this.signal(stopTimeoutSec * 1000),
      } as { t: number });
      return 'stopped';
    } catch (err) {
      const code = statusOf(err);
      if (code === 304) return 'already_stopped';
      if (code === 404) return 'gone';
      throw err;
    }
  }

  async start(id: string): Promise<StartOutcome> {
    try {
      await this.container(id).start({ abortSignal: this.signal() } as object);
      return 'started';
    } catch (err) {
      const code = statusOf(err);
      if (code === 304) return 'already_running';
      if (code === 404) return 'gone';
      throw err;
    }
  }

  async kill(id: string): Promise<'killed' | 'not_running' | 'gone'> {
    try {
      await this.container(id).kill({ abortSignal: this.signal() } as object);
      return 'killed';
    } catch (err) {
      const code = statusOf(err);
      if (code === 404) return 'gone';
      if (code === 409) return 'not_running';
      throw err;
    }
  }

  async remove(
    id: string,
    opts: { force?: boolean } = {},
  ): Promise<{ removed: boolean; reclaimedBytes: number }> {
    const c = this.container(id);
    try {
      const info = (await c.inspect({
        size: true,
        abortSignal: this.signal(),
      } as Docker.ContainerInspectOptions)) as {
        SizeRw?: number;
      };
      await c.remove({ v: false, force: opts.force === true, abortSignal: this.signal(30_000) } as {
        v: boolean;
      });
      return { removed: true, reclaimedBytes: info.SizeRw ?? 0 };
    } catch (err) {
      if (isNotFound(err)) return { removed: false, reclaimedBytes: 0 };
      throw err;
    }
  }

  async definition(id: string): Promise<ContainerDefinition | undefined> {
    try {
      const c = await this.container(id).inspect({
        abortSignal: this.signal(),
      } as Docker.ContainerInspectOptions);
      return definitionOf(c);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async create(name: string, d: ContainerDefinition): Promise<CreateOutcome> {
    const ref = parseContainerRef(name);
    if (!ref.ok) throw new InvalidReferenceError(ref.detail);
    const sharesNamespace = d.networkMode.startsWith('container:');
    const config: Record<string, unknown> = { ...d.config, Image: d.image };
    // The engine refuses a hostname of one's own in another container's namespace.
    if (sharesNamespace) delete config.Hostname;
    // Engines before API 1.44 take one network at create; the others are connected before the start.
    const networks = sharesNamespace ? [] : Object.entries(d.endpoints);
    const first = networks.find(([n]) => n === d.networkMode) ?? networks[0];
    const body = {
      ...config,
      HostConfig: { ...d.hostConfig, NetworkMode: d.networkMode },
      NetworkingConfig: { EndpointsConfig: first ? { [first[0]]: first[1] } : {} },
    };
    let created: Docker.Container;
    try {
      // _query and _body keep the definition (its Env may hold secrets) out of the URL.
      created = await this.docker.createContainer({
        _query: { name: ref.value },
        _body: body,
        abortSignal: this.signal(),
      } as unknown as Docker.ContainerCreateOptions);
    } catch (err) {
      const code = statusOf(err);
      const detail = (err as Error).message;
      if (code === 404) return { refused: 'no_such_image', detail: `no such image ${quoteInput(d.image)}` };
      if (code === 409) return { refused: 'name_in_use', detail };
      throw err;
    }
    for (const [network, endpoint] of networks) {
      if (network === first?.[0]) continue;
      try {
        await this.docker.getNetwork(pathSegment(network)).connect({
          Container: created.id,
          EndpointConfig: endpoint,
          abortSignal: this.signal(),
        } as Docker.NetworkConnectOptions);
      } catch (err) {
        // A half-made container is not left behind: the caller sees the engine's error.
        await this.remove(created.id, { force: true }).catch(() => undefined);
        throw err;
      }
    }
    return { id: created.id };
  }

  async rename(id: string, newName: string): Promise<'renamed' | 'gone' | 'name_in_use'> {
    const ref = parseContainerRef(newName);
    if (!ref.ok) throw new InvalidReferenceError(ref.detail);
    try {
      await this.container(id).rename({ name: ref.value, abortSignal: this.signal() });
      return 'renamed';
    } catch (err) {
      const code = statusOf(err);
      if (code === 404) return 'gone';
      if (code === 409) return 'name_in_use';
      throw err;
    }
  }

  async prune(kind: PruneKind, f: PruneFilters): Promise<PruneReport> {
    const filters: Record<string, string[]> = {};
    if (f.until && kind !== 'volumes') filters.until = [f.until];
    if (f.labelNot?.length) filters['label!'] = [...f.labelNot];
    if (kind === 'images') filters.dangling = [f.danglingOnly === false ? 'false' : 'true'];
    const opts = { filters: JSON.stringify(filters), abortSignal: this.signal(120_000) } as object;
    switch (kind) {
      case 'containers': {
        const r = await this.docker.pruneContainers(opts);
        return { kind, deleted: r.ContainersDeleted ?? [], reclaimedBytes: r.SpaceReclaimed ?? 0 };
      }
      case 'images': {
        const r = await this.docker.pruneImages(opts);
        const deleted = (r.ImagesDeleted ?? [])
          .map((d: { Deleted?: string; Untagged?: string }) => d.Deleted ?? d.Untagged ?? '')
          .filter(Boolean);
        return { kind, deleted, reclaimedBytes: r.SpaceReclaimed ?? 0 };
      }
      case 'networks': {
        const r = await this.docker.pruneNetworks(opts);
        return { kind, deleted: r.NetworksDeleted ?? [], reclaimedBytes: 0 };
      }
      case 'volumes': {
        const r = await this.docker.pruneVolumes(opts);
        return { kind, deleted: r.VolumesDeleted ?? [], reclaimedBytes: r.SpaceReclaimed ?? 0 };
      }
      case 'build': {
        const r = (await this.docker.pruneBuilder(opts)) as unknown as {
          CachesDeleted?: string[];
          SpaceReclaimed?: number;
        };
        return { kind, deleted: r.CachesDeleted ?? [], reclaimedBytes: r.SpaceReclaimed ?? 0 };
      }
    }
  }

  /** One engine call through the modem, for calls whose dockerode wrapper drops the abort signal. */
  private dial<T>(options: Record<string, unknown>): Promise<T> {
    const modem = this.docker.modem as unknown as {
      dial(o: Record<string, unknown>, cb: (err: unknown, data: unknown) => void): void;
    };
    return new Promise((resolve, reject) => {
      modem.dial(options, (err, data) => (err ? reject(err) : resolve(data as T)));
    });
  }

  async imageInfo(ref: string): Promise<ImageInfo | undefined> {
    const path = imagePath(ref);
    try {
      const info = await this.dial<{
        Id?: string;
        RepoDigests?: string[] | null;
        RepoTags?: string[] | null;
      }>({
        path: `/images/${path}/json`,
        method: 'GET',
        abortSignal: this.signal(),
        statusCodes: { 200: true, 404: 'no such image', 500: 'server error' },
      });
      if (!info?.Id) return undefined;
      return { id: info.Id, repoDigests: info.RepoDigests ?? [], repoTags: info.RepoTags ?? [] };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async removeImage(id: string): Promise<'removed' | 'in_use' | 'gone'> {
    const path = imagePath(id);
    try {
      await this.dial({
        path: `/images/${path}?`,
        method: 'DELETE',
        options: { force: false, noprune: false },
        abortSignal: this.signal(30_000),
        statusCodes: { 200: true, 404: 'no such image', 409: 'conflict', 500: 'server error' },
      });
      return 'removed';
    } catch (err) {
      if (isNotFound(err)) return 'gone';
      if (statusOf(err) === 409) return 'in_use';
      throw err;
    }
  }

  async swarmRole(): Promise<'manager' | 'worker' | 'none'> {
    const info = await this.dial<{ Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean } }>({
      path: '/info',
      method: 'GET',
      abortSignal: this.signal(),
      statusCodes: { 200: true, 500: 'server error' },
    });
    if (info?.Swarm?.LocalNodeState !== 'active') return 'none';
    return info.Swarm.ControlAvailable ? 'manager' : 'worker';
  }

  async listServices(): Promise<SwarmService[]> {
    const list = await this.dial<RawService[]>({
      path: '/services',
      method: 'GET',
      abortSignal: this.signal(),
      statusCodes: { 200: true, 500: 'server error', 503: 'node is not a swarm manager' },
    });
    return (list ?? []).map(toService);
  }

  async listTasks(serviceId?: string): Promise<SwarmTask[]> {
    const list = await this.dial<RawTask[]>({
      path: '/tasks?',
      method: 'GET',
      options: serviceId === undefined ? {} : { filters: JSON.stringify({ service: [swarmId(serviceId)] }) },
      abortSignal: this.signal(),
      statusCodes: { 200: true, 500: 'server error', 503: 'node is not a swarm manager' },
    });
    const tasks = (list ?? []).map(toTask);
    return serviceId === undefined ? tasks : tasks.filter((x) => x.serviceId === serviceId);
  }

  /** The service's raw spec and version, for an update that must carry both. */
  private async rawService(id: string): Promise<RawService | undefined> {
    try {
      return await this.dial<RawService>({
        path: `/services/${swarmId(id)}`,
        method: 'GET',
        abortSignal: this.signal(),
        statusCodes: { 200: true, 404: 'no such service', 500: 'server error', 503: 'not a manager' },
      });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private async updateService(
    id: string,
    version: number,
    spec: unknown,
    rollback: boolean,
  ): Promise<ServiceUpdateOutcome> {
    try {
      await this.dial({
        path: `/services/${swarmId(id)}/update?`,
        method: 'POST',
        options: { _query: { version, ...(rollback ? { rollback: 'previous' } : {}) }, _body: spec },
        abortSignal: this.signal(),
        statusCodes: {
          200: true,
          400: 'bad parameter',
          404: 'no such service',
          500: 'server error',
          503: 'not a manager',
        },
      });
      return 'updated';
    } catch (err) {
      const refused = updateRefusal(err);
      if (refused) return refused;
      throw err;
    }
  }

  async forceUpdate(serviceId: string, version: number): Promise<ServiceUpdateOutcome> {
    const raw = await this.rawService(serviceId);
    if (!raw?.Spec) return 'gone';
    if ((raw.Version?.Index ?? 0) !== version) return 'out_of_date';
    const template = raw.Spec.TaskTemplate ?? {};
    const spec = { ...raw.Spec, TaskTemplate: { ...template, ForceUpdate: (template.ForceUpdate ?? 0) + 1 } };
    return this.updateService(serviceId, version, spec, false);
  }

  async rollbackService(serviceId: string, version: number): Promise<ServiceUpdateOutcome> {
    const raw = await this.rawService(serviceId);
    if (!raw?.Spec) return 'gone';
    if ((raw.Version?.Index ?? 0) !== version) return 'out_of_date';
    if (!raw.PreviousSpec) return 'no_previous_spec';
    return this.updateService(serviceId, version, raw.Spec, true);
  }

  async scaleService(serviceId: string, version: number, replicas: number): Promise<ServiceUpdateOutcome> {
    const raw = await this.rawService(serviceId);
    if (!raw?.Spec) return 'gone';
    if ((raw.Version?.Index ?? 0) !== version) return 'out_of_date';
    if (raw.Spec.Mode?.Replicated === undefined) return 'not_replicated';
    const spec = { ...raw.Spec, Mode: { ...raw.Spec.Mode, Replicated: { Replicas: replicas } } };
    return this.updateService(serviceId, version, spec, false);
  }

  async pull(ref: string, credentials?: RegistryCredentials): Promise<PullOutcome> {
    imagePath(ref);
    const signal = this.signal(PULL_EXTRA_MS);
    let stream: NodeJS.ReadableStream & { destroy(): void };
    try {
      stream = await this.dial({
        path: '/images/create?',
        method: 'POST',
        options: pullParams(ref),
        // The modem sends it base64 in X-Registry-Auth; it is never logged here.
        authconfig: credentials ? { ...credentials } : undefined,
        abortSignal: signal,
        isStream: true,
        statusCodes: {
          200: true,
          401: 'unauthorized',
          403: 'forbidden',
          404: 'not found',
          500: 'server error',
        },
      });
    } catch (err) {
      const code = statusOf(err);
      if (code === 401 || code === 403 || code === 404 || code === 500) {
        return {
          failed: true,
          detail: `the engine could not pull ${quoteInput(ref)}: ${engineMessage(err)}`,
        };
      }
      throw err;
    }
    const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
    const onAbort = () => {
      lines.close();
      stream.destroy();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    let failure: string | undefined;
    try {
      for await (const line of lines) failure = pullError(line) ?? failure;
    } finally {
      signal.removeEventListener('abort', onAbort);
      lines.close();
      stream.destroy();
    }
    if (signal.aborted) throw new Error(`the pull of ${quoteInput(ref)} did not finish in time`);
    if (failure) return { failed: true, detail: `the engine could not pull ${quoteInput(ref)}: ${failure}` };
    const image = await this.imageInfo(ref);
    if (!image) return { failed: true, detail: `the pull of ${quoteInput(ref)} ended without that image` };
    return { id: image.id };
  }

  async *events(opts: { since?: number; signal: AbortSignal }): AsyncIterable<DockerEvent> {
    const query: Record<string, unknown> = {
      filters: JSON.stringify({ type: ['container'], event: [...WATCHED_EVENTS] }),
    };
    if (opts.since !== undefined) query.since = (opts.since / 1000).toFixed(3);
    for await (const line of this.eventLines(query, opts.signal)) {
      const ev = parseEvent(line);
      if (ev) yield ev;
    }
  }

  async *swarmChanges(signal: AbortSignal): AsyncIterable<string> {
    // Service changes, and the exits of task containers on this node (a task's failure).
    const query = {
      filters: JSON.stringify({
        type: ['service', 'container'],
        event: ['create', 'update', 'remove', 'die'],
      }),
    };
    for await (const line of this.eventLines(query, signal)) {
      const ev = parseJson(line) as
        | { Type?: string; Action?: string; Actor?: { Attributes?: Record<string, string> } }
        | undefined;
      const attrs = ev?.Actor?.Attributes ?? {};
      if (ev?.Type === 'container' && attrs['com.docker.swarm.task.id'] === undefined) continue;
      yield `${ev?.Type ?? 'unknown'} ${ev?.Action ?? ''} ${attrs.name ?? ''}`.trim();
    }
  }

  /** The engine's event stream as lines of JSON, until the signal aborts or the stream ends. */
  private async *eventLines(query: Record<string, unknown>, signal: AbortSignal): AsyncIterable<string> {
    const stream = (await this.docker.getEvents({
      ...query,
      abortSignal: signal,
    } as Docker.GetEventsOptions)) as NodeJS.ReadableStream & {
      destroy(): void;
    };
    // An error of the stream ends the loop below as a throw (readline forwards it); one that comes
    // after the loop has ended meets the listener refuseRedirects keeps on every response.
    const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
    // Closing the reader ends the loop below; destroying the stream alone would leave it waiting.
    const onAbort = () => {
      lines.close();
      stream.destroy();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const line of lines) {
        if (line.trim()) yield line;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      lines.close();
      stream.destroy();
    }
  }
}

/** Endpoint fields the engine fills in for a running container; a create body carries none of them. */
const ENDPOINT_CONFIG = ['IPAMConfig', 'Links', 'Aliases', 'DriverOpts', 'GwPriority'] as const;

/**
 * The create body of a container rebuilt from its inspect: Config as it is (less a Hostname the engine
 * derived from the id, as watchtower does, so the new container gets its own), HostConfig as it is,
 * and each network's endpoint settings without its addresses and ids (the engine assigns new ones).
 */
export function definitionOf(c: Docker.ContainerInspectInfo): ContainerDefinition {
  const { Hostname, ...config } = c.Config as unknown as Record<string, unknown> & { Hostname?: string };
  const shortId = c.Id.slice(0, 12);
  if (Hostname && !c.Id.startsWith(Hostname)) config.Hostname = Hostname;
  const endpoints: Record<string, Record<string, unknown>> = {};
  for (const [name, ep] of Object.entries(c.NetworkSettings?.Networks ?? {})) {
    const kept: Record<string, unknown> = {};
    for (const key of ENDPOINT_CONFIG) {
      const v = (ep as unknown as Record<string, unknown>)[key];
      if (v !== undefined && v !== null) kept[key] = v;
    }
    // The engine adds the short id as an alias on user networks; the new container gets its own.
    if (Array.isArray(kept.Aliases)) kept.Aliases = kept.Aliases.filter((a) => a !== shortId);
    endpoints[name] = kept;
  }
  const hostConfig = { ...(c.HostConfig as unknown as Record<string, unknown>) };
  const kept = keptVolumes(c);
  if (kept.length) hostConfig.Binds = [...((hostConfig.Binds as string[] | null) ?? []), ...kept];
  return {
    image: c.Config.Image,
    networkMode: String(hostConfig.NetworkMode ?? 'default'),
    config,
    hostConfig,
    endpoints,
  };
}

/**
 * The anonymous volumes of a container (a VOLUME of its image, a `-v /path`) as binds of their names:
 * created again, it would get empty new ones; docker compose keeps them across a recreate the same way.
 */
function keptVolumes(c: Docker.ContainerInspectInfo): string[] {
  const declared = new Set(Object.keys(c.Config.Volumes ?? {}));
  const host = c.HostConfig as { Binds?: string[] | null; Mounts?: Array<{ Target?: string }> | null };
  const given = new Set([
    ...(host.Binds ?? []).map((b) => b.split(':')[1]),
    ...(host.Mounts ?? []).map((m) => m.Target),
  ]);
  return (c.Mounts ?? [])
    .filter((m) => m.Type === 'volume' && m.Name && declared.has(m.Destination) && !given.has(m.Destination))
    .map((m) => `${m.Name}:${m.Destination}${m.RW ? '' : ':ro'}`);
}

/** One line of the engine's event stream; undefined for a line that is not a container event. */
export function parseEvent(line: string): DockerEvent | undefined {
  let raw: {
    Type?: string;
    Action?: string;
    status?: string;
    id?: string;
    Actor?: { ID?: string; Attributes?: Record<string, string> };
    time?: number;
    timeNano?: number | string;
  };
  try {
    raw = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (raw.Type !== undefined && raw.Type !== 'container') return undefined;
  const attributes = raw.Actor?.Attributes ?? {};
  const id = raw.Actor?.ID ?? raw.id;
  const action = raw.Action ?? raw.status;
  if (!id || !action) return undefined;
  // Event attributes mix the container's labels with engine keys; these keys are the engine's own.
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(attributes)) {
    if (!ENGINE_ATTRIBUTES.has(k)) labels[k] = v;
  }
  // timeNano arrives as a JSON number that may exceed 2^53; the digits of the raw line are exact.
  const nanoText = /"timeNano":\s*([0-9]+)/.exec(line)?.[1];
  const timeNano = nanoText ? BigInt(nanoText) : BigInt(raw.time ?? 0) * 1_000_000_000n;
  return {
    action,
    id,
    name: attributes.name ?? id.slice(0, 12),
    labels,
    attributes,
    time: Number(timeNano / 1_000_000n),
    timeNano,
  };
}

const ENGINE_ATTRIBUTES = new Set(['name', 'image', 'exitCode', 'signal', 'execDuration']);
