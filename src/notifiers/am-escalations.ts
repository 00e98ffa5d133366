// Escalations through Alertmanager (ESCALATE_VIA=…,alertmanager): every escalation that asks a human
// to act is also posted to Alertmanager's API v2 as an alert, `alertname=AutohealEscalation`, with the
// target, the kind and a severity as labels and the evidence as annotations, so whatever receiver the
// operator already routes to (Slack, e-mail, PagerDuty, …) gets it. An alert stays firing while it is
// in the durable state (re-posted every minute, within Alertmanager's resolve_timeout) and is resolved
// (posted with endsAt now) when its target recovers: verified healthy again, or seen healthy after the
// service gave up. A post that fails is tried again at the next resend; nothing here blocks the engine.
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { EscalationKind } from '../core/escalation.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../state/store.js';
import type { Escalation, EscalationSink } from './escalation.js';
import { alertmanagerCall } from './silences.js';

/** The kinds that ask a human to act; the others (an alert forwarded, a recovery, a digest) are not posted. */
const POSTED: Readonly<Partial<Record<EscalationKind, string>>> = {
  given_up: 'critical',
  flapping: 'warning',
  verification_failed: 'warning',
  circuit_open: 'critical',
  crash_loop: 'warning',
  swarm_update: 'warning',
};

export const ESCALATION_ALERTNAME = 'AutohealEscalation';

/** One escalation alert as Alertmanager's API v2 takes it (PostableAlert). */
export interface EscalationAlert {
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly startsAt: string;
  readonly endsAt?: string | undefined;
}

/** The target an escalation is about: its container (or service record), else the host. */
const targetOf = (e: Escalation): string => e.container ?? `host:${e.host}`;

/** The alert for an escalation, or undefined for a kind that is not posted (pure). */
export function escalationAlert(e: Escalation, endsAt?: number): EscalationAlert | undefined {
  const severity = POSTED[e.kind];
  if (!severity) return undefined;
  const evidence = [e.detail, e.lastHealthOutput ? `last health check: ${e.lastHealthOutput}` : undefined]
    .filter(Boolean)
    .join('\n');
  return {
    labels: {
      alertname: ESCALATION_ALERTNAME,
      kind: e.kind,
      target: targetOf(e),
      host: e.host,
      severity,
      ...(e.container ? { container: e.container } : {}),
      ...(e.alertname ? { source_alertname: e.alertname } : {}),
    },
    annotations: {
      summary: `AutoHeal-Nexus: ${e.kind.replace(/_/g, ' ')} on ${targetOf(e)}`,
      ...(evidence ? { description: evidence.slice(0, 4000) } : {}),
      ...(e.attempts.length
        ? {
            attempts: e.attempts
              .map(
                (a) =>
                  `${new Date(a.at).toISOString()} ${a.action} ${a.result}${a.detail ? `: ${a.detail}` : ''}`,
              )
              .join('\n')
              .slice(0, 4000),
          }
        : {}),
    },
    startsAt: new Date(e.at).toISOString(),
    ...(endsAt !== undefined ? { endsAt: new Date(endsAt).toISOString() } : {}),
  };
}

export interface AlertmanagerEscalationsOptions {
  /** Alertmanager's base URL, without credentials. */
  readonly base: string;
  readonly authorization?: string | undefined;
  /** How long an open breaker lasts: its escalation alert ends with it. */
  readonly circuitCooldownMs: number;
  readonly resendMs?: number;
  readonly timeoutMs?: number;
}

export class AlertmanagerEscalations implements EscalationSink {
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> = Promise.resolve();

  constructor(
    private readonly o: AlertmanagerEscalationsOptions,
    private readonly deps: {
      readonly store: Store;
      readonly log: Logger;
      readonly metrics: Pick<Metrics, 'escalationAlerts'>;
      readonly clock: Clock;
    },
  ) {}

  raise(e: Escalation): void {
    if (e.kind === 'recovered') {
      this.resolve(targetOf(e));
      return;
    }
    const endsAt = e.kind === 'circuit_open' ? e.at + this.o.circuitCooldownMs : undefined;
    const alert = escalationAlert(e, endsAt);
    if (!alert) return;
    const key = `${e.kind} ${targetOf(e)}`;
    try {
      this.deps.store.batch(() => this.deps.store.putEscalationAlert(key, alert));
    } catch (err) {
      this.deps.log.error({ err, event: 'escalation_alert', key }, 'cannot record an escalation alert');
    }
    this.post([alert], 'fire');
  }

  /** The target is healthy again: its escalation alerts resolve. */
  resolve(target: string): void {
    const now = this.deps.clock.now();
    const open = this.deps.store.escalationAlerts().filter(([, a]) => a.labels.target === target);
    if (!open.length) return;
    try {
      this.deps.store.batch(() => {
        for (const [key] of open) this.deps.store.putEscalationAlert(key, undefined);
      });
    } catch (err) {
      this.deps.log.error({ err, event: 'escalation_alert', target }, 'cannot record a resolved escalation');
    }
    this.post(
      open.map(([, a]) => ({ ...a, endsAt: new Date(now).toISOString() })),
      'resolve',
    );
  }

  /** Posts every open escalation alert now and then every resendMs (Alertmanager resolves what it stops hearing). */
  start(): void {
    if (this.timer) return;
    this.resend();
    this.timer = setInterval(() => this.resend(), this.o.resendMs ?? 60_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.sending;
  }

  private resend(): void {
    const now = this.deps.clock.now();
    const open = this.deps.store.escalationAlerts();
    // An alert with an end of its own (an open breaker) is forgotten once that end has passed.
    const over = open.filter(([, a]) => a.endsAt !== undefined && Date.parse(a.endsAt) <= now);
    if (over.length) {
      try {
        this.deps.store.batch(() => {
          for (const [key] of over) this.deps.store.putEscalationAlert(key, undefined);
        });
      } catch {
        // tried again at the next resend
      }
    }
    const firing = open
      .filter(([, a]) => a.endsAt === undefined || Date.parse(a.endsAt) > now)
      .map(([, a]) => a);
    if (firing.length) this.post(firing, 'fire');
  }

  private post(alerts: ReadonlyArray<EscalationAlert>, op: 'fire' | 'resolve'): void {
    this.sending = this.sending.then(async () => {
      try {
        const am = { base: this.o.base, auth: this.o.authorization, timeoutMs: this.o.timeoutMs ?? 5000 };
        await alertmanagerCall(am, 'POST', '/api/v2/alerts', alerts);
        this.deps.metrics.escalationAlerts.inc({ op, result: 'ok' });
      } catch (err) {
        this.deps.metrics.escalationAlerts.inc({ op, result: 'failed' });
        this.deps.log.warn(
          { event: 'escalation_alert', op, err: (err as Error)?.message },
          `cannot post ${alerts.length} escalation alert(s) to Alertmanager; ${op === 'fire' ? 'sent again at the next resend' : 'they end by themselves at their resolve_timeout'}`,
        );
      }
    });
  }
}

/** Every escalation goes to each sink in turn; one that throws does not keep it from the others. */
export class FanoutSink implements EscalationSink {
  constructor(
    private readonly sinks: ReadonlyArray<EscalationSink>,
    private readonly log: Logger,
  ) {}
  raise(e: Escalation): void {
    for (const s of this.sinks) {
      try {
        s.raise(e);
      } catch (err) {
        this.log.error({ err, kind: e.kind }, 'an escalation sink failed');
      }
    }
  }
}
