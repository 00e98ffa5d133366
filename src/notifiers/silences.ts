// Alertmanager silences while the service heals (ALERTMANAGER_URL): a remediation started from an alert
// silences that alert through the API v2 so the humans are not paged for what is being fixed, and the
// silence is expired once the fix is verified, or at once when the service gives up (so they are paged
// for what it could not fix). Calls never block or fail a remediation: each is queued per target, runs
// in the background with a timeout, and a failure is logged and counted. Which silence belongs to which
// target is kept in the durable state, so a restart of the service still expires it; every silence also
// ends by itself (ALERTMANAGER_SILENCE_MAX) should the service never come back to it.
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { operatorSilence, silenceRequest } from '../core/silences.js';
import type { Signal } from '../core/types.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../state/store.js';

/** What the engine asks of a silencer; both calls return at once and never throw. */
export interface Silencer {
  /** A remediation of `key` started from this alert: the alert is silenced while it runs (once per key). */
  hold(signal: Signal, key: string, action: string, remediationId: string): void;
  /** The remediation of `key` is over (`why`: recovered, given_up, …): its silence, if any, expires. */
  release(key: string, why: string): void;
  /** The targets that hold a silence now (for the sweep after a restart). */
  held(): ReadonlyArray<string>;
  /** Resolves once every call made so far has finished (tests, shutdown). */
  idle(): Promise<void>;
}

export interface AlertmanagerSilencerOptions {
  /** Alertmanager's base URL; credentials in it are sent as HTTP basic auth and never logged. */
  readonly url: string;
  readonly maxMs: number;
  readonly timeoutMs?: number;
  /** A target was verified healthy again (its escalation alerts resolve). */
  readonly onRecovered?: ((key: string) => void) | undefined;
}

export interface SilencerDeps {
  readonly store: Store;
  readonly log: Logger;
  readonly metrics: Pick<Metrics, 'silences'>;
  readonly clock: Clock;
}

/** The base URL without credentials, and the Authorization header they make. */
export function endpoint(text: string): { base: string; origin: string; auth?: string } {
  const u = new URL(text);
  const auth =
    u.username || u.password
      ? `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`
      : undefined;
  u.username = '';
  u.password = '';
  const base = u.toString().replace(/\/+$/, '');
  return { base, origin: u.origin, ...(auth ? { auth } : {}) };
}

export class AlertmanagerSilencer implements Silencer {
  private readonly base: string;
  private readonly origin: string;
  private readonly auth: string | undefined;
  private readonly timeoutMs: number;
  /** The calls of each target, in order: a release waits for its hold. */
  private readonly chains = new Map<string, Promise<void>>();

  constructor(
    private readonly o: AlertmanagerSilencerOptions,
    private readonly deps: SilencerDeps,
  ) {
    const e = endpoint(o.url);
    this.base = e.base;
    this.origin = e.origin;
    this.auth = e.auth;
    this.timeoutMs = o.timeoutMs ?? 5000;
  }

  hold(signal: Signal, key: string, action: string, remediationId: string): void {
    this.enqueue(
      key,
      async () => {
        if (this.deps.store.silence(key)) return; // this incident's alert is silenced already
        const body = silenceRequest({
          labels: signal.labels,
          now: this.deps.clock.now(),
          maxMs: this.o.maxMs,
          target: key,
          action,
          remediationId,
        });
        if (!body) return;
        const res = await this.call('POST', '/api/v2/silences', body);
        const id = (res as { silenceID?: unknown } | undefined)?.silenceID;
        if (typeof id !== 'string' || id === '') throw new Error('Alertmanager answered without a silenceID');
        this.deps.store.batch(() =>
          this.deps.store.putSilence(key, { id, at: this.deps.clock.now(), alertname: signal.alertname }),
        );
        this.deps.log.info(
          {
            event: 'silence',
            op: 'create',
            target: key,
            silenceId: id,
            alertname: signal.alertname,
            remediationId,
          },
          `silenced ${signal.alertname ?? 'the alert'} while ${action} of ${key} runs`,
        );
      },
      'create',
    );
  }

  release(key: string, why: string): void {
    if (why === 'recovered') this.o.onRecovered?.(key);
    if (!this.deps.store.silence(key) && !this.chains.has(key)) return;
    this.enqueue(
      key,
      async () => {
        const s = this.deps.store.silence(key);
        if (!s) return;
        await this.call('DELETE', `/api/v2/silence/${encodeURIComponent(s.id)}`);
        this.deps.store.batch(() => this.deps.store.putSilence(key, undefined));
        this.deps.log.info(
          { event: 'silence', op: 'expire', target: key, silenceId: s.id, why },
          `expired the silence of ${s.alertname ?? 'the alert'} for ${key} (${why})`,
        );
      },
      'expire',
    );
  }

  /**
   * An operator's silence of every alert about a container until `until` (the chat's "Silence 1 h"):
   * not tied to a remediation and never expired by the service. Resolves to its id; throws when
   * Alertmanager refuses it or does not answer.
   */
  async silenceContainer(container: string, until: number, by: string): Promise<string> {
    const body = operatorSilence({ container, now: this.deps.clock.now(), until, by });
    try {
      const res = await this.call('POST', '/api/v2/silences', body);
      const id = (res as { silenceID?: unknown } | undefined)?.silenceID;
      if (typeof id !== 'string' || id === '') throw new Error('Alertmanager answered without a silenceID');
      this.deps.metrics.silences.inc({ op: 'create', result: 'ok' });
      this.deps.log.info(
        { event: 'silence', op: 'create', target: container, silenceId: id, by, endsAt: body.endsAt },
        `silenced the alerts of ${container} until ${body.endsAt} (asked by ${by})`,
      );
      return id;
    } catch (err) {
      this.deps.metrics.silences.inc({ op: 'create', result: 'failed' });
      throw err;
    }
  }

  held(): ReadonlyArray<string> {
    return this.deps.store.silencedTargets();
  }

  async idle(): Promise<void> {
    while (this.chains.size) await Promise.allSettled([...this.chains.values()]);
  }

  private enqueue(key: string, fn: () => Promise<void>, op: 'create' | 'expire'): void {
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev
      .then(fn)
      .then(
        () => this.deps.metrics.silences.inc({ op, result: 'ok' }),
        (err: unknown) => {
          this.deps.metrics.silences.inc({ op, result: 'failed' });
          this.deps.log.warn(
            { event: 'silence', op, target: key, alertmanager: this.origin, err: (err as Error)?.message },
            `cannot ${op} the Alertmanager silence for ${key}; the remediation goes on`,
          );
        },
      )
      .finally(() => {
        if (this.chains.get(key) === next) this.chains.delete(key);
      });
    this.chains.set(key, next);
  }

  private call(method: 'POST' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
    return alertmanagerCall(
      { base: this.base, auth: this.auth, timeoutMs: this.timeoutMs },
      method,
      path,
      body,
    );
  }
}

/**
 * One call of Alertmanager's API v2: the parsed answer; throws on a network error, a timeout or a status
 * other than 2xx (a 404 on DELETE is not an error: the object is gone already). Never follows a redirect.
 */
export async function alertmanagerCall(
  am: { readonly base: string; readonly auth?: string | undefined; readonly timeoutMs: number },
  method: 'POST' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<unknown> {
  const res = await fetch(`${am.base}${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(am.auth ? { authorization: am.auth } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    redirect: 'error',
    signal: AbortSignal.timeout(am.timeoutMs),
  });
  const text = await res.text();
  if (method === 'DELETE' && res.status === 404) return undefined; // expired or removed already
  if (!res.ok) throw new Error(`Alertmanager answered ${res.status}: ${text.slice(0, 200)}`);
  return text ? JSON.parse(text) : undefined;
}
