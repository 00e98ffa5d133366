// The incident engine: the one path every signal takes, whichever input it came from.
//   intake (intake.ts: de-duplicated, journalled) → runSignal: admit → resolve targets → decide (pure,
//   core/policy.ts) → act (an action from deps.actions) → verify → record (core/records.ts)
// Around it: retries.ts (the next attempt's timer), host-cleanup.ts (actions on the host as a whole),
// report.ts (audit, incident timeline, escalations, gauges). Every decision and record transition is a
// pure function in core/; this class applies them, one state write per step, and owns the effects.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit from 'p-limit';
import { hostOnly } from '../core/actions.js';
import { CONTAINER_LABELS } from '../core/labels.js';
import { admit, decide, maxAttemptsFor, type PolicyContext, recordAction } from '../core/policy.js';
import {
  flappingReported,
  givenUp,
  incidentEnded,
  intentRecorded,
  observed,
  resetRecord,
  resultRecorded,
  resumed,
  skipConsequence,
} from '../core/records.js';
import { deferDelayMs, isTransientError, MAX_TRIES_OF_A_FAULTY_SIGNAL } from '../core/pending.js';
import { describeTarget, kindOf, type TargetResolution } from '../core/targets.js';
import {
  type ActionName,
  type ContainerRecord,
  type ContainerView,
  type Decision,
  emptyRecord,
  type RemediationResult,
  type Signal,
} from '../core/types.js';
import { type ContainerDetails, lookupContainer, lookupTargets } from '../docker/client.js';
import type { EscalationKind } from '../core/escalation.js';
import type { EngineDeps } from './deps.js';
import { acceptSignals } from './intake.js';
import { Report } from './report.js';
import { RetryTimers } from './retries.js';
import { runHostAction } from './host-cleanup.js';
import { accepts } from '../actions/handler.js';
import { verifyRecovery } from '../actions/verify.js';
import { resolveSelfContainerId } from '../self.js';
import type { RemediationState } from '../state/store.js';
import { StateWriteError } from '../state/journal.js';

export type { EngineDeps } from './deps.js';
export { dedupKey } from './intake.js';

export interface IngestResult {
  readonly accepted: ReadonlyArray<Signal>;
  readonly duplicates: number;
}

const isDetails = (c: ContainerView): c is ContainerDetails => 'hasHealthCheck' in c;

export class Engine {
  private readonly busy = new Set<string>();
  private readonly limit: ReturnType<typeof pLimit>;
  private readonly retries: RetryTimers;
  private readonly running = new Set<Promise<unknown>>();
  /** Not readonly: SELF_CONTAINER_ID given as a name is replaced by the container's full id at start. */
  private ctx: PolicyContext;
  private stopping = false;
  /** Actions interrupted by a restart of the service, being verified (by container name). */
  private readonly resuming = new Map<string, Promise<void>>();
  /** Signals that could not be decided (engine or state unreachable): kept in the inbox, retried. */
  private readonly waiting = new Map<string, { signal: Signal; tries: number; timer: NodeJS.Timeout }>();
  private selfResolved = false;
  /** Batches accepted but not yet handed to dispatch (they start on the next turn of the loop). */
  private scheduled = 0;
  private readonly report: Report;

  constructor(private readonly deps: EngineDeps) {
    const c = deps.config;
    this.limit = pLimit(c.maxParallel);
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
    };
    deps.metrics.primeActions(deps.actions.keys());
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
   * then takes the same path as every other signal. Returns the remediation id.
   */
  request(signal: Omit<Signal, 'remediationId'>): string {
    const id = randomUUID();
    const s: Signal = { ...signal, remediationId: id };
    // Queued record and accepted signal land in one write: never a request stuck in "queued".
    this.durably(() => {
      this.deps.store.upsertRemediation(this.deps.clock.now(), s, id, {
        state: 'queued',
        container: undefined,
        action: signal.action ?? 'none',
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
    const byId = new Map(pending.map((s) => [s.id, s]));
    for (const r of [...this.deps.store.records()]) {
      if (!r.inFlight) continue;
      const next = resumed(r, this.deps.config.policy.cooldownMs);
      this.deps.log.warn(
        {
          event: 'resume',
          container: r.name,
          action: r.inFlight.action,
          signalId: r.inFlight.signalId,
          remediationId: r.inFlight.remediationId,
          nextAllowedAt: next.nextAllowedAt,
        },
        'verifying an action interrupted by a restart of the service (it is not started again)',
      );
      this.putRecord(next);
      const origin = (r.inFlight.signalId && byId.get(r.inFlight.signalId)) || this.resumeSignal(r);
      this.track(this.resumeAction(r.name, origin));
    }
    for (const r of this.deps.store.records()) {
      if (r.pendingRetry && !r.givenUp && !this.resuming.has(r.name))
        this.retries.schedule(r.name, r.pendingRetry.action, Math.max(now, r.pendingRetry.at));
    }
    for (const s of pending) this.dispatch(s);
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
    if (kindOf(signal.target) === 'host' || hostOnly(this.deps.actions, action))
      return runHostAction(this.hostPath(), signal, action, this.deps.actions.get(action));

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
    const outcomes = await Promise.all(targets.map((c) => this.remediateContainer(signal, action, c)));
    return { summary: outcomes.join('; '), container: targets.length === 1 ? targets[0] : undefined };
  }

  /**
   * The containers the signal names, from one listing (never `inspect(name)`: the engine reads any hex
   * text as an id prefix). Throws only when the engine fails, and the signal then stays pending.
   */
  private resolveTargets(signal: Signal): Promise<TargetResolution<ContainerView>> {
    return lookupTargets(this.deps.docker, signal.target);
  }

  /** Decides and, when allowed, acts on one container; returns a one-line account of what happened. */
  private async remediateContainer(signal: Signal, action: ActionName, c: ContainerView): Promise<string> {
    // An action interrupted by a restart of the service is verified before anything else is decided.
    await this.resuming.get(c.name);
    const now = this.deps.clock.now();
    const record = this.deps.store.record(c.name);
    if (record?.lastSignalId === signal.id) {
      // A replay (after a restart of the service) of a signal whose action on this container was
      // already started: that action was carried out or verified; it is never decided again.
      this.deps.log.info(
        { event: 'replay', signalId: signal.id, container: c.name, action: record.lastAction },
        `${c.name}: this signal's ${record.lastAction ?? 'action'} was already carried out; not repeated`,
      );
      return `${c.name}: ${record.lastAction ?? action} already carried out for this signal`;
    }
    const decision = decide({
      signal,
      action,
      container: c,
      record,
      circuit: this.deps.store.circuit(),
      busy: this.busy.has(c.name),
      now,
      ctx: this.ctx,
    });
    this.report.audit(signal, decision, c.name);
    if (decision.verdict === 'skip') {
      this.recordSkip(signal, decision, c, record, now);
      this.report.finishManual(signal, 'skipped', decision, c.name);
      return `${c.name}: not acted on (${decision.reason}${decision.detail ? `: ${decision.detail}` : ''})`;
    }
    if (decision.dryRun) {
      this.deps.metrics.remediations.inc({ action, result: 'dry_run' });
      this.deps.log.info(
        { event: 'remediation', container: c.name, action, result: 'dry_run' },
        `dry run: would ${action}`,
      );
      this.report.finishManual(signal, 'dry_run', decision, c.name);
      return `${c.name}: dry run, would ${action}`;
    }
    this.busy.add(c.name);
    try {
      const result = await this.limit(() => this.act(signal, action, c, decision));
      return `${c.name}: ${action} ${result}`;
    } finally {
      this.busy.delete(c.name);
    }
  }

  /** What a skip does to the container's incident and standing state. */
  private recordSkip(
    signal: Signal,
    decision: Extract<Decision, { verdict: 'skip' }>,
    c: ContainerView,
    record: ContainerRecord | undefined,
    now: number,
  ): void {
    const consequence = skipConsequence(decision, record, c);
    if (consequence === 'report_flapping') {
      // Failing again after a verified heal, with the attempts used up: the humans are told once per
      // recovery, and the hold is an incident of its own that the next action continues.
      const r = record ?? emptyRecord(c.name);
      const incidentId = this.deps.store.openIncident(c.name, signal, now);
      this.report.addDecisionEvent(c.name, signal, decision, signal.action ?? 'none', now);
      this.deps.store.addIncidentEvent(c.name, signal, {
        at: now,
        type: 'escalation',
        reason: 'flapping',
        detail: decision.detail,
      });
      this.putRecord(flappingReported(r, now, incidentId));
      this.deps.log.warn(
        { event: 'flapping', container: c.name, attempts: r.attempts, detail: decision.detail },
        `${c.name} is flapping`,
      );
      this.report.escalate('flapping', {
        container: c,
        signal,
        detail: decision.detail,
        incident: this.deps.store.incident(incidentId),
      });
      this.report.refreshGauges();
      return;
    }
    // A skip that repeats the incident's last decision (a given-up container seen at every reconcile, a
    // cooldown) adds nothing to its timeline.
    if (record?.incidentId && this.report.lastDecisionOf(record.incidentId) !== decision.reason) {
      this.deps.store.addIncidentEvent(c.name, signal, {
        at: now,
        type: 'signal',
        source: signal.source,
        detail: signal.condition,
      });
      this.report.addDecisionEvent(c.name, signal, decision, signal.action ?? 'none', now);
    }
    if (!record) return;
    if (consequence === 'give_up') {
      this.giveUp(givenUp(record, now), c, signal, decision.detail);
    } else if (consequence === 'end_incident') {
      // Recovered by itself (or by an action a restart of the service interrupted): the incident is
      // over, and so is any retry scheduled for it.
      this.retries.cancel(c.name);
      this.putRecord(incidentEnded(record));
      this.report.closeIncident(record.incidentId, 'recovered', now, decision.detail ?? 'healthy again');
    }
  }

  /** Records the intent, runs the handler, verifies, and records the result. */
  private async act(
    signal: Signal,
    action: ActionName,
    view: ContainerView,
    decision: Decision,
  ): Promise<RemediationResult> {
    const { docker, config, metrics, log } = this.deps;
    const handler = this.deps.actions.get(action);
    if (!handler || !accepts(handler, 'container')) throw new Error(`no handler for ${action}`);
    const startedAt = this.deps.clock.now();
    const remediationId = signal.remediationId ?? randomUUID();
    const before = this.deps.store.record(view.name) ?? emptyRecord(view.name);
    const open = before.incidentId ? this.deps.store.incident(before.incidentId) : undefined;
    // Intent first, in one write with the incident's timeline: if the service dies now, the action
    // counts, the cooldown holds, and a replay of this signal verifies the action instead of repeating it.
    const { incidentId, attempts } = this.durably(() => {
      const id = this.deps.store.openIncident(view.name, signal, startedAt);
      const intent = intentRecorded(
        before,
        { action, startedAt, remediationId, signalId: signal.id, incidentId: id },
        config.policy,
      );
      // A new incident starts with this signal; an open one gets it added.
      if (open && open.closedAt === undefined) {
        this.deps.store.addIncidentEvent(view.name, signal, {
          at: startedAt,
          type: 'signal',
          source: signal.source,
          detail: signal.condition,
        });
      }
      this.report.addDecisionEvent(view.name, signal, decision, action, startedAt);
      this.deps.store.addIncidentEvent(view.name, signal, {
        at: startedAt,
        type: 'action',
        action,
        source: signal.source,
        detail: `attempt ${intent.attempts}`,
        remediationId,
      });
      this.putRecord(intent);
      return { incidentId: id, attempts: intent.attempts };
    });
    this.retries.cancel(view.name);
    this.deps.store.upsertRemediation(this.deps.clock.now(), signal, remediationId, {
      state: 'running',
      container: view.name,
      action,
    });
    if (signal.source !== 'manual') this.countForCircuit(startedAt);
    metrics.inFlight.inc();
    log.info(
      {
        event: 'action',
        incidentId,
        container: view.name,
        action,
        attempt: attempts,
        source: signal.source,
        alertname: signal.alertname,
        fingerprint: signal.fingerprint,
        remediationId,
        requestedBy: signal.requestedBy,
        reason: signal.reason,
      },
      `${action} ${view.name} (attempt ${attempts})`,
    );

    let result: RemediationResult = 'failed';
    let detail = '';
    let lastHealthOutput: string | undefined;
    try {
      // A container target was just inspected to resolve it; a service target was only listed.
      const details = isDetails(view) ? view : await docker.inspect(view.id);
      if (!details) {
        detail = 'container no longer exists';
      } else {
        const outcome = await handler.run(this.handlerContext(signal), {
          kind: 'container',
          container: details,
          stopTimeoutSec: this.stopTimeout(details),
        });
        detail = outcome.detail;
        if (outcome.ok) {
          const v = await verifyRecovery(docker, details.id, {
            timeoutMs: config.verifyTimeoutMs,
            graceMs: config.verifyGraceMs,
            now: () => this.deps.clock.now(),
          });
          result = v.result;
          detail = `${outcome.detail}; ${v.detail}`;
          lastHealthOutput = v.lastHealthOutput;
        }
      }
    } catch (err) {
      detail = `docker error: ${(err as Error).message}`;
    } finally {
      metrics.inFlight.dec();
    }
    this.recordResult(signal, view, action, { startedAt, remediationId, result, detail, lastHealthOutput });
    return result;
  }

  /** The signal an interrupted action is verified under when its own is no longer in the inbox. */
  private resumeSignal(r: ContainerRecord): Signal {
    return {
      id: r.inFlight?.signalId ?? randomUUID(),
      source: 'reconcile',
      status: 'firing',
      receivedAt: this.deps.clock.now(),
      condition: 'retry',
      target: { kind: 'container', name: r.name },
      action: r.inFlight?.action,
      params: {},
      labels: {},
      annotations: {},
      reason: 'an action interrupted by a restart of the service',
    };
  }

  /**
   * Verifies an action the service was carrying out when it died, and records its result as that
   * attempt's: the action itself may have reached the engine or not, but it is never started again.
   * Signals for the container wait for the result (remediateContainer), so they see its cooldown.
   */
  private resumeAction(name: string, signal: Signal): Promise<void> {
    this.busy.add(name);
    const p = this.verifyInterrupted(name, signal).finally(() => {
      this.busy.delete(name);
      this.resuming.delete(name);
    });
    this.resuming.set(name, p);
    return p;
  }

  private async verifyInterrupted(name: string, signal: Signal): Promise<void> {
    const { config, docker } = this.deps;
    for (let tries = 1; ; tries++) {
      const intent = this.deps.store.record(name)?.inFlight;
      if (!intent) return;
      try {
        // By name from one listing: a name read back from the state is never taken as an id prefix.
        const found = await lookupContainer(docker, name);
        const details = found.ok ? found.containers[0] : undefined;
        let result: RemediationResult = 'failed';
        let detail = found.ok ? 'container no longer exists' : found.detail;
        let lastHealthOutput: string | undefined;
        if (details) {
          const v = await verifyRecovery(docker, details.id, {
            timeoutMs: config.verifyTimeoutMs,
            graceMs: config.verifyGraceMs,
            now: () => this.deps.clock.now(),
          });
          result = v.result;
          detail = v.detail;
          lastHealthOutput = v.lastHealthOutput;
        }
        const view: ContainerView = details ?? { id: '', name, labels: {}, state: 'unknown', health: 'none' };
        this.recordResult(signal, view, intent.action, {
          startedAt: intent.startedAt,
          remediationId: intent.remediationId,
          result,
          detail: `interrupted by a restart of the service, then verified: ${detail}`,
          lastHealthOutput,
        });
        return;
      } catch (err) {
        if (this.stopping) return;
        const delay = deferDelayMs(tries);
        this.deps.log.warn(
          { err, event: 'resume', container: name, retryInMs: delay },
          'cannot verify an interrupted action yet; retrying',
        );
        await sleep(delay, undefined, { ref: false });
      }
    }
  }

  private recordResult(
    signal: Signal,
    view: ContainerView,
    action: ActionName,
    o: {
      startedAt: number;
      remediationId: string;
      result: RemediationResult;
      detail: string;
      lastHealthOutput?: string | undefined;
    },
  ): void {
    const { config, metrics, log } = this.deps;
    const now = this.deps.clock.now();
    const durationMs = now - o.startedAt;
    const r = this.deps.store.record(view.name) ?? emptyRecord(view.name);
    const step = resultRecorded(r, { action, result: o.result, view, signal }, now, config.policy);
    metrics.remediations.inc({ action, result: o.result });
    metrics.remediationDuration.observe({ action }, durationMs / 1000);
    log.info(
      {
        event: 'remediation',
        container: view.name,
        action,
        result: o.result,
        durationMs,
        attempt: r.attempts,
        detail: o.detail,
        alertname: signal.alertname,
        fingerprint: signal.fingerprint,
        source: signal.source,
        remediationId: o.remediationId,
      },
      `${action} ${view.name}: ${o.result}`,
    );
    this.deps.store.addIncidentEvent(view.name, signal, {
      at: now,
      type: 'verification',
      action,
      result: o.result,
      detail: o.detail,
      remediationId: o.remediationId,
    });
    this.deps.store.recordRemediationResult(
      this.deps.clock.now(),
      o.remediationId,
      view.name,
      o.result as RemediationState,
      {
        verification: o.result,
        detail: o.detail,
        durationMs,
      },
    );
    if (step.next === 'recovered') {
      this.report.closeIncident(r.incidentId, 'recovered', now, o.detail);
      this.putRecord(step.record);
      return;
    }
    if (step.next === 'given_up') {
      const max = maxAttemptsFor(view, config.policy);
      this.giveUp(
        step.record,
        view,
        signal,
        `${r.attempts} of ${max} attempts failed; last: ${o.detail}`,
        o.lastHealthOutput,
      );
      return;
    }
    if (step.next === 'none') {
      // A forced action on a container already given up: it stays given up.
      this.putRecord(step.record);
      return;
    }
    if (signal.source === 'manual' || signal.source === 'schedule') {
      // Someone asked for this action and is waiting for its result; automatic retries escalate
      // once, when they give up.
      this.report.escalate('verification_failed', {
        container: view,
        signal,
        detail: o.detail,
        lastHealthOutput: o.lastHealthOutput,
      });
    }
    this.putRecord(step.record);
    this.retries.schedule(view.name, action, step.retryAt);
  }

  /** Writes a record just given up (see givenUp), and tells the incident, the logs and a human. */
  private giveUp(
    r: ContainerRecord,
    view: ContainerView,
    signal: Signal,
    detail: string | undefined,
    lastHealthOutput?: string,
  ): void {
    const now = this.deps.clock.now();
    this.retries.cancel(view.name);
    this.putRecord(r);
    this.deps.log.warn(
      { event: 'given_up', container: view.name, attempts: r.attempts, detail },
      `given up on ${view.name}`,
    );
    this.deps.store.addIncidentEvent(view.name, signal, {
      at: now,
      type: 'escalation',
      reason: 'given_up',
      detail,
    });
    const incident = r.incidentId ? this.deps.store.incident(r.incidentId) : undefined;
    if (incident) this.deps.store.putIncident({ ...incident, status: 'given_up' });
    this.report.escalate('given_up', { container: view, signal, detail, lastHealthOutput, incident });
    this.report.refreshGauges();
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
    if (signal.target.kind !== 'container') return;
    const r = this.deps.store.record(signal.target.name);
    if (!r) return;
    this.retries.cancel(r.name);
    if (r.incidentId)
      this.report.closeIncident(r.incidentId, 'resolved', now, `alert ${signal.alertname ?? ''} resolved`);
    this.putRecord(incidentEnded(r));
  }

  // Helpers ------------------------------------------------------------------------------------------

  private hostPath() {
    return {
      deps: this.deps,
      report: this.report,
      busy: this.busy,
      limit: this.limit,
      ctx: this.ctx,
      countForCircuit: (now: number) => this.countForCircuit(now),
      handlerContext: (signal: Signal) => this.handlerContext(signal),
    };
  }

  private handlerContext(signal: Signal) {
    return {
      docker: this.deps.docker,
      config: this.deps.config,
      log: this.deps.log,
      now: () => this.deps.clock.now(),
      params: signal.params,
    };
  }

  private stopTimeout(c: ContainerDetails): number {
    const fromLabel = Number(c.labels[CONTAINER_LABELS.stopTimeout]);
    if (Number.isInteger(fromLabel) && fromLabel >= 0) return fromLabel;
    return c.stopTimeoutSec ?? this.deps.config.defaultStopTimeoutSec;
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
