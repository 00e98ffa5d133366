// Escalations: what the engine hands to a human channel when healing fails, the breaker opens, a
// critical alert arrives, or an escalated container recovers. The engine raises them; notifiers
// (Telegram, ...) deliver them. raise() never throws and never blocks a remediation.
export const ESCALATION_KINDS = [
  'given_up',
  'verification_failed',
  'circuit_open',
  'crash_loop',
  'alert',
  'recovered',
] as const;
export type EscalationKind = (typeof ESCALATION_KINDS)[number];

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
