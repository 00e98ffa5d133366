// The Docker engine as the rest of the service sees it: a small interface, so that decisions and
// remediations never import dockerode and unit tests can use a fake.
import type { ContainerView, HealthStatus } from '../core/types.js';

export interface ContainerSummary extends ContainerView {
  readonly image: string;
  readonly status: string;
  readonly created: number;
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
}

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

export type StopOutcome = 'stopped' | 'already_stopped' | 'gone';
export type StartOutcome = 'started' | 'already_running' | 'gone';

export interface DockerClient {
  ping(): Promise<void>;
  /** Containers, with health parsed from the status; one API call. */
  listContainers(opts?: { all?: boolean; labels?: ReadonlyArray<string> }): Promise<ContainerSummary[]>;
  /** undefined when the container does not exist. */
  inspect(idOrName: string): Promise<ContainerDetails | undefined>;
  restart(id: string, stopTimeoutSec: number): Promise<'restarted' | 'gone'>;
  stop(id: string, stopTimeoutSec: number): Promise<StopOutcome>;
  start(id: string): Promise<StartOutcome>;
  kill(id: string): Promise<'killed' | 'not_running' | 'gone'>;
  /** Removes a stopped container; reports the bytes its writable layer held. */
  remove(id: string): Promise<{ removed: boolean; reclaimedBytes: number }>;
  prune(kind: PruneKind, filters: PruneFilters): Promise<PruneReport>;
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
