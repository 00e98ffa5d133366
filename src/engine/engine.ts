// The incident engine: the one path every signal takes, whichever input it came from.
//   intake (intake.ts: de-duplicated, journalled) → runSignal: admit (core/policy.ts) → resolve the
//   target (core/targets.ts) → the container path (remediate.ts: decide, act through deps.actions,
//   verify, record) or the host path (host-cleanup.ts)
// Around it: retries.ts (the next attempt's timer), resume.ts (actions a restart of the service
// interrupted), report.ts (audit, incident timeline, escalations, gauges); the waiting room for signals
// that could not be decided is here. Every decision and record transition is a pure function in core/;
// the stages apply them, one state write per step, and own the effects.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import pLimit from 'p-limit';
import type { ActionContext, Bound } from '../actions/handler.js';
import { hostOnly, NO_ACTION } from '../core/actions.js';
import type { EscalationKind } from '../core/escalation.js';
import { deferDelayMs, isTransientError, MAX_TRIES_OF_A_FAULTY_SIGNAL } from '../core/pending.js';
import { admit, type PolicyContext, recordAction } from '../core/policy.js';
import { incidentEnded, observed, resetRecord } from '../core/records.js';
import { alertResolved } from '../core/scale.js';
import { actedOnAs, describeTarget, kindOf, type TargetResolution } from '../core/targets.js';
import {
  type ContainerRecord,
  type ContainerView,
  type Decision,
  emptyRecord,
  type Signal,
} from '../core/types.js';
import { lookupTargets } from '../docker/client.js';
import { resolveSelfContainerId } from '../self.js';
import { StateWriteError } from '../state/journal.js';
import type { EngineDeps, EngineIo } from './deps.js';
import { runHostAction } from './host-cleanup.js';
import { acceptSignals } from './intake.js';
import { ContainerPath } from './remediate.js';
import { Report } from './report.js';
import { Resumption } from './resume.js';
import { runComposeServiceAction } from './scale-path.js';
import { runStackAction } from './stack-path.js';
import { runSwarmAction } from './swarm-path.js';
import { RetryTimers } from './retries.js';

export type { EngineDeps } from './deps.js';
export { dedupKey } from './intake.js';

export interface IngestResult {
  readonly accepted: ReadonlyArray<Signal>;
  readonly duplicates: number;
}

export class Engine {
  private readonly busy = new Set<string>();
  private readonly limit: ReturnType<typeof pLimit>;
  /** MAX_PARALLEL as the actions see it: run inside it, or ask whether a slot is free. */
  private readonly bound: Bound;
  private readonly retries: RetryTimers;
  private readonly running = new Set<Promise<unknown>>();
  /** Not readonly: SELF_CONTAINER_ID given as a name is replaced by the container's full id at start. */
  private ctx: PolicyContext;
  private stopping = false;
  /** Signals that could not be decided (engine or state unreachable): kept in the inbox, retried. */
  private readonly waiting = new Map<string, { signal: Signal; tries: number; timer: NodeJS.Timeout }>();
  private selfResolved = false;
  /** Batches accepted but not yet handed to dispatch (they start on the next turn of the loop). */
  private scheduled = 0;
  private readonly report: Report;
  /** What the stages share (deps.ts): built once, handed to each. */
  private readonly io: EngineIo;
  private readonly containers: ContainerPath;
  private readonly resumption: Resumption;

  constructor(private readonly deps: EngineDeps) {
    const c = deps.config;
    this.limit = pLimit(c.maxParallel);
    // Queued work counts as taken: p-limit queues synchronously and starts work a microtask later.
    this.bound = Object.assign(<T>(work: () => Promise<T>) => this.limit(work), {
      free: () => this.limit.activeCount + this.limit.pendingCount < this.limit.concurrency,
    });
    this.retries = new RetryTimers(
      deps,
      (signal) => this.ingest([signal]),
      () => this.stopping,
    );
    this.report = new Report(deps, c.nodeName ?? hostname(), () => this.waiting.size);
    this.ctx = {
      scope: c.scope,
      composeProject: c.composeProject,
      selfContainerId: c.selfContainerId,
      dryRun: c.dryRun,
      policy: c.policy,
      startPeriodMs: c.startPeriodMs,
      nodeName: c.nodeName,
      actions: deps.actions,
      scale: { min: c.scale.min, max: c.scale.max },
    };
    deps.metrics.primeActions(deps.actions.keys());
    this.io = {
      deps,
      report: this.report,
      retries: this.retries,
      busy: this.busy,
      limit: this.limit,
      bound: this.bound,
      ctx: () => this.ctx,
      stopping: () => this.stopping,
      durably: (fn) => this.durably(fn),
      countForCircuit: (now) => this.countForCircuit(now),
      handlerContext: (signal) => this.handlerContext(signal),
    };
    this.containers = new ContainerPath(this.io, (name) => this.resumption.of(name));
    this.resumption = new Resumption(this.io, this.containers);
  }

  get policyContext(): PolicyContext {
    return this.ctx;
  }

  /**
   * Durably accepts signals: de-duplicates, records them in the inbox, then processes them in the
   * background. Throws StateWriteError when the state cannot be written (nothing was accepted).
   */
  ingest(signals: ReadonlyArray<Signal>): IngestResult {
    const { accepted, duplicates } = this.durably(() =>
      acceptSignals(this.deps.store, signals, this.deps.clock.now()),
    );
    for (const [s, key] of duplicates)
      this.report.audit(s, { verdict: 'skip', reason: 'duplicate', detail: key });
    if (accepted.length) {
      // The signals are durable now: the caller (the webhook) answers first, the work starts after.
      this.scheduled++;
      setImmediate(() => {
        this.scheduled--;
        // Stopping: they stay in the inbox and are replayed at the next start.
        if (!this.stopping) for (const s of accepted) this.dispatch(s);
      });
    }
    return { accepted, duplicates: duplicates.length };
  }

  /** Runs fn's state changes as one durable write; a failed write is counted and rethrown. */
  private durably<R>(fn: () => R): R {
    try {
      return this.deps.store.batch(fn);
    } catch (err) {
      this.deps.metrics.stateErrors.inc({ op: 'write' });
      throw err;
    }
  }

  /**
   * A manual request (admin API, CLI, schedule): records a queued remediation the caller can follow,
   * then takes the same path as every other signal. Returns the remediation id (the one given, for an
   * Idempotency-Key; a new one otherwise).
   */
  request(signal: Omit<Signal, 'remediationId'>, remediationId?: string): string {
    const id = remediationId ?? randomUUID();
    const s: Signal = { ...signal, remediationId: id };
    // Queued record and accepted signal land in one write: never a request stuck in "queued".
    this.durably(() => {
      this.deps.store.upsertRemediation(this.deps.clock.now(), s, id, {
        state: 'queued',
        container: undefined,
        action: signal.action ?? NO_ACTION,
      });
      acceptSignals(this.deps.store, [s], this.deps.clock.now());
    });
    this.dispatch(s);
    return id;
  }

  /**
   * After a restart of the service: verifies the actions it was carrying out when it died (never
   * starting them again), schedules pending retries, and replays the signals still in the inbox.
   */
  start(): void {
    const now = this.deps.clock.now();
    const pending = this.deps.store.pending();
    for (const p of this.resumption.start(pending)) this.track(p);
    for (const r of this.deps.store.records()) {
      if (r.pendingRetry && !r.givenUp && !this.resumption.has(r.name))
        this.retries.schedule(r.name, r.pendingRetry.action, Math.max(now, r.pendingRetry.at));
    }
    for (const s of pending) this.dispatch(s);
    // Silences of remediations that ended before the restart (their expiry was lost with the process).
    for (const key of this.deps.silences?.held() ?? []) {
      const r = this.deps.store.record(key);
      if (!r?.inFlight && !r?.incidentId) this.deps.silences?.release(key, 'ended before a restart');
    }
    this.report.refreshGauges();
    void this.resolveSelf();
  }

  /**
   * Decides the signals kept waiting for the engine now rather than at their next back-off (the health
   * watcher calls it when the engine answers again).
   */
  retryPending(): void {
    if (this.stopping) return;
    if (!this.selfResolved) void this.resolveSelf();
    for (const [id, w] of [...this.waiting]) {
      clearTimeout(w.timer);
      this.waiting.delete(id);
      this.dispatch(w.signal, w.tries);
    }
    this.deps.metrics.signalsPending.set(this.waiting.size);
  }

  /** SELF_CONTAINER_ID given as a name: matched by the container's id from now on, so a rename keeps it safe. */
  private async resolveSelf(): Promise<void> {
    const given = this.deps.config.selfContainerId;
    if (this.selfResolved || !given) return;
    try {
      const id = await resolveSelfContainerId(this.deps.docker, given);
      this.selfResolved = true;
      if (id === undefined) {
        this.deps.log.warn(
          { event: 'self', selfContainerId: given },
          'SELF_CONTAINER_ID names no container; the service protects a container of that name or id',
        );
      } else if (id !== this.ctx.selfContainerId) {
        this.ctx = { ...this.ctx, selfContainerId: id };
        this.deps.log.info({ event: 'self', selfContainerId: given, id }, 'own container resolved to its id');
      }
    } catch (err) {
      // The engine is not answering yet: retried when the watcher reconnects.
      this.deps.log.warn({ err, event: 'self' }, 'cannot resolve SELF_CONTAINER_ID yet');
    }
  }

  /** Stops retries and waits for running remediations, at most graceMs. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.retries.clear();
    // Waiting signals stay in the inbox: decided after the next start.
    for (const w of this.waiting.values()) clearTimeout(w.timer);
    this.waiting.clear();
    if (this.running.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.running]),
      new Promise((resolve) => {
        timer = setTimeout(resolve, graceMs);
      }),
    ]);
    clearTimeout(timer);
  }

  /** Resolves once every signal accepted so far has been processed (tests and benchmarks). */
  async idle(): Promise<void> {
    while (this.running.size || this.scheduled) {
      if (this.running.size) await Promise.allSettled([...this.running]);
      else await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /**
   * What the health watcher saw of a container: keeps the recovery bookkeeping (healthy since,
   * recovery of a given-up container, operator stops). Returns nothing; never acts on its own.
   */
  observe(c: ContainerView, event?: { stoppedByOperator?: boolean }): void {
    try {
      this.observeRecord(c, event);
    } catch (err) {
      // The watcher's event loop calls this: a state the disk refuses is not an engine-stream failure.
      if (!(err instanceof StateWriteError)) throw err;
      this.deps.metrics.stateErrors.inc({ op: 'write' });
      this.deps.log.error(
        { err, event: 'observe', container: c.name },
        `cannot record what the watcher saw of ${c.name}: the state directory refused the write (disk full?); it is seen again at the next reconcile`,
      );
    }
  }

  private observeRecord(c: ContainerView, event?: { stoppedByOperator?: boolean }): void {
    const now = this.deps.clock.now();
    const r = this.deps.store.record(c.name);
    const step = observed(
      r,
      c,
      { now, busy: this.busy.has(c.name), stoppedByOperator: event?.stoppedByOperator },
      this.deps.config.policy,
    );
    if (step.record) this.putRecord(step.record);
    if (step.recovered) {
      // The record first: the given-up gauge is counted from the records.
      this.report.closeIncident(step.recovered.incidentId, 'recovered', now, 'healthy again');
      this.report.refreshGauges();
      this.report.escalate('recovered', { container: c, detail: 'healthy again after the service gave up' });
    }
  }

  // Operator controls ------------------------------------------------------------------------------

  pause(name: string, untilMs: number | undefined): ContainerRecord {
    const r = this.deps.store.record(name) ?? emptyRecord(name);
    const next = { ...r, pausedUntil: untilMs };
    this.putRecord(next);
    return next;
  }

  reset(name: string): ContainerRecord {
    const r = this.deps.store.record(name) ?? emptyRecord(name);
    this.retries.cancel(name);
    if (r.incidentId)
      this.report.closeIncident(r.incidentId, 'reset', this.deps.clock.now(), 'reset by an operator');
    const next = resetRecord(r);
    this.putRecord(next);
    this.report.refreshGauges();
    return next;
  }

  // The pipeline -----------------------------------------------------------------------------------

  private dispatch(signal: Signal, tries = 0): void {
    this.track(
      this.runSignal(signal).then(
        () => this.markDone(signal.id),
        (err) => this.defer(signal, tries + 1, err),
      ),
    );
  }

  private track(p: Promise<unknown>): void {
    const tracked = p.finally(() => this.running.delete(tracked));
    this.running.add(tracked);
  }

  private markDone(signalId: string): void {
    try {
      this.deps.store.done(signalId);
    } catch (err) {
      this.deps.metrics.stateErrors.inc({ op: 'write' });
      this.deps.log.error({ err }, 'cannot mark a signal as processed; it will be replayed after a restart');
    }
  }

  /**
   * A signal that could not be decided (the engine or the state did not answer) stays in the inbox and
   * is decided later: Alertmanager was answered 200 and will not send it again (at-least-once ends
   * here). Retried with capped back-off, at once when the watcher sees the engine again, and after a
   * restart of the service. Only an error that no retry can cure ends it, after a few tries.
   */
  private defer(signal: Signal, tries: number, err: unknown): void {
    const transient = isTransientError(err);
    if (!transient && tries >= MAX_TRIES_OF_A_FAULTY_SIGNAL) {
      this.deps.log.error(
        { err, signalId: signal.id, tries, event: 'signal_dropped' },
        'processing a signal failed; dropped after repeated errors',
      );
      this.markDone(signal.id);
      return;
    }
    if (this.stopping) return; // still in the inbox: decided after the next start
    const delay = deferDelayMs(tries);
    this.deps.log.warn(
      {
        err,
        event: 'signal_deferred',
        signalId: signal.id,
        source: signal.source,
        alertname: signal.alertname,
        container: describeTarget(signal.target),
        tries,
        retryInMs: delay,
      },
      'a signal could not be decided; kept pending and retried',
    );
    const timer = setTimeout(() => {
      this.waiting.delete(signal.id);
      this.deps.metrics.signalsPending.set(this.waiting.size);
      if (!this.stopping) this.dispatch(signal, tries);
    }, delay);
    timer.unref();
    const previous = this.waiting.get(signal.id);
    if (previous) clearTimeout(previous.timer);
    this.waiting.set(signal.id, { signal, tries, timer });
    this.deps.metrics.signalsPending.set(this.waiting.size);
  }

  private async runSignal(signal: Signal): Promise<void> {
    if (signal.status === 'resolved') return this.onAlertResolved(signal);
    const outcome = await this.remediate(signal);
    // Alerts of the configured severities reach a human whatever was done about them.
    if (
      outcome !== undefined &&
      signal.source === 'alertmanager' &&
      signal.severity &&
      this.deps.config.telegram.severities.includes(signal.severity)
    ) {
      this.notifyOnly(signal, 'alert', outcome.container, outcome.summary, outcome.reclaimedBytes);
    }
  }

  /** Admits, resolves and acts on a firing signal; returns an account of what was done. */
  private async remediate(
    signal: Signal,
  ): Promise<
    { summary: string; container?: ContainerView | undefined; reclaimedBytes?: number } | undefined
  > {
    const admitted = admit(signal, this.ctx);
    if (!admitted.ok) {
      this.report.finishManual(signal, 'skipped', admitted.decision);
      this.report.audit(signal, admitted.decision);
      // Another host's alert is that host's instance to report.
      if (admitted.decision.reason === 'other_host') return undefined;
      const d = admitted.decision;
      return {
        summary: `no automatic action (${d.reason}${d.verdict === 'skip' && d.detail ? `: ${d.detail}` : ''})`,
      };
    }
    const action = admitted.action;
    // A host target, or an action that acts on the host as a whole (cleanup), takes the host path;
    // every other one names containers.
    const handler = this.deps.actions.get(action);
    if (kindOf(signal.target) === 'host' || hostOnly(this.deps.actions, action))
      return runHostAction(this.io, signal, action, handler);
    // A Swarm service is resolved through the manager and healed under the container path's policy.
    if (signal.target.kind === 'swarm') {
      if (handler && actedOnAs(handler.targets, signal.target) === 'swarm_service')
        return runSwarmAction(this.io, this.containers, signal, action, signal.target.service);
      const decision: Decision = {
        verdict: 'skip',
        reason: 'no_target',
        detail: `${action} does not act on Swarm services`,
      };
      this.report.finishManual(signal, 'skipped', decision);
      this.report.audit(signal, decision);
      return { summary: `no automatic action (no_target: ${decision.detail})` };
    }
    // A Compose service is one target to an action on whole services (scale_up, scale_down).
    if (handler && actedOnAs(handler.targets, signal.target) === 'compose_service')
      return runComposeServiceAction(this.io, this.containers, signal, action);
    // A Compose project is one target to an action on whole projects (restart_stack).
    if (
      signal.target.kind === 'project' &&
      handler &&
      actedOnAs(handler.targets, signal.target) === 'compose_project'
    )
      return runStackAction(this.io, signal, action, signal.target.project, handler);

    const found = await this.resolveTargets(signal);
    if (!found.ok) {
      // A name that breaks Docker's grammar (invalid_target) never reached the engine; an id prefix
      // that matches several containers (target_ambiguous) acts on none of them.
      const decision: Decision = { verdict: 'skip', reason: found.reason, detail: found.detail };
      this.report.finishManual(signal, 'skipped', decision);
      this.report.audit(signal, decision);
      return { summary: `no automatic action (${found.reason}: ${found.detail})` };
    }
    const targets = found.containers;
    if (signal.remediationId) {
      this.deps.store.updateRemediation(this.deps.clock.now(), signal.remediationId, {
        targets: targets.map((c) => c.name),
      });
    }
    const outcomes = handler?.oneAtATime
      ? await this.containers.oneAtATime(signal, action, targets)
      : await Promise.all(
          targets.map(async (c) => (await this.containers.remediateContainer(signal, action, c)).summary),
        );
    return { summary: outcomes.join('; '), container: targets.length === 1 ? targets[0] : undefined };
  }

  /**
   * The containers the signal names, from one listing (never `inspect(name)`: the engine reads any hex
   * text as an id prefix). Throws only when the engine fails, and the signal then stays pending.
   */
  private resolveTargets(signal: Signal): Promise<TargetResolution<ContainerView>> {
    return lookupTargets(this.deps.docker, signal.target);
  }

  private onAlertResolved(signal: Signal): void {
    const now = this.deps.clock.now();
    const decision: Decision = { verdict: 'skip', reason: 'resolved' };
    this.report.audit(signal, decision);
    // Its firing alert, if still waiting for the engine, is moot now.
    for (const [id, w] of signal.fingerprint ? [...this.waiting] : []) {
      const f = w.signal;
      if (f.source !== 'alertmanager' || f.status !== 'firing' || f.fingerprint !== signal.fingerprint)
        continue;
      clearTimeout(w.timer);
      this.waiting.delete(id);
      this.report.audit(f, {
        verdict: 'skip',
        reason: 'resolved',
        detail: 'resolved before it could be decided',
      });
      this.markDone(id);
    }
    this.deps.metrics.signalsPending.set(this.waiting.size);
    // A service it held scaled up may step back down once the stabilisation window has passed.
    if (signal.fingerprint) {
      const ledger = this.deps.store.scaleLedger();
      const next = alertResolved(ledger, signal.fingerprint, now);
      if (next !== ledger) this.durably(() => this.deps.store.putScaleLedger(next));
    }
    if (signal.target.kind !== 'container') return;
    const r = this.deps.store.record(signal.target.name);
    if (!r) return;
    this.retries.cancel(r.name);
    this.deps.silences?.release(r.name, 'resolved');
    if (r.incidentId)
      this.report.closeIncident(r.incidentId, 'resolved', now, `alert ${signal.alertname ?? ''} resolved`);
    this.putRecord(incidentEnded(r));
  }

  // Helpers ------------------------------------------------------------------------------------------

  private handlerContext(signal: Signal): ActionContext {
    return {
      docker: this.deps.docker,
      config: this.deps.config,
      log: this.deps.log,
      now: () => this.deps.clock.now(),
      params: signal.params,
    };
  }

  private countForCircuit(now: number): void {
    const { next, opened } = recordAction(this.deps.store.circuit(), now, this.deps.config.policy);
    this.deps.store.putCircuit(next);
    if (opened) {
      this.deps.log.error(
        { event: 'circuit_open', until: next.openUntil },
        'circuit breaker open: automatic actions paused',
      );
      this.report.escalate('circuit_open', {
        detail: `more than ${this.deps.config.policy.circuitMaxActions} actions in ${this.deps.config.policy.circuitWindowMs / 1000}s; automatic actions paused until ${new Date(next.openUntil ?? now).toISOString()}`,
      });
    }
    this.report.refreshGauges();
  }

  private putRecord(r: ContainerRecord): void {
    this.deps.store.putRecord(r);
  }

  /** Escalates a signal that asks for a human rather than an action (critical alerts, crash loops). */
  notifyOnly(
    signal: Signal,
    kind: EscalationKind,
    container?: ContainerView,
    detail?: string,
    reclaimedBytes?: number,
  ): void {
    this.report.escalate(kind, { signal, container, detail, reclaimedBytes });
  }
}
