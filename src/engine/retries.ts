// Retries: after a failed remediation, the next attempt is a new signal at the time the policy set
// (the record's pendingRetry, which survives a restart of the service: start() schedules it again).
// One timer per container; a new decision, a reset or a recovery cancels it.
import { randomUUID } from 'node:crypto';
import { targetOfRecord } from '../core/targets.js';
import type { ActionName, ContainerRecord, Signal } from '../core/types.js';
import type { EngineDeps } from './deps.js';

/**
 * The signal a retry takes the pipeline with. It carries the alert that started the incident (for its
 * escalation), but no fingerprint: it must not be taken for a redelivery of that alert.
 */
export function retrySignal(
  name: string,
  action: ActionName,
  origin: NonNullable<ContainerRecord['pendingRetry']>['origin'],
  now: number,
  id: string = randomUUID(),
): Signal {
  return {
    id,
    source: origin?.source ?? 'reconcile',
    status: 'firing',
    receivedAt: now,
    condition: 'retry',
    target: targetOfRecord(name),
    action,
    params: {},
    labels: origin?.labels ?? {},
    annotations: origin?.annotations ?? {},
    alertname: origin?.alertname,
    severity: origin?.severity,
    generatorURL: origin?.generatorURL,
    externalURL: origin?.externalURL,
    reason: 'retry after a failed remediation',
  };
}

export class RetryTimers {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly deps: EngineDeps,
    /** Hands the retry to intake (durable, then the same path as every signal); may throw. */
    private readonly submit: (signal: Signal) => void,
    private readonly stopping: () => boolean,
  ) {}

  /** Retries action on the container at `at` (at once when that has passed), unless it recovered or was given up. */
  schedule(name: string, action: ActionName, at: number): void {
    if (this.stopping()) return;
    this.cancel(name);
    // One more millisecond: a timer may fire up to 1 ms before `at` by the wall clock (libuv counts on
    // a monotonic clock), and a retry run before its cooldown ends would be skipped as cooldown_active.
    const delay = Math.max(0, at - this.deps.clock.now()) + 1;
    const t = setTimeout(() => {
      this.timers.delete(name);
      const r = this.deps.store.record(name);
      if (!r?.pendingRetry || r.givenUp) return;
      try {
        this.submit(retrySignal(name, action, r.pendingRetry.origin, this.deps.clock.now()));
      } catch (err) {
        this.deps.log.error({ err, container: name }, 'cannot schedule a retry');
      }
    }, delay);
    t.unref();
    this.timers.set(name, t);
  }

  cancel(name: string): void {
    const t = this.timers.get(name);
    if (t) clearTimeout(t);
    this.timers.delete(name);
  }

  /** Stopping: the retries stay in the records and are scheduled again at the next start. */
  clear(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
