// The Docker engine's event stream as the watcher follows it: list, then subscribe `since` the last
// event, and on any failure back off (capped, doubling), re-list and subscribe again (Traefik's Docker
// provider does the same). Each event is handed on once, even when a reconnect replays it.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Clock } from '../../core/clock.js';
import type { DockerClient, DockerEvent } from '../../docker/client.js';

export interface EventStreamOptions {
  /** First reconnect delay; doubles per failed attempt up to backoffMaxMs. */
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  /** A stream that stayed up this long resets the back-off (a stream that drops at once does not). */
  readonly stableStreamMs?: number;
  /** How the reconnect back-off waits (tests record the delays it asks for); rejects when aborted. */
  readonly backoffSleep?: (ms: number, signal: AbortSignal) => Promise<unknown>;
}

export interface EventStreamDeps {
  readonly docker: Pick<DockerClient, 'events'>;
  readonly clock: Clock;
  /** The listing taken before every subscription (the watcher's reconcile); a failure is a lost stream. */
  readonly relist: () => Promise<void>;
  readonly onEvent: (ev: DockerEvent) => void;
  /** Told on every (re)connect and every loss, with the loss's reason. */
  readonly onConnection: (connected: boolean, reason: string) => void;
}

/** Enough recent event keys to recognise everything a `since` replay can repeat. */
const RECENT_EVENT_KEYS = 1024;

export class EventStream {
  private readonly opts: Required<EventStreamOptions>;
  private stopped = true;
  private loop: Promise<void> | undefined;
  private streamAbort: AbortController | undefined;
  private readonly stopAbort = new AbortController();
  private lastEventMs: number | undefined;
  /** Keys of the latest events, oldest first (a Set keeps insertion order). */
  private readonly recentKeys = new Set<string>();

  constructor(
    private readonly deps: EventStreamDeps,
    options: EventStreamOptions = {},
  ) {
    this.opts = {
      backoffInitialMs: options.backoffInitialMs ?? 500,
      backoffMaxMs: options.backoffMaxMs ?? 30_000,
      stableStreamMs: options.stableStreamMs ?? 10_000,
      backoffSleep: options.backoffSleep ?? ((ms, signal) => sleep(ms, undefined, { signal })),
    };
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = this.follow();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopAbort.abort();
    this.streamAbort?.abort();
    await this.loop;
  }

  /** Drops the current subscription: the loop re-lists and subscribes again after its back-off. */
  reconnect(): void {
    this.streamAbort?.abort();
  }

  /** List, then follow; on any failure back off (capped, doubling), re-list and follow from the last event. */
  private async follow(): Promise<void> {
    const { deps, opts } = this;
    let backoff = opts.backoffInitialMs;
    while (!this.stopped) {
      const abort = new AbortController();
      this.streamAbort = abort;
      let reason = 'the event stream ended';
      let upSince: number | undefined;
      try {
        // `since` is taken before the list, so nothing between the list and the subscription is lost.
        const since = this.lastEventMs ?? deps.clock.now();
        await deps.relist();
        if (this.stopped) break;
        upSince = deps.clock.now();
        deps.onConnection(true, '');
        await this.consume(deps.docker.events({ since, signal: abort.signal }), abort.signal);
      } catch (err) {
        reason = (err as Error).message;
      }
      if (this.stopped) break;
      deps.onConnection(false, reason);
      if (upSince !== undefined && deps.clock.now() - upSince >= opts.stableStreamMs) {
        backoff = opts.backoffInitialMs;
      }
      try {
        await opts.backoffSleep(backoff, this.stopAbort.signal);
      } catch {
        break; // stopped
      }
      backoff = Math.min(backoff * 2, opts.backoffMaxMs);
    }
    this.streamAbort = undefined;
  }

  /**
   * Applies events until the stream ends or the signal aborts. The abort is raced here rather than left
   * to the stream: a destroyed socket under a line reader does not always end its iterator.
   */
  private async consume(events: AsyncIterable<DockerEvent>, signal: AbortSignal): Promise<void> {
    const it = events[Symbol.asyncIterator]();
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(new Error('event stream aborted'));
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    aborted.catch(() => undefined);
    try {
      for (;;) {
        const r = await Promise.race([it.next(), aborted]);
        if (r.done) return;
        if (this.isNew(r.value)) this.deps.onEvent(r.value);
      }
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
      // Not awaited: the iterator may be stuck on a read that only its own abort handling ends.
      it.return?.(undefined)?.catch(() => undefined);
    }
  }

  /**
   * A reconnect with `since` replays what was seen in the last millisecond(s); each event is applied
   * once. Not by comparing times: the engine stamps events before publishing them from several
   * goroutines, so in a burst an event can arrive with a slightly earlier timeNano than the one before.
   */
  private isNew(ev: DockerEvent): boolean {
    const key = `${ev.timeNano}:${ev.id}:${ev.action}`;
    if (this.recentKeys.has(key)) return false;
    this.recentKeys.add(key);
    if (this.recentKeys.size > RECENT_EVENT_KEYS) {
      const oldest = this.recentKeys.values().next().value;
      if (oldest !== undefined) this.recentKeys.delete(oldest);
    }
    if (this.lastEventMs === undefined || ev.time > this.lastEventMs) this.lastEventMs = ev.time;
    return true;
  }
}
