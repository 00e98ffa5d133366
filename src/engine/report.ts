// Report: what the engine tells the world about a decision — the audit line, the incident's timeline,
// a manual request's final state, the escalation to a human, and the gauges. Every stage reports
// through it; it decides nothing and never calls the Docker engine.
import { NO_ACTION } from '../core/actions.js';
import { circuitIsOpen } from '../core/policy.js';
import type { EscalationKind } from '../core/escalation.js';
import { describeTarget } from '../core/targets.js';
import type { Decision, Signal } from '../core/types.js';
import { buildEscalation, type EscalationContext } from '../notifiers/escalation.js';
import type { Incident, RemediationState } from '../state/store.js';
import type { EngineDeps } from './deps.js';

export class Report {
  constructor(
    private readonly deps: EngineDeps,
    /** The node named in escalations (NODE_NAME or the hostname). */
    private readonly host: string,
    /** How many signals wait for the engine to answer (the signals_pending gauge). */
    private readonly pendingCount: () => number,
  ) {}

  lastDecisionOf(incidentId: string): string | undefined {
    const events = this.deps.store.incident(incidentId)?.events ?? [];
    for (let i = events.length - 1; i >= 0; i--) {
      const e = events[i];
      if (e?.type === 'decision') return e.reason;
    }
    return undefined;
  }

  addDecisionEvent(name: string, signal: Signal, decision: Decision, action: string, now: number): void {
    this.deps.store.addIncidentEvent(name, signal, {
      at: now,
      type: 'decision',
      reason: decision.reason,
      action,
      detail: decision.verdict === 'skip' ? decision.detail : undefined,
    });
  }

  closeIncident(id: string | undefined, status: Incident['status'], now: number, detail: string): void {
    if (this.deps.store.closeIncident(id, status, now, detail)) this.refreshGauges();
  }

  /** A manual request that ends without an action still gets a final state its caller can read. */
  finishManual(signal: Signal, state: RemediationState, decision: Decision, container?: string): void {
    if (!signal.remediationId) return;
    const now = this.deps.clock.now();
    const detail = decision.verdict === 'skip' ? decision.detail : undefined;
    if (container) {
      // One container of the request: its result counts towards the request's state.
      this.deps.store.recordRemediationResult(now, signal.remediationId, container, state, {
        skipReason: decision.reason,
        detail,
      });
      return;
    }
    this.deps.store.upsertRemediation(now, signal, signal.remediationId, {
      state,
      container: undefined,
      action: signal.action ?? NO_ACTION,
    });
    this.deps.store.updateRemediation(now, signal.remediationId, { skipReason: decision.reason, detail });
  }

  audit(signal: Signal, decision: Decision, container?: string): void {
    this.deps.metrics.decisions.inc({ reason: decision.reason });
    this.deps.log.info(
      {
        event: 'decision',
        source: signal.source,
        signalId: signal.id,
        alertname: signal.alertname,
        fingerprint: signal.fingerprint,
        status: signal.status,
        container: container ?? describeTarget(signal.target),
        action: decision.verdict === 'act' ? decision.action : signal.action,
        verdict: decision.verdict,
        reason: decision.reason,
        detail: decision.verdict === 'skip' ? decision.detail : undefined,
        requestedBy: signal.requestedBy,
      },
      `decision ${decision.reason}`,
    );
  }

  escalate(kind: EscalationKind, o: EscalationContext): void {
    const e = buildEscalation(kind, o, this.host, this.deps.clock.now());
    this.deps.metrics.escalations.inc({ kind });
    try {
      this.deps.escalations.raise(e);
    } catch (err) {
      this.deps.log.error({ err, kind }, 'escalation sink failed');
    }
  }

  refreshGauges(): void {
    let givenUp = 0;
    for (const r of this.deps.store.records()) if (r.givenUp) givenUp++;
    this.deps.metrics.givenUp.set(givenUp);
    this.deps.metrics.circuitOpen.set(
      circuitIsOpen(this.deps.store.circuit(), this.deps.clock.now()) ? 1 : 0,
    );
    this.deps.metrics.incidentsOpen.set(this.deps.store.openIncidentCount());
    this.deps.metrics.signalsPending.set(this.pendingCount());
  }
}
