// What the watcher keeps in memory of each watched container, by id: what the last listing, event and
// inspect said of it, the stop marks the watch rules read (core/watch-rules.ts), and its restart history.
// Bounded by the watched containers: an entry is dropped when its container is destroyed or leaves scope.
import { emptyHistory, type RestartHistory } from '../../core/crash-loop.js';
import type { ContainerView, HealthStatus } from '../../core/types.js';
import type { Gauged } from './gauges.js';

/** What the watcher knows of one watched container (by id). */
export interface Tracked extends Gauged {
  readonly id: string;
  name: string;
  labels: Readonly<Record<string, string>>;
  state: string;
  health: HealthStatus;
  startedAt: number | undefined;
  restartCount: number | undefined;
  restartPolicy: string | undefined;
  /** From inspect: a container with a health check is a service, meant to keep running. */
  hasHealthCheck: boolean | undefined;
  inspected: boolean;
  /** A kill or stop that was not ours since the last start: the exit that follows is on purpose. */
  operatorStopAt: number | undefined;
  /** When a reconcile pass found an exit no event explained yet; cleared by the next event applied. */
  exitSeenAt: number | undefined;
  /** Events that have arrived and wait in chain. */
  eventsPending: number;
  oomAt: number | undefined;
  history: RestartHistory;
  /** Events of one container are applied in order, even when one of them waits for an inspect. */
  chain: Promise<void>;
  startPeriodTimer: NodeJS.Timeout | undefined;
}

/** What an inspect tells of a container that a listing does not. */
export type Inspected = Pick<ContainerView, 'state' | 'health' | 'startedAt' | 'restartCount'> & {
  restartPolicy: string;
  hasHealthCheck?: boolean;
};

export class Tracker {
  private readonly known = new Map<string, Tracked>();

  get size(): number {
    return this.known.size;
  }

  get(id: string): Tracked | undefined {
    return this.known.get(id);
  }

  /** True while k is the entry for its id (not forgotten, nor replaced by a new one). */
  holds(k: Tracked): boolean {
    return this.known.get(k.id) === k;
  }

  all(): IterableIterator<Tracked> {
    return this.known.values();
  }

  track(id: string, name: string, labels: Readonly<Record<string, string>>): Tracked {
    const k: Tracked = {
      id,
      name,
      labels,
      state: 'unknown',
      health: 'none',
      startedAt: undefined,
      restartCount: undefined,
      restartPolicy: undefined,
      hasHealthCheck: undefined,
      inspected: false,
      series: undefined,
      operatorStopAt: undefined,
      exitSeenAt: undefined,
      eventsPending: 0,
      oomAt: undefined,
      history: emptyHistory,
      chain: Promise.resolve(),
      startPeriodTimer: undefined,
    };
    this.known.set(id, k);
    return k;
  }

  forget(k: Tracked): void {
    clearTimeout(k.startPeriodTimer);
    this.known.delete(k.id);
  }

  /** Takes in what an inspect said; the restart history is the watch rules' to fold (restartCountVerdict). */
  absorb(k: Tracked, d: Inspected): void {
    k.inspected = true;
    if (d.hasHealthCheck !== undefined) k.hasHealthCheck = d.hasHealthCheck;
    k.state = d.state;
    k.health = d.health;
    k.startedAt = d.startedAt ?? k.startedAt;
    k.restartPolicy = d.restartPolicy;
    if (d.restartCount !== undefined) k.restartCount = d.restartCount;
  }
}

/** The view of a tracked container the engine and the signals take. */
export function viewOf(k: Tracked): ContainerView {
  return {
    id: k.id,
    name: k.name,
    labels: k.labels,
    state: k.state,
    health: k.health,
    startedAt: k.startedAt,
    restartCount: k.restartCount,
  };
}
