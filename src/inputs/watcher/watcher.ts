// The health watcher: the input that follows the Docker engine's own event stream and turns a failure of
// a watched container into a signal the moment the engine reports it, with a reconcile poll every
// WATCHDOG_INTERVAL behind it that catches whatever the stream missed and keeps the per-container gauges.
// It decides nothing: whose stop an event is, what an exit asks for and when to hold back from a crash
// loop are the watch rules' (core/watch-rules.ts); every signal goes through engine.ingest and the one
// policy (core/policy.ts). The stream is event-stream.ts, the memory tracker.ts, the gauges gauges.ts.
import { explainEngineError } from '../../startup.js';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import type { Clock } from '../../core/clock.js';
import { type CrashLoopPolicy, DEFAULT_CRASH_LOOP } from '../../core/crash-loop.js';
import { checkScope, scopeListFilter } from '../../core/scope.js';
import type { Condition, ContainerView, HealthStatus } from '../../core/types.js';
import {
  exitVerdict,
  exitZeroHealAction,
  isFailedExit,
  ownAction,
  reconcileVerdict,
  STREAM_GRACE_MS,
  restartCountVerdict,
  whoStopped,
} from '../../core/watch-rules.js';
import type { DockerClient, DockerEvent } from '../../docker/client.js';
import type { Engine } from '../../engine/engine.js';
import type { Metrics } from '../../metrics.js';
import type { Store } from '../../state/store.js';
import { EventStream, type EventStreamOptions } from './event-stream.js';
import { ContainerGauges } from './gauges.js';
import { eventKind, exitCodeFromStatus, healthFromAction, startPeriodOf, watcherSignal } from './signals.js';
import { type Inspected, type Tracked, Tracker, viewOf } from './tracker.js';

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

export interface WatcherOptions extends EventStreamOptions {
  readonly crashLoop?: CrashLoopPolicy;
  /** Parallel inspects when the reconcile meets containers it has not seen before. */
  readonly inspectConcurrency?: number;
}

export class Watcher {
  private readonly tracker = new Tracker();
  private readonly gauges: ContainerGauges;
  private readonly stream: EventStream;
  private readonly crashLoop: CrashLoopPolicy;
  private readonly inspectConcurrency: number;
  private stopped = true;
  private reconcileTimer: NodeJS.Timeout | undefined;
  /** One extra pass for the exits a pass found with no event yet (STREAM_GRACE_MS later). */
  private recheckTimer: NodeJS.Timeout | undefined;
  private reconciling: Promise<void> | undefined;
  private isConnected = false;
  private reported = false;
  /** Counters for tests, benchmarks and the log. */
  readonly stats = { connects: 0, events: 0, reconciles: 0, lastReconcileMs: 0 };

  constructor(
    private readonly deps: WatcherDeps,
    options: WatcherOptions = {},
  ) {
    this.crashLoop = options.crashLoop ?? DEFAULT_CRASH_LOOP;
    this.inspectConcurrency = options.inspectConcurrency ?? 8;
    this.gauges = new ContainerGauges(deps.metrics, () => this.tracker.all());
    this.stream = new EventStream(
      {
        docker: deps.docker,
        clock: deps.clock,
        relist: () => this.reconcile(),
        onEvent: (ev) => this.onEvent(ev),
        onConnection: (ok, reason) => {
          if (ok) this.stats.connects++;
          this.setConnected(ok, reason);
        },
      },
      options,
    );
  }

  /** True while the engine answers and the event stream is followed. */
  get connected(): boolean {
    return this.isConnected;
  }

  /** How many containers are watched now (bounded: one entry and three series per watched container). */
  get watchedCount(): number {
    return this.tracker.size;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.stream.start();
    this.scheduleReconcile();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.reconcileTimer);
    clearTimeout(this.recheckTimer);
    for (const k of this.tracker.all()) clearTimeout(k.startPeriodTimer);
    await this.stream.stop();
    // Events being applied may wait on an inspect of an engine that is gone: do not hold shutdown for it.
    const applying = Promise.allSettled([...this.tracker.all()].map((k) => k.chain));
    await Promise.race([applying, sleep(2000)]);
  }

  private setConnected(ok: boolean, reason: string): void {
    const { metrics, log, config, engine } = this.deps;
    metrics.dockerConnected.set(ok ? 1 : 0);
    // Logged once per change, not on every failed attempt of an outage.
    if (ok === this.isConnected && this.reported) return;
    this.reported = true;
    this.isConnected = ok;
    if (ok) {
      try {
        engine.retryPending?.();
      } catch (err) {
        log.error({ err }, 'cannot retry the signals waiting for the engine');
      }
      log.info(
        { event: 'docker_connected', dockerHost: config.dockerHost, watched: this.tracker.size },
        'following the docker engine event stream',
      );
    } else {
      // A refused socket says its group and the fix (--group-add, DOCKER_GID), not only EACCES.
      const explained = explainEngineError(config.dockerHost, reason);
      log.error(
        { event: 'docker_unreachable', dockerHost: config.dockerHost, reason: explained },
        `docker engine event stream lost at ${config.dockerHost}: ${explained}; reconnecting with back-off`,
      );
    }
  }

  // Events ---------------------------------------------------------------------------------------------

  private onEvent(ev: DockerEvent): void {
    this.stats.events++;
    this.deps.metrics.dockerEvents.inc({ action: eventKind(ev.action) });

    const existing = this.tracker.get(ev.id);
    if (!this.watched({ id: ev.id, name: ev.name, labels: ev.labels })) {
      if (existing) this.forget(existing);
      return;
    }
    if (ev.action === 'destroy') {
      if (existing) this.forget(existing);
      return;
    }
    const k = existing ?? this.tracker.track(ev.id, ev.name, ev.labels);
    if (k.name !== ev.name) k.name = ev.name;
    // Whose kill/stop this is must be judged on arrival: our record says "in flight" only while it runs.
    const own = ownAction(this.deps.store.record(k.name), ev.time, this.deps.clock.now()).own;
    k.eventsPending++;
    k.chain = k.chain
      .then(() => this.apply(k, ev, own))
      .catch((err) =>
        this.deps.log.error({ err, container: k.name, action: ev.action }, 'watcher event failed'),
      )
      .finally(() => {
        k.eventsPending--;
      });
  }

  private async apply(k: Tracked, ev: DockerEvent, own: boolean): Promise<void> {
    if (!this.tracker.holds(k)) return; // destroyed meanwhile
    // The stream has news of this container: an exit a pass found is the events' to judge now.
    k.exitSeenAt = undefined;
    const health = healthFromAction(ev.action);
    if (health !== undefined) return this.onHealth(k, health, ev);
    switch (ev.action) {
      case 'start':
        return this.onStart(k, ev);
      case 'kill':
      case 'stop':
        return this.onStop(k, ev, own);
      case 'oom':
        k.oomAt = ev.time;
        return;
      case 'die':
        return this.onDie(k, ev, own);
    }
  }

  private onHealth(k: Tracked, health: HealthStatus, ev: DockerEvent): void {
    k.state = 'running';
    k.health = health;
    this.gauges.publish(k);
    this.deps.engine.observe(viewOf(k));
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
    if (!this.tracker.holds(k)) return;
    this.gauges.publish(k);
    this.deps.engine.observe(viewOf(k), { stoppedByOperator: false });
  }

  /** kill marks an operator's stop; stop (the container is down) also tells the record. */
  private onStop(k: Tracked, ev: DockerEvent, own: boolean): void {
    const event = ev.action === 'kill' ? 'kill' : 'stop';
    if (event === 'stop') {
      k.state = 'exited';
      this.gauges.publish(k);
    }
    const who = whoStopped({ event, time: ev.time, own, operatorStopAt: k.operatorStopAt });
    if (who.by !== 'operator') return;
    k.operatorStopAt = who.operatorStopAt;
    if (!who.stoppedByOperator) return;
    clearTimeout(k.startPeriodTimer);
    this.deps.engine.observe(viewOf(k), { stoppedByOperator: true });
  }

  private async onDie(k: Tracked, ev: DockerEvent, own: boolean): Promise<void> {
    const { docker, engine, log, clock } = this.deps;
    k.state = 'exited';
    k.health = 'none';
    clearTimeout(k.startPeriodTimer);
    this.gauges.publish(k);
    const who = whoStopped({ event: 'die', time: ev.time, own, operatorStopAt: k.operatorStopAt });
    if (who.by === 'service') return;
    if (who.by === 'operator') {
      // docker stop / docker kill: kill came first. Never heal what an operator stopped.
      engine.observe(viewOf(k), { stoppedByOperator: true });
      return;
    }
    const exitCode = Number(ev.attributes.exitCode ?? Number.NaN);
    const details = await docker.inspect(k.id);
    if (!details) return;
    this.absorb(k, details);
    this.gauges.publish(k);
    const oomKilled = details.oomKilled || k.oomAt !== undefined;
    const code = Number.isNaN(exitCode) ? details.exitCode : exitCode;
    const exit = exitVerdict({
      state: details.state,
      exitCode: code,
      oomKilled,
      restartPolicy: k.restartPolicy,
      failedExit: isFailedExit({
        exitCode: code,
        oomKilled,
        restartPolicy: k.restartPolicy,
        hasHealthCheck: details.hasHealthCheck,
        labels: k.labels,
        actions: this.deps.engine.policyContext.actions,
      }),
      history: k.history,
      crashLoop: this.crashLoop,
      now: clock.now(),
    });
    switch (exit.verdict) {
      case 'policy_restart':
        return;
      case 'crash_loop_hold':
        log.warn({ event: 'crash_loop', container: k.name, exitCode }, `${k.name} ${exit.reason}`);
        return;
      case 'finished':
        engine.observe(viewOf(k));
        log.info(
          { event: 'exited', container: k.name, exitCode: code, restartPolicy: k.restartPolicy },
          `${k.name} ${exit.reason}`,
        );
        return;
      case 'failed':
        engine.observe(viewOf(k));
        this.signal(
          k,
          'exited',
          'docker_event',
          exit.reason,
          code === 0 ? exitZeroHealAction(k.labels, this.deps.engine.policyContext.actions) : undefined,
        );
    }
  }

  /**
   * A container inside its start period is skipped by the policy; the engine reports health only when it
   * changes, so without this a container still unhealthy at the end of the period would wait for the
   * next reconcile.
   */
  private recheckAfterStartPeriod(k: Tracked, at: number): void {
    if (k.startedAt === undefined) return;
    const left = k.startedAt + startPeriodOf(k, this.deps.config.startPeriodMs) - at;
    if (left <= 0) return;
    clearTimeout(k.startPeriodTimer);
    k.startPeriodTimer = setTimeout(() => {
      k.startPeriodTimer = undefined;
      if (this.stopped || !this.tracker.holds(k)) return;
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
    if (!this.deps.config.watcherHeal) return;
    try {
      this.deps.engine.ingest([
        watcherSignal(k, { source, condition, now: this.deps.clock.now(), reason, action }),
      ]);
    } catch (err) {
      this.deps.log.error({ err, container: k.name, condition }, 'cannot record a watcher signal');
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
          this.deps.log.warn({ err }, 'reconcile failed; reconnecting to the docker engine');
          this.stream.reconnect();
        }
      }
      this.scheduleReconcile();
    }, this.deps.config.watchdogIntervalMs);
    this.reconcileTimer.unref();
  }

  /** An extra pass once the exits found with no event have waited STREAM_GRACE_MS for one. */
  private scheduleRecheck(): void {
    if (this.stopped || this.recheckTimer !== undefined) return;
    this.recheckTimer = setTimeout(() => {
      this.recheckTimer = undefined;
      if (!this.isConnected || this.stopped) return;
      this.reconcile().catch((err) => this.deps.log.warn({ err }, 'reconcile failed'));
    }, STREAM_GRACE_MS + 50);
    this.recheckTimer.unref();
  }

  /** One pass: one list call, gauges, recovery bookkeeping, and signals for what the stream missed. */
  reconcile(): Promise<void> {
    this.reconciling ??= this.reconcileOnce().finally(() => {
      this.reconciling = undefined;
    });
    return this.reconciling;
  }

  private async reconcileOnce(): Promise<void> {
    const { docker, engine, store, clock, metrics } = this.deps;
    const t0 = performance.now();
    const list = await docker.listContainers({ all: true, labels: scopeListFilter(engine.policyContext) });
    const seen = new Set<string>();
    const fresh: Tracked[] = [];
    for (const c of list) {
      const existing = this.tracker.get(c.id);
      if (!this.watched(c)) {
        if (existing) this.forget(existing);
        continue;
      }
      seen.add(c.id);
      const k = existing ?? this.tracker.track(c.id, c.name, c.labels);
      const wasRunning = existing !== undefined && k.state === 'running';
      k.name = c.name;
      k.state = c.state;
      k.health = c.health;
      if (!k.inspected) fresh.push(k);
      this.gauges.publish(k);
      const view = viewOf(k);
      engine.observe(view, c.state === 'running' ? { stoppedByOperator: false } : undefined);
      const exitCode = exitCodeFromStatus(c.status);
      const found = reconcileVerdict({
        // Read after observe, which may have just changed it (a recovery, the operator-stop flag).
        record: store.record(k.name),
        view,
        wasRunning,
        exitSeenAt: k.exitSeenAt,
        eventsPending: k.eventsPending > 0,
        failedExit: isFailedExit({
          exitCode,
          restartPolicy: k.restartPolicy,
          hasHealthCheck: k.hasHealthCheck,
          labels: k.labels,
          actions: this.deps.engine.policyContext.actions,
        }),
        operatorStopAt: k.operatorStopAt,
        history: k.history,
        crashLoop: this.crashLoop,
        now: clock.now(),
      });
      if (found.reason === 'awaiting_events') {
        k.exitSeenAt ??= clock.now();
        this.scheduleRecheck();
      } else k.exitSeenAt = undefined;
      if (found.signal === 'unhealthy') this.signal(k, 'unhealthy', 'reconcile', found.reason);
      if (found.signal === 'exited') {
        const action =
          exitCode === 0 ? exitZeroHealAction(k.labels, this.deps.engine.policyContext.actions) : undefined;
        this.signal(k, 'exited', 'reconcile', found.reason, action);
      }
    }
    for (const k of [...this.tracker.all()]) if (!seen.has(k.id)) this.forget(k);
    this.gauges.publishReplicas();
    await this.inspectAll(fresh);
    const seconds = (performance.now() - t0) / 1000;
    this.stats.reconciles++;
    this.stats.lastReconcileMs = seconds * 1000;
    metrics.reconcileDuration.observe(seconds);
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
    await Promise.all(Array.from({ length: Math.min(this.inspectConcurrency, ks.length) }, worker));
  }

  private async refresh(k: Tracked): Promise<void> {
    const details = await this.deps.docker.inspect(k.id);
    if (!details) {
      this.forget(k);
      return;
    }
    this.absorb(k, details);
    this.gauges.publish(k);
  }

  /** Takes in an inspect; restarts by Docker's own policy that make a new crash loop are escalated. */
  private absorb(k: Tracked, details: Inspected): void {
    const { log, config, engine, clock } = this.deps;
    this.tracker.absorb(k, details);
    if (details.restartCount === undefined) return;
    const now = clock.now();
    const restarts = restartCountVerdict({
      history: k.history,
      restartCount: details.restartCount,
      restartPolicy: k.restartPolicy,
      crashLoop: this.crashLoop,
      now,
    });
    k.history = restarts.history;
    if (!restarts.escalate) return;
    const { detail } = restarts.escalate;
    log.warn({ event: 'crash_loop', container: k.name, detail }, `crash loop: ${k.name}`);
    if (!config.watcherHeal) return;
    const signal = watcherSignal(k, {
      source: 'docker_event',
      condition: 'crash_loop',
      now,
      reason: 'crash loop under the restart policy',
    });
    engine.notifyOnly(signal, 'crash_loop', viewOf(k), detail);
  }

  // Bookkeeping ---------------------------------------------------------------------------------------

  private watched(c: Pick<ContainerView, 'id' | 'name' | 'labels'>): boolean {
    return checkScope({ ...c, state: 'unknown', health: 'none' }, this.deps.engine.policyContext).ok;
  }

  private forget(k: Tracked): void {
    this.tracker.forget(k);
    if (k.series) this.gauges.drop(k.series);
  }
}
