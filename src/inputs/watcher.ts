// The health watcher: the input that follows the Docker engine's own event stream and turns a failure of
// a watched container into a signal the moment the engine reports it, with a reconcile poll every
// WATCHDOG_INTERVAL behind it that catches whatever the stream missed and keeps the per-container gauges.
// It decides nothing: every signal goes through engine.ingest and the one policy (core/policy.ts).
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Clock } from '../core/clock.js';
import {
  type CrashLoopPolicy,
  DEFAULT_CRASH_LOOP,
  emptyHistory,
  inCrashLoop,
  observeRestartCount,
  type RestartHistory,
} from '../core/crash-loop.js';
import { checkScope, scopeListFilter } from '../core/scope.js';
import type { Condition, ContainerView, HealthStatus } from '../core/types.js';
import type { DockerClient, DockerEvent } from '../docker/client.js';
import type { Engine } from '../engine/engine.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../state/store.js';
import {
  eventKind,
  exitCodeFromStatus,
  exitZeroHealAction,
  healthFromAction,
  healthyValue,
  isFailedExit,
  seriesLabels,
  startPeriodOf,
  watcherSignal,
} from './watcher-signals.js';

export interface WatcherDeps {
  readonly config: Pick<Config, 'watchdogIntervalMs' | 'watcherHeal' | 'startPeriodMs' | 'dockerHost'>;
  readonly docker: DockerClient;
  readonly engine: Pick<Engine, 'ingest' | 'observe' | 'notifyOnly' | 'policyContext'> &
    // Told when the engine answers again, so that signals kept waiting for it are decided at once.
    Partial<Pick<Engine, 'retryPending'>>;
  /** Read only: the engine's record says whether a kill/stop event is our own remediation. */
  readonly store: Pick<Store, 'record'>;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly clock: Clock;
}

export interface WatcherOptions {
  /** First reconnect delay; doubles per failed attempt up to backoffMaxMs. */
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  /** A stream that stayed up this long resets the back-off (a stream that drops at once does not). */
  readonly stableStreamMs?: number;
  readonly crashLoop?: CrashLoopPolicy;
  /** Parallel inspects when the reconcile meets containers it has not seen before. */
  readonly inspectConcurrency?: number;
  /** How the reconnect back-off waits (tests record the delays it asks for); rejects when aborted. */
  readonly backoffSleep?: (ms: number, signal: AbortSignal) => Promise<unknown>;
}

type Series = ReturnType<typeof seriesLabels>;

/** What the watcher knows of one watched container (by id). */
interface Tracked {
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
  /** The label values last published, so a rename or removal can drop the old series. */
  series: Series | undefined;
  /** A kill or stop that was not ours since the last start: the exit that follows is on purpose. */
  operatorStopAt: number | undefined;
  oomAt: number | undefined;
  history: RestartHistory;
  /** Events of one container are applied in order, even when one of them waits for an inspect. */
  chain: Promise<void>;
  startPeriodTimer: NodeJS.Timeout | undefined;
}

/** Events older than this when they arrive are replays (since=...), not live news. */
const REPLAY_AGE_MS = 2000;
/** Enough recent event keys to recognise everything a `since` replay can repeat. */
const RECENT_EVENT_KEYS = 1024;
/** A replayed kill/stop this soon after one of our actions began is taken as that action's. */
const OWN_ACTION_WINDOW_MS = 120_000;

export class Watcher {
  private readonly known = new Map<string, Tracked>();
  private readonly opts: Required<WatcherOptions>;
  private stopped = true;
  private loop: Promise<void> | undefined;
  private streamAbort: AbortController | undefined;
  private readonly stopAbort = new AbortController();
  private reconcileTimer: NodeJS.Timeout | undefined;
  private reconciling: Promise<void> | undefined;
  private isConnected = false;
  private reported = false;
  private lastEventMs: number | undefined;
  /** Keys of the latest events, oldest first (a Set keeps insertion order). */
  private readonly recentKeys = new Set<string>();
  /** Counters for tests, benchmarks and the log. */
  readonly stats = { connects: 0, events: 0, reconciles: 0, lastReconcileMs: 0 };

  constructor(
    private readonly d: WatcherDeps,
    options: WatcherOptions = {},
  ) {
    this.opts = {
      backoffInitialMs: options.backoffInitialMs ?? 500,
      backoffMaxMs: options.backoffMaxMs ?? 30_000,
      stableStreamMs: options.stableStreamMs ?? 10_000,
      crashLoop: options.crashLoop ?? DEFAULT_CRASH_LOOP,
      inspectConcurrency: options.inspectConcurrency ?? 8,
      backoffSleep: options.backoffSleep ?? ((ms, signal) => sleep(ms, undefined, { signal })),
    };
  }

  /** True while the engine answers and the event stream is followed. */
  get connected(): boolean {
    return this.isConnected;
  }

  /** How many containers are watched now (bounded: one entry and three series per watched container). */
  get watchedCount(): number {
    return this.known.size;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = this.follow();
    this.scheduleReconcile();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.reconcileTimer);
    this.stopAbort.abort();
    this.streamAbort?.abort();
    for (const k of this.known.values()) clearTimeout(k.startPeriodTimer);
    await this.loop;
    // Events being applied may wait on an inspect of an engine that is gone: do not hold shutdown for it.
    const applying = Promise.allSettled([...this.known.values()].map((k) => k.chain));
    await Promise.race([applying, sleep(2000)]);
  }

  // The event stream ----------------------------------------------------------------------------------

  /** List, then follow; on any failure back off (capped, doubling), re-list and follow from the last event. */
  private async follow(): Promise<void> {
    let backoff = this.opts.backoffInitialMs;
    while (!this.stopped) {
      const abort = new AbortController();
      this.streamAbort = abort;
      let reason = 'the event stream ended';
      let upSince: number | undefined;
      try {
        // `since` is taken before the list, so nothing between the list and the subscription is lost.
        const since = this.lastEventMs ?? this.d.clock.now();
        await this.reconcile();
        if (this.stopped) break;
        upSince = this.d.clock.now();
        this.stats.connects++;
        this.setConnected(true);
        await this.consume(this.d.docker.events({ since, signal: abort.signal }), abort.signal);
      } catch (err) {
        reason = (err as Error).message;
      }
      if (this.stopped) break;
      this.setConnected(false, reason);
      if (upSince !== undefined && this.d.clock.now() - upSince >= this.opts.stableStreamMs) {
        backoff = this.opts.backoffInitialMs;
      }
      try {
        await this.opts.backoffSleep(backoff, this.stopAbort.signal);
      } catch {
        break; // stopped
      }
      backoff = Math.min(backoff * 2, this.opts.backoffMaxMs);
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
        this.onEvent(r.value);
      }
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
      // Not awaited: the iterator may be stuck on a read that only its own abort handling ends.
      it.return?.(undefined)?.catch(() => undefined);
    }
  }

  private setConnected(ok: boolean, reason = ''): void {
    this.d.metrics.dockerConnected.set(ok ? 1 : 0);
    // Logged once per change, not on every failed attempt of an outage.
    if (ok === this.isConnected && this.reported) return;
    this.reported = true;
    this.isConnected = ok;
    if (ok) {
      try {
        this.d.engine.retryPending?.();
      } catch (err) {
        this.d.log.error({ err }, 'cannot retry the signals waiting for the engine');
      }
      this.d.log.info(
        { event: 'docker_connected', dockerHost: this.d.config.dockerHost, watched: this.known.size },
        'following the docker engine event stream',
      );
    } else {
      this.d.log.error(
        { event: 'docker_unreachable', dockerHost: this.d.config.dockerHost, reason },
        `docker engine event stream lost at ${this.d.config.dockerHost}: ${reason}; reconnecting with back-off`,
      );
    }
  }

  private onEvent(ev: DockerEvent): void {
    // A reconnect with `since` replays what was seen in the last millisecond(s); apply each event once.
    // Not by comparing times: the engine stamps events before publishing them from several goroutines,
    // so in a burst an event can arrive with a slightly earlier timeNano than the one before it.
    const key = `${ev.timeNano}:${ev.id}:${ev.action}`;
    if (this.recentKeys.has(key)) return;
    this.recentKeys.add(key);
    if (this.recentKeys.size > RECENT_EVENT_KEYS) {
      const oldest = this.recentKeys.values().next().value;
      if (oldest !== undefined) this.recentKeys.delete(oldest);
    }
    if (this.lastEventMs === undefined || ev.time > this.lastEventMs) this.lastEventMs = ev.time;
    this.stats.events++;
    this.d.metrics.dockerEvents.inc({ action: eventKind(ev.action) });

    const existing = this.known.get(ev.id);
    if (!this.watched({ id: ev.id, name: ev.name, labels: ev.labels })) {
      if (existing) this.forget(existing);
      return;
    }
    if (ev.action === 'destroy') {
      if (existing) this.forget(existing);
      return;
    }
    const k = existing ?? this.track(ev.id, ev.name, ev.labels);
    if (k.name !== ev.name) k.name = ev.name;
    // Whose kill/stop this is must be judged on arrival: our record says "in flight" only while it runs.
    const ours = this.isOurs(k.name, ev.time);
    k.chain = k.chain
      .then(() => this.apply(k, ev, ours))
      .catch((err) =>
        this.d.log.error({ err, container: k.name, action: ev.action }, 'watcher event failed'),
      );
  }

  private async apply(k: Tracked, ev: DockerEvent, ours: boolean): Promise<void> {
    if (this.known.get(k.id) !== k) return; // destroyed meanwhile
    const health = healthFromAction(ev.action);
    if (health !== undefined) return this.onHealth(k, health, ev);
    switch (ev.action) {
      case 'start':
        return this.onStart(k, ev);
      case 'kill':
        if (!ours) k.operatorStopAt ??= ev.time;
        return;
      case 'stop':
        k.state = 'exited';
        this.publish(k);
        if (ours) return;
        k.operatorStopAt ??= ev.time;
        clearTimeout(k.startPeriodTimer);
        this.d.engine.observe(this.view(k), { stoppedByOperator: true });
        return;
      case 'oom':
        k.oomAt = ev.time;
        return;
      case 'die':
        return this.onDie(k, ev, ours);
    }
  }

  private onHealth(k: Tracked, health: HealthStatus, ev: DockerEvent): void {
    k.state = 'running';
    k.health = health;
    this.publish(k);
    this.d.engine.observe(this.view(k));
    if (health !== 'unhealthy') {
      clearTimeout(k.startPeriodTimer);
      return;
    }
    this.signal(k, 'unhealthy', 'docker_event', 'health_status: unhealthy');
    this.recheckAfterStartPeriod(k, ev.time);
  }

  private async onStart(k: Tracked, ev: DockerEvent): Promise<void> {
    k.state = 'running';
    k.startedAt = ev.time;
    k.operatorStopAt = undefined;
    k.oomAt = undefined;
    clearTimeout(k.startPeriodTimer);
    // The restart count (crash loops, the restarts gauge) and the health check are only in inspect.
    await this.refresh(k);
    if (this.known.get(k.id) !== k) return;
    this.publish(k);
    this.d.engine.observe(this.view(k), { stoppedByOperator: false });
  }

  private async onDie(k: Tracked, ev: DockerEvent, ours: boolean): Promise<void> {
    k.state = 'exited';
    k.health = 'none';
    clearTimeout(k.startPeriodTimer);
    this.publish(k);
    if (ours) return;
    if (k.operatorStopAt !== undefined) {
      // docker stop / docker kill: kill came first. Never heal what an operator stopped.
      this.d.engine.observe(this.view(k), { stoppedByOperator: true });
      return;
    }
    const exitCode = Number(ev.attributes.exitCode ?? Number.NaN);
    const details = await this.d.docker.inspect(k.id);
    if (!details) return;
    this.absorb(k, details);
    this.publish(k);
    // The engine marks a container "restarting" (and counts the restart) before it reports the die
    // when its restart policy will bring it back: that restart is Docker's, not ours to add to.
    if (details.state === 'restarting' || details.state === 'running') return;
    if (inCrashLoop(k.history, this.d.clock.now(), this.opts.crashLoop)) {
      this.d.log.warn(
        { event: 'crash_loop', container: k.name, exitCode },
        `${k.name} exited in a crash loop: left to a human, not restarted`,
      );
      return;
    }
    this.d.engine.observe(this.view(k));
    const oom = details.oomKilled || k.oomAt !== undefined;
    const code = Number.isNaN(exitCode) ? details.exitCode : exitCode;
    const failed = isFailedExit({
      exitCode: code,
      oomKilled: oom,
      restartPolicy: k.restartPolicy,
      hasHealthCheck: details.hasHealthCheck,
      labels: k.labels,
    });
    if (!failed) {
      this.d.log.info(
        { event: 'exited', container: k.name, exitCode: code, restartPolicy: k.restartPolicy },
        `${k.name} finished (exit code 0, restart policy ${k.restartPolicy}): not a failure`,
      );
      return;
    }
    this.signal(
      k,
      'exited',
      'docker_event',
      `exited with code ${code}${oom ? ' (out of memory)' : ''}`,
      code === 0 ? exitZeroHealAction(k.labels) : undefined,
    );
  }

  /** Our own remediations stop and start containers too; the engine's record says when it is acting. */
  private isOurs(name: string, eventTime: number): boolean {
    const r = this.d.store.record(name);
    if (!r) return false;
    if (r.inFlight) return true;
    const replayed = this.d.clock.now() - eventTime > REPLAY_AGE_MS;
    return (
      replayed &&
      r.lastActionAt !== undefined &&
      eventTime >= r.lastActionAt &&
      eventTime - r.lastActionAt < OWN_ACTION_WINDOW_MS
    );
  }

  /**
   * A container inside its start period is skipped by the policy; the engine reports health only when it
   * changes, so without this a container still unhealthy at the end of the period would wait for the
   * next reconcile.
   */
  private recheckAfterStartPeriod(k: Tracked, at: number): void {
    if (k.startedAt === undefined) return;
    const left = k.startedAt + startPeriodOf(k, this.d.config.startPeriodMs) - at;
    if (left <= 0) return;
    clearTimeout(k.startPeriodTimer);
    k.startPeriodTimer = setTimeout(() => {
      k.startPeriodTimer = undefined;
      if (this.stopped || this.known.get(k.id) !== k) return;
      if (k.state === 'running' && k.health === 'unhealthy') {
        this.signal(k, 'unhealthy', 'reconcile', 'still unhealthy at the end of its start period');
      }
    }, left + 50).unref();
  }

  private signal(
    k: Tracked,
    condition: Condition,
    source: 'docker_event' | 'reconcile',
    reason: string,
    action?: string,
  ): void {
    if (!this.d.config.watcherHeal) return;
    try {
      this.d.engine.ingest([
        watcherSignal(k, { source, condition, now: this.d.clock.now(), reason, action }),
      ]);
    } catch (err) {
      this.d.log.error({ err, container: k.name, condition }, 'cannot record a watcher signal');
    }
  }

  // The reconcile poll --------------------------------------------------------------------------------

  private scheduleReconcile(): void {
    if (this.stopped) return;
    this.reconcileTimer = setTimeout(async () => {
      if (this.isConnected) {
        try {
          await this.reconcile();
        } catch (err) {
          // The engine stopped answering under a stream that looks alive: drop it and reconnect.
          this.d.log.warn({ err }, 'reconcile failed; reconnecting to the docker engine');
          this.streamAbort?.abort();
        }
      }
      this.scheduleReconcile();
    }, this.d.config.watchdogIntervalMs);
    this.reconcileTimer.unref();
  }

  /** One pass: one list call, gauges, recovery bookkeeping, and signals for what the stream missed. */
  reconcile(): Promise<void> {
    this.reconciling ??= this.reconcileOnce().finally(() => {
      this.reconciling = undefined;
    });
    return this.reconciling;
  }

  private async reconcileOnce(): Promise<void> {
    const t0 = performance.now();
    const ctx = this.d.engine.policyContext;
    const list = await this.d.docker.listContainers({ all: true, labels: scopeListFilter(ctx) });
    const seen = new Set<string>();
    const fresh: Tracked[] = [];
    for (const c of list) {
      const existing = this.known.get(c.id);
      if (!this.watched(c)) {
        if (existing) this.forget(existing);
        continue;
      }
      seen.add(c.id);
      const k = existing ?? this.track(c.id, c.name, c.labels);
      const wasRunning = existing !== undefined && k.state === 'running';
      k.name = c.name;
      k.state = c.state;
      k.health = c.health;
      if (!k.inspected) fresh.push(k);
      this.publish(k);
      const view = this.view(k);
      this.d.engine.observe(view, c.state === 'running' ? { stoppedByOperator: false } : undefined);
      const exitCode = exitCodeFromStatus(c.status);
      // A given-up container waits for a human or its recovery (observe above sees that): signalling it
      // at every pass would only add the same skip to its log and incident, forever.
      const givenUp = this.d.store.record(k.name)?.givenUp === true;
      if (!givenUp && c.state === 'running' && c.health === 'unhealthy') {
        this.signal(k, 'unhealthy', 'reconcile', 'unhealthy at reconcile');
      } else if (
        !givenUp &&
        wasRunning &&
        c.state === 'exited' &&
        isFailedExit({
          exitCode,
          restartPolicy: k.restartPolicy,
          hasHealthCheck: k.hasHealthCheck,
          labels: k.labels,
        }) &&
        k.operatorStopAt === undefined &&
        !this.d.store.record(k.name)?.stoppedByOperator &&
        !this.isOurs(k.name, this.d.clock.now()) &&
        !inCrashLoop(k.history, this.d.clock.now(), this.opts.crashLoop)
      ) {
        // Running at the last look and exited now, with no event seen: the stream missed its exit.
        this.signal(
          k,
          'exited',
          'reconcile',
          'exited (seen at reconcile)',
          exitCode === 0 ? exitZeroHealAction(k.labels) : undefined,
        );
      }
    }
    for (const k of [...this.known.values()]) if (!seen.has(k.id)) this.forget(k);
    await this.inspectAll(fresh);
    const seconds = (performance.now() - t0) / 1000;
    this.stats.reconciles++;
    this.stats.lastReconcileMs = seconds * 1000;
    this.d.metrics.reconcileDuration.observe(seconds);
  }

  /** First sight of a container: its restart count, policy and start time are only in inspect. */
  private async inspectAll(ks: ReadonlyArray<Tracked>): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < ks.length) {
        const k = ks[next++];
        if (k) await this.refresh(k).catch(() => undefined);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.inspectConcurrency, ks.length) }, worker));
  }

  private async refresh(k: Tracked): Promise<void> {
    const details = await this.d.docker.inspect(k.id);
    if (!details) {
      this.forget(k);
      return;
    }
    this.absorb(k, details);
    this.publish(k);
  }

  private absorb(
    k: Tracked,
    d: Pick<ContainerView, 'state' | 'health' | 'startedAt' | 'restartCount'> & {
      restartPolicy: string;
      hasHealthCheck?: boolean;
    },
  ): void {
    k.inspected = true;
    if (d.hasHealthCheck !== undefined) k.hasHealthCheck = d.hasHealthCheck;
    k.state = d.state;
    k.health = d.health;
    k.startedAt = d.startedAt ?? k.startedAt;
    k.restartPolicy = d.restartPolicy;
    if (d.restartCount === undefined) return;
    k.restartCount = d.restartCount;
    const now = this.d.clock.now();
    const o = observeRestartCount(k.history, d.restartCount, now, this.opts.crashLoop);
    k.history = o.next;
    if (o.verdict !== 'crash_loop') return;
    const detail = `restarted ${o.restartsInWindow} times by its restart policy (${k.restartPolicy}) in ${Math.round(
      this.opts.crashLoop.windowMs / 1000,
    )}s; restart count ${d.restartCount}`;
    this.d.log.warn({ event: 'crash_loop', container: k.name, detail }, `crash loop: ${k.name}`);
    if (!this.d.config.watcherHeal) return;
    const signal = watcherSignal(k, {
      source: 'docker_event',
      condition: 'crash_loop',
      now,
      reason: 'crash loop under the restart policy',
    });
    this.d.engine.notifyOnly(signal, 'crash_loop', this.view(k), detail);
  }

  // Bookkeeping ---------------------------------------------------------------------------------------

  private watched(c: Pick<ContainerView, 'id' | 'name' | 'labels'>): boolean {
    return checkScope({ ...c, state: 'unknown', health: 'none' }, this.d.engine.policyContext).ok;
  }

  private track(id: string, name: string, labels: Readonly<Record<string, string>>): Tracked {
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
      oomAt: undefined,
      history: emptyHistory,
      chain: Promise.resolve(),
      startPeriodTimer: undefined,
    };
    this.known.set(id, k);
    return k;
  }

  private forget(k: Tracked): void {
    clearTimeout(k.startPeriodTimer);
    this.known.delete(k.id);
    if (k.series) this.dropSeries(k.series);
  }

  private view(k: Tracked): ContainerView {
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

  private publish(k: Tracked): void {
    const { containerHealthy, containerUp, containerRestarts } = this.d.metrics;
    const labels = seriesLabels(k);
    if (
      k.series &&
      (k.series.container !== labels.container ||
        k.series.service !== labels.service ||
        k.series.project !== labels.project)
    ) {
      this.dropSeries(k.series, k);
    }
    k.series = labels;
    containerHealthy.set(labels, healthyValue(k));
    containerUp.set(labels, k.state === 'running' ? 1 : 0);
    if (k.restartCount !== undefined) containerRestarts.set(labels, k.restartCount);
  }

  /** Removes a container's series unless another watched container (a recreated one) now owns them. */
  private dropSeries(s: Series, except?: Tracked): void {
    for (const other of this.known.values()) {
      if (other === except || !other.series) continue;
      if (
        other.series.container === s.container &&
        other.series.service === s.service &&
        other.series.project === s.project
      ) {
        return;
      }
    }
    const { containerHealthy, containerUp, containerRestarts } = this.d.metrics;
    containerHealthy.remove(s);
    containerUp.remove(s);
    containerRestarts.remove(s);
  }
}
