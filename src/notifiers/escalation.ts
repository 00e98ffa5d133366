// Escalations: what the engine hands to a human channel when healing fails, the breaker opens, a
// critical alert arrives, or an escalated container recovers. The engine raises them; notifiers
// (Telegram, ...) deliver them. raise() never throws and never blocks a remediation.
import { randomUUID } from 'node:crypto';
import type { EscalationKind } from '../core/escalation.js';
import { CONTAINER_LABELS } from '../core/labels.js';
import type { ContainerView, Signal } from '../core/types.js';
import type { Incident } from '../state/store.js';

export interface AttemptSummary {
  readonly at: number;
  readonly action: string;
  readonly result: string;
  readonly detail?: string | undefined;
}

export interface Escalation {
  readonly id: string;
  readonly kind: EscalationKind;
  readonly at: number;
  readonly host: string;
  readonly container?: string | undefined;
  readonly service?: string | undefined;
  readonly project?: string | undefined;
  readonly alertname?: string | undefined;
  readonly severity?: string | undefined;
  readonly summary?: string | undefined;
  readonly description?: string | undefined;
  readonly attempts: ReadonlyArray<AttemptSummary>;
  readonly lastHealthOutput?: string | undefined;
  readonly externalURL?: string | undefined;
  readonly generatorURL?: string | undefined;
  readonly detail?: string | undefined;
  readonly reclaimedBytes?: number | undefined;
}

/** What the engine knows when it escalates. */
export interface EscalationContext {
  readonly container?: ContainerView | undefined;
  readonly signal?: Signal | undefined;
  readonly detail?: string | undefined;
  readonly lastHealthOutput?: string | undefined;
  readonly incident?: Incident | undefined;
  readonly reclaimedBytes?: number | undefined;
}

/** The escalation for a human, from what the engine knows (pure). */
export function buildEscalation(
  kind: EscalationKind,
  o: EscalationContext,
  host: string,
  now: number,
): Escalation {
  const labels = o.container?.labels ?? {};
  return {
    // Derived from the signal, so that a signal replayed after a crash raises the same escalation
    // and the outbox can drop the repeat.
    id: o.signal ? `${o.signal.id}:${kind}:${o.container?.name ?? ''}` : randomUUID(),
    kind,
    at: now,
    host,
    container: o.container?.name,
    service: labels[CONTAINER_LABELS.composeService],
    project: labels[CONTAINER_LABELS.composeProject],
    alertname: o.signal?.alertname,
    severity: o.signal?.severity,
    summary: o.signal?.annotations.summary,
    description: o.signal?.annotations.description,
    attempts: (o.incident?.events ?? [])
      .filter((e) => e.type === 'verification')
      .map((e) => ({ at: e.at, action: e.action ?? '', result: e.result ?? '', detail: e.detail })),
    lastHealthOutput: o.lastHealthOutput,
    externalURL: o.signal?.externalURL,
    generatorURL: o.signal?.generatorURL,
    detail: o.detail,
    reclaimedBytes: o.reclaimedBytes,
  };
}

export interface EscalationSink {
  raise(escalation: Escalation): void;
}

/** The sink used when no notifier is configured: the escalation is in the audit log and metrics only. */
export class LogEscalationSink implements EscalationSink {
  readonly raised: Escalation[] = [];
  constructor(
    private readonly log: { warn(obj: object, msg: string): void },
    private readonly keep = 100,
  ) {}
  raise(e: Escalation): void {
    this.raised.push(e);
    if (this.raised.length > this.keep) this.raised.shift();
    this.log.warn(
      { event: 'escalation', escalation: e },
      `escalation: ${e.kind}${e.container ? ` ${e.container}` : ''}`,
    );
  }
}

/** Free text for the humans' channel (the admin API's /notify, CI jobs). Queued durably; returns its id. */
export interface TextNotifier {
  readonly enabled: boolean;
  enqueueText(text: string, opts?: { silent?: boolean }): string;
}

/**
 * Holds the escalations about a container an operator silenced from the chat ("Silence 1 h") until
 * the silence ends; everything else, and a container's recovery, goes through. Never throws.
 */
export class MutedSink implements EscalationSink {
  constructor(
    private readonly inner: EscalationSink,
    private readonly mutedUntil: (container: string) => { until: number; by: string } | undefined,
    private readonly now: () => number,
    private readonly log: { info(obj: object, msg: string): void },
  ) {}

  raise(e: Escalation): void {
    const m = e.container && e.kind !== 'recovered' ? this.mutedUntil(e.container) : undefined;
    if (m && m.until > this.now()) {
      this.log.info(
        {
          event: 'escalation_muted',
          escalationId: e.id,
          kind: e.kind,
          container: e.container,
          until: new Date(m.until).toISOString(),
          by: m.by,
        },
        `escalation ${e.kind} of ${e.container} held: silenced by ${m.by} until ${new Date(m.until).toISOString()}`,
      );
      return;
    }
    this.inner.raise(e);
  }
}
