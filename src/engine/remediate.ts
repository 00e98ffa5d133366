// The container path of the engine: for one container a signal names, decide (core/policy.ts, pure),
// record the intent, run the action through its handler, verify the recovery, and record the result
// (core/records.ts, pure), each step's state in one write to the store and its effects (log, metrics,
// escalation, retry timer) after it. What a skip does (flapping, give-up, end of an incident) too.
import { randomUUID } from 'node:crypto';
import { type ActionContext, type ActionHandler, accepts, stopTimeoutOf } from '../actions/handler.js';
import type { TargetKind } from '../core/targets.js';
import { verifyAndSettle } from '../actions/verify.js';
import { NO_ACTION } from '../core/actions.js';
import { decide, maxAttemptsFor } from '../core/policy.js';
import { expiresSilence } from '../core/silences.js';
import { CONTAINER_LABELS } from '../core/labels.js';
import {
  flappingReported,
  givenUp,
  incidentEnded,
  intentRecorded,
  resultRecorded,
  skipConsequence,
} from '../core/records.js';
import {
  type ActionName,
  type ContainerRecord,
  type ContainerView,
  type Decision,
  emptyRecord,
  type RemediationResult,
  type Signal,
} from '../core/types.js';
import { type ContainerDetails, isDetails } from '../docker/client.js';
import type { Incident, RemediationState } from '../state/store.js';
import { type EngineDeps, type EngineIo, runBounded } from './deps.js';
import { healDependents } from './dependents.js';

/** What an action's result was, as recorded: the result step's input. */
export interface ActionResult {
  readonly startedAt: number;
  readonly remediationId: string;
  readonly result: RemediationResult;
  readonly detail: string;
  readonly lastHealthOutput?: string | undefined;
}

/**
 * How a target that is not a container is acted on and verified (a Swarm service: swarm-path.ts). The
 * rest of the container path holds for it unchanged: the decision, the intent, the record under its
 * name (swarm:NAME), attempts, cooldown, give-up and escalation.
 */
export interface TargetRun {
  readonly kind: TargetKind;
  run(
    handler: ActionHandler,
    ctx: ActionContext,
  ): Promise<{ result: RemediationResult; detail: string; lastHealthOutput?: string | undefined }>;
}

export class ContainerPath {
  private readonly deps: EngineDeps;

  constructor(
    private readonly io: EngineIo,
    /** Resolves once an action interrupted by a restart of the service has been verified. */
    private readonly resuming: (name: string) => Promise<void> | undefined,
  ) {
    this.deps = io.deps;
  }

  /**
   * Decides and acts on one container; `result` is the action's when one ran (not a skip or dry run),
   * `decision` the policy's (none for a replay of a signal already acted on).
   */
  async remediateContainer(
    signal: Signal,
    action: ActionName,
    c: ContainerView,
    how?: TargetRun,
  ): Promise<{
    readonly summary: string;
    readonly result?: RemediationResult;
    readonly decision?: Decision;
  }> {
    // An action interrupted by a restart of the service is verified before anything else is decided.
    await this.resuming(c.name);
    const now = this.deps.clock.now();
    const record = this.deps.store.record(c.name);
    if (record?.lastSignalId === signal.id) {
      // A replay (after a restart of the service) of a signal whose action on this container was
      // already started: that action was carried out or verified; it is never decided again.
      this.deps.log.info(
        { event: 'replay', signalId: signal.id, container: c.name, action: record.lastAction },
        `${c.name}: this signal's ${record.lastAction ?? 'action'} was already carried out; not repeated`,
      );
      return { summary: `${c.name}: ${record.lastAction ?? action} already carried out for this signal` };
    }
    const decision = decide({
      signal,
      action,
      container: c,
      record,
      circuit: this.deps.store.circuit(),
      busy: this.io.busy.has(c.name),
      now,
      ctx: this.io.ctx(),
    });
    this.io.report.audit(signal, decision, c.name);
    if (decision.verdict === 'skip') {
      this.recordSkip(signal, decision, c, record, now);
      this.io.report.finishManual(signal, 'skipped', decision, c.name);
      return {
        summary: `${c.name}: not acted on (${decision.reason}${decision.detail ? `: ${decision.detail}` : ''})`,
        decision,
      };
    }
    if (decision.dryRun) {
      this.deps.metrics.remediations.inc({ action, result: 'dry_run' });
      this.deps.log.info(
        { event: 'remediation', container: c.name, action, result: 'dry_run' },
        `dry run: would ${action}`,
      );
      this.io.report.finishManual(signal, 'dry_run', decision, c.name);
      return { summary: `${c.name}: dry run, would ${action}`, decision };
    }
    this.io.busy.add(c.name);
    try {
      // The intent is recorded at once; MAX_PARALLEL bounds the engine work inside (runBounded), not
      // the wait for a verdict.
      const result = await this.act(signal, action, c, decision, how);
      return { summary: `${c.name}: ${action} ${result}`, result, decision };
    } finally {
      this.io.busy.delete(c.name);
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
    const { store } = this.deps;
    if (consequence === 'report_flapping') {
      // Failing again after a verified heal, with the attempts used up: the humans are told once per
      // recovery, and the hold is an incident of its own that the next action continues.
      const r = record ?? emptyRecord(c.name);
      const incidentId = this.io.durably(() => {
        const id = store.openIncident(c.name, signal, now);
        this.io.report.addDecisionEvent(c.name, signal, decision, signal.action ?? NO_ACTION, now);
        store.addIncidentEvent(c.name, signal, {
          at: now,
          type: 'escalation',
          reason: 'flapping',
          detail: decision.detail,
        });
        store.putRecord(flappingReported(r, now, id));
        return id;
      });
      this.deps.log.warn(
        { event: 'flapping', container: c.name, attempts: r.attempts, detail: decision.detail },
        `${c.name} is flapping`,
      );
      this.io.report.escalate('flapping', {
        container: c,
        signal,
        detail: decision.detail,
        incident: store.incident(incidentId),
      });
      this.io.report.refreshGauges();
      return;
    }
    const gaveUp = consequence === 'give_up' && record ? givenUp(record, now) : undefined;
    // One write: the timeline and what the skip does to the record.
    const incident = this.io.durably(() => {
      // A skip that repeats the incident's last decision (a given-up container seen at every
      // reconcile, a cooldown) adds nothing to its timeline.
      if (record?.incidentId && this.io.report.lastDecisionOf(record.incidentId) !== decision.reason) {
        store.addIncidentEvent(c.name, signal, {
          at: now,
          type: 'signal',
          source: signal.source,
          detail: signal.condition,
        });
        this.io.report.addDecisionEvent(c.name, signal, decision, signal.action ?? NO_ACTION, now);
      }
      if (gaveUp) return this.writeGivenUp(gaveUp, c, signal, decision.detail, now);
      if (record && consequence === 'end_incident') {
        // Recovered by itself (or by an action a restart of the service interrupted): the incident
        // is over, and so is any retry scheduled for it.
        store.putRecord(incidentEnded(record));
        this.io.report.closeIncident(record.incidentId, 'recovered', now, decision.detail ?? 'healthy again');
      }
      return undefined;
    });
    if (gaveUp) this.announceGivenUp(gaveUp, c, signal, decision.detail, incident);
    else if (record && consequence === 'end_incident') this.io.retries.cancel(c.name);
    if (gaveUp || (record && consequence === 'end_incident'))
      this.deps.silences?.release(c.name, gaveUp ? 'given_up' : 'recovered');
  }

  /** Heals the parent's dependents; returns the detail with their account, and escalates a failed one. */
  private async healChain(
    signal: Signal,
    action: ActionName,
    view: ContainerView,
    parent: ContainerDetails,
    newId: string,
    detail: string,
    remediationId: string,
  ): Promise<string> {
    try {
      const chain = await healDependents(this.io, signal, action, parent, newId, remediationId);
      if (!chain) return detail;
      if (chain.failed) {
        this.io.report.escalate('verification_failed', {
          container: view,
          signal,
          detail: `${view.name} is healthy again, but not all of its dependents: ${chain.summary}`,
        });
      }
      return `${detail}; dependents: ${chain.summary}`;
    } catch (err) {
      this.deps.log.warn({ err, event: 'dependents', container: view.name }, 'cannot heal the dependents');
      return `${detail}; dependents not healed: ${(err as Error).message}`;
    }
  }

  /**
   * The containers of one target one after another (an action that goes replica by replica: update);
   * once one's action fails, the rest are held back, each with its reason.
   */
  async oneAtATime(
    signal: Signal,
    action: ActionName,
    targets: ReadonlyArray<ContainerView>,
  ): Promise<string[]> {
    const out: string[] = [];
    let failed: string | undefined;
    // Replicas in Compose's order (container-number 1, 2, …), so the first to go is the first one.
    const number = (c: ContainerView) => Number(c.labels[CONTAINER_LABELS.composeNumber] ?? 0) || 0;
    for (const c of [...targets].sort((a, b) => number(a) - number(b))) {
      if (failed !== undefined) {
        const decision: Decision = {
          verdict: 'skip',
          reason: 'held_back',
          detail: `${action} of ${failed} failed: the other replicas wait`,
        };
        this.io.report.audit(signal, decision, c.name);
        this.io.report.finishManual(signal, 'skipped', decision, c.name);
        out.push(`${c.name}: not acted on (held_back: ${decision.detail})`);
        continue;
      }
      const done = await this.remediateContainer(signal, action, c);
      out.push(done.summary);
      if (done.result !== undefined && done.result !== 'succeeded') failed = c.name;
    }
    return out;
  }

  /** Records the intent, runs the handler, verifies, and records the result. */
  private async act(
    signal: Signal,
    action: ActionName,
    view: ContainerView,
    decision: Decision,
    how?: TargetRun,
  ): Promise<RemediationResult> {
    const { docker, config, metrics, log } = this.deps;
    const handler = this.deps.actions.get(action);
    if (!handler || !accepts(handler, how?.kind ?? 'container')) throw new Error(`no handler for ${action}`);
    const startedAt = this.deps.clock.now();
    const remediationId = signal.remediationId ?? randomUUID();
    const before = this.deps.store.record(view.name) ?? emptyRecord(view.name);
    const open = before.incidentId ? this.deps.store.incident(before.incidentId) : undefined;
    // Intent first, in one write with the incident's timeline, the remediation's state and the
    // breaker's count: if the service dies now, the action
    // counts, the cooldown holds, and a replay of this signal verifies the action instead of repeating it.
    const { incidentId, attempts } = this.io.durably(() => {
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
      this.io.report.addDecisionEvent(view.name, signal, decision, action, startedAt);
      this.deps.store.addIncidentEvent(view.name, signal, {
        at: startedAt,
        type: 'action',
        action,
        source: signal.source,
        detail: `attempt ${intent.attempts}`,
        remediationId,
      });
      this.deps.store.putRecord(intent);
      this.deps.store.upsertRemediation(startedAt, signal, remediationId, {
        state: 'running',
        container: view.name,
        action,
      });
      if (signal.source !== 'manual') this.io.countForCircuit(startedAt);
      return { incidentId: id, attempts: intent.attempts };
    });
    this.io.retries.cancel(view.name);
    // The alert it started from is silenced while it runs (ALERTMANAGER_URL); never waited for.
    if (signal.source === 'alertmanager') this.deps.silences?.hold(signal, view.name, action, remediationId);
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
      // A target that is not a container (a Swarm service) is run and verified its own way.
      const details = how ? undefined : isDetails(view) ? view : await docker.inspect(view.id);
      if (how) {
        const ctx = this.io.handlerContext(signal);
        ({ result, detail, lastHealthOutput } = await this.io.limit(() => how.run(handler, ctx)));
      } else if (!details) {
        detail = 'container no longer exists';
      } else {
        const outcome = await runBounded(this.io, handler, this.io.handlerContext(signal), {
          kind: 'container',
          container: details,
          stopTimeoutSec: stopTimeoutOf(details, this.deps.config.defaultStopTimeoutSec),
        });
        detail = outcome.detail;
        if (outcome.ok) {
          // A recreate hands over the new container's id: that is the one to prove healthy.
          const v = await verifyAndSettle(docker, outcome, details.id, {
            timeoutMs: config.verifyTimeoutMs,
            graceMs: config.verifyGraceMs,
            now: () => this.deps.clock.now(),
          });
          result = v.result;
          detail = v.detail;
          lastHealthOutput = v.lastHealthOutput;
          // Restarted or replaced and healthy again: what depends on it (its network namespace,
          // depends_on with restart: true) is healed next, within the same incident.
          if (
            result === 'succeeded' &&
            (outcome.startedAfter !== undefined || outcome.verifyId !== undefined)
          ) {
            detail = await this.healChain(
              signal,
              action,
              view,
              details,
              outcome.verifyId ?? details.id,
              detail,
              remediationId,
            );
          }
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

  recordResult(signal: Signal, view: ContainerView, action: ActionName, o: ActionResult): void {
    const { config, metrics, log } = this.deps;
    const now = this.deps.clock.now();
    const durationMs = now - o.startedAt;
    const r = this.deps.store.record(view.name) ?? emptyRecord(view.name);
    const spec = this.deps.actions.get(action);
    const recorded = resultRecorded(
      r,
      { action, result: o.result, view, signal, stepwise: spec?.stepwise },
      now,
      config.policy,
    );
    // A one-shot action (update) that failed is not retried: the humans hear of it now.
    const final = recorded.next === 'retry' && spec?.oneShot === true;
    const step = final
      ? {
          next: 'final' as const,
          record: { ...recorded.record, pendingRetry: undefined, incidentId: undefined },
        }
      : recorded;
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
    const max = maxAttemptsFor(view, config.policy);
    const giveUpDetail = `${r.attempts} of ${max} attempts failed; last: ${o.detail}`;
    // The step's state in one write: the verification on the incident's timeline, the remediation's
    // result, the record (and, for a give-up, the incident's status). The effects follow it.
    const incident = this.io.durably(() => {
      this.deps.store.addIncidentEvent(view.name, signal, {
        at: now,
        type: 'verification',
        action,
        result: o.result,
        detail: o.detail,
        remediationId: o.remediationId,
      });
      this.deps.store.recordRemediationResult(now, o.remediationId, view.name, o.result as RemediationState, {
        verification: o.result,
        detail: o.detail,
        durationMs,
      });
      if (step.next === 'given_up') return this.writeGivenUp(step.record, view, signal, giveUpDetail, now);
      if (step.next === 'recovered') this.io.report.closeIncident(r.incidentId, 'recovered', now, o.detail);
      if (step.next === 'final') this.io.report.closeIncident(r.incidentId, 'given_up', now, o.detail);
      this.deps.store.putRecord(step.record);
      return undefined;
    });
    // Verified, given up or failed for good: the humans may be paged again (a retry keeps the silence).
    if (expiresSilence(step.next)) this.deps.silences?.release(view.name, step.next);
    if (step.next === 'given_up') {
      this.announceGivenUp(step.record, view, signal, giveUpDetail, incident, o.lastHealthOutput);
      return;
    }
    if (step.next === 'final') {
      this.io.report.escalate('verification_failed', {
        container: view,
        signal,
        detail: o.detail,
        lastHealthOutput: o.lastHealthOutput,
      });
      return;
    }
    // Recovered, or a forced action on a container already given up (it stays given up).
    if (step.next !== 'retry') return;
    if (signal.source === 'manual' || signal.source === 'schedule') {
      // Someone asked for this action and is waiting for its result; automatic retries escalate
      // once, when they give up.
      this.io.report.escalate('verification_failed', {
        container: view,
        signal,
        detail: o.detail,
        lastHealthOutput: o.lastHealthOutput,
      });
    }
    this.io.retries.schedule(view.name, action, step.retryAt);
  }

  /** The state of a give-up: the record, the escalation on the incident's timeline, its status. */
  private writeGivenUp(
    r: ContainerRecord,
    view: ContainerView,
    signal: Signal,
    detail: string | undefined,
    now: number,
  ): Incident | undefined {
    this.deps.store.putRecord(r);
    this.deps.store.addIncidentEvent(view.name, signal, {
      at: now,
      type: 'escalation',
      reason: 'given_up',
      detail,
    });
    const incident = r.incidentId ? this.deps.store.incident(r.incidentId) : undefined;
    if (incident) this.deps.store.putIncident({ ...incident, status: 'given_up' });
    // The escalation names the incident as it was when the container was given up.
    return incident;
  }

  /** The effects of a give-up once it is written: no more retries, the log, a human, the gauge. */
  private announceGivenUp(
    r: ContainerRecord,
    view: ContainerView,
    signal: Signal,
    detail: string | undefined,
    incident: Incident | undefined,
    lastHealthOutput?: string,
  ): void {
    this.io.retries.cancel(view.name);
    this.deps.log.warn(
      { event: 'given_up', container: view.name, attempts: r.attempts, detail },
      `given up on ${view.name}`,
    );
    this.io.report.escalate('given_up', { container: view, signal, detail, lastHealthOutput, incident });
    this.io.report.refreshGauges();
  }
}
