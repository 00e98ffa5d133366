// How a container's durable record changes, as pure functions of (record, what happened, now, policy).
// The engine reads the record once per step, applies one of these, and writes the result once; what a
// step also requires of the world (close the incident, tell a human, schedule the retry) is returned
// for the engine to carry out, never done here.
import {
  cooldownAfter,
  cooldownBaseFor,
  effectiveAttempts,
  isHealthyNow,
  maxAttemptsFor,
  type PolicyContext,
  shouldGiveUp,
  shouldReportFlapping,
} from './policy.js';
import {
  type ActionName,
  type ContainerRecord,
  type ContainerView,
  type Decision,
  emptyRecord,
  originOf,
  type RemediationResult,
  type Signal,
} from './types.js';

export type RecordPolicy = PolicyContext['policy'];

/** What the health watcher saw of a container, beside its state and health. */
export interface Sighting {
  readonly now: number;
  /** An action on the container is running now (its result, not the watcher, decides its record). */
  readonly busy: boolean;
  /** Set when the watcher knows who stopped or started it: true for an operator stop. */
  readonly stoppedByOperator?: boolean | undefined;
}

export interface Observed {
  /** The record to write; undefined when the sighting changes nothing. */
  readonly record: ContainerRecord | undefined;
  /**
   * A given-up container is healthy again: the engine closes this incident as recovered, refreshes
   * the given-up gauge (after writing the record: it is counted from the records) and tells a human.
   */
  readonly recovered?: { readonly incidentId: string | undefined } | undefined;
}

/**
 * What a sighting does to the record: healthy since, the stable-period reset of the attempts, the
 * recovery of a given-up container, and the operator-stop flag. A container with no record gets one
 * only when an operator stopped it (the flag must hold until it starts again).
 */
export function observed(
  r: ContainerRecord | undefined,
  view: ContainerView,
  seen: Sighting,
  policy: RecordPolicy,
): Observed {
  const { now } = seen;
  if (!r) {
    return {
      record: seen.stoppedByOperator ? { ...emptyRecord(view.name), stoppedByOperator: true } : undefined,
    };
  }
  let next: ContainerRecord = r;
  if (seen.stoppedByOperator !== undefined && r.stoppedByOperator !== seen.stoppedByOperator) {
    next = { ...next, stoppedByOperator: seen.stoppedByOperator };
  }
  const healthy = isHealthyNow(view);
  if (healthy && !r.inFlight && !seen.busy) {
    if (next.healthySince === undefined) next = { ...next, healthySince: now };
    if (r.givenUp) {
      next = {
        ...next,
        givenUp: false,
        givenUpAt: undefined,
        attempts: 0,
        failures: 0,
        pendingRetry: undefined,
        incidentId: undefined,
      };
      return { record: next, recovered: { incidentId: r.incidentId } };
    }
    if (
      r.attempts > 0 &&
      next.healthySince !== undefined &&
      now - next.healthySince >= policy.stablePeriodMs
    ) {
      next = { ...next, attempts: 0, failures: 0 };
    }
  } else if (
    !healthy &&
    r.healthySince !== undefined &&
    view.state === 'running' &&
    view.health === 'unhealthy'
  ) {
    next = { ...next, healthySince: undefined };
  }
  return { record: next === r ? undefined : next };
}

export interface Intent {
  readonly action: ActionName;
  readonly startedAt: number;
  readonly remediationId: string;
  readonly signalId: string;
  /** The incident the action belongs to (the container's open one, or the one just opened for it). */
  readonly incidentId: string;
}

/**
 * The intent, recorded before an action runs: if the service dies during it, the action counts as an
 * attempt, its cooldown holds, and a replay of its signal verifies it instead of starting it again.
 */
export function intentRecorded(r: ContainerRecord, intent: Intent, policy: RecordPolicy): ContainerRecord {
  const attempts = effectiveAttempts(r, intent.startedAt, policy) + 1;
  return {
    ...r,
    attempts,
    // A fresh count of attempts starts a fresh back-off.
    failures: attempts === 1 ? 0 : r.failures,
    lastActionAt: intent.startedAt,
    lastAction: intent.action,
    healthySince: undefined,
    pendingRetry: undefined,
    stoppedByOperator: false,
    incidentId: intent.incidentId,
    inFlight: {
      action: intent.action,
      startedAt: intent.startedAt,
      remediationId: intent.remediationId,
      signalId: intent.signalId,
    },
    lastSignalId: intent.signalId,
  };
}

export interface Outcome {
  readonly action: ActionName;
  readonly result: RemediationResult;
  /** The container as resolved for the action: its labels may override the cooldown and max attempts. */
  readonly view: ContainerView;
  /** The signal the action was carried out for (a retry keeps the origin of the incident's first). */
  readonly signal: Signal;
  /** A step of a planned change (a scale step): once verified it leaves no attempt counted. */
  readonly stepwise?: boolean | undefined;
}

/**
 * What follows a result (`next`): `recovered` (the engine closes the incident), `given_up` (the attempts are
 * used up: the engine cancels any retry and tells a human), `retry` (scheduled at `retryAt`), or
 * `none` (a forced action on a container already given up: it stays given up).
 */
export type ResultStep =
  | { readonly next: 'recovered'; readonly record: ContainerRecord }
  | { readonly next: 'given_up'; readonly record: ContainerRecord }
  | { readonly next: 'retry'; readonly record: ContainerRecord; readonly retryAt: number }
  | { readonly next: 'none'; readonly record: ContainerRecord };

/**
 * The verified result of an action: the back-off (the cooldown doubled for each consecutive failure,
 * capped), the healed time, and what follows.
 */
export function resultRecorded(
  r: ContainerRecord,
  o: Outcome,
  now: number,
  policy: RecordPolicy,
): ResultStep {
  const ok = o.result === 'succeeded';
  const failures = ok ? 0 : r.failures + 1;
  const nextAllowedAt = now + cooldownAfter(failures, cooldownBaseFor(o.view, policy), policy.backoffMaxMs);
  const next: ContainerRecord = {
    ...r,
    inFlight: undefined,
    failures,
    lastResult: o.result,
    nextAllowedAt,
    healthySince: ok ? now : undefined,
    healedAt: ok ? now : r.healedAt,
  };
  if (ok) {
    // The attempt cap bounds the steps that fail, not the steps a service is asked to take.
    const attempts = o.stepwise ? 0 : next.attempts;
    return { next: 'recovered', record: { ...next, attempts, incidentId: undefined } };
  }
  if (r.attempts >= maxAttemptsFor(o.view, policy)) {
    return r.givenUp ? { next: 'none', record: next } : { next: 'given_up', record: givenUp(next, now) };
  }
  const origin =
    o.signal.condition === 'retry' ? (r.pendingRetry?.origin ?? originOf(o.signal)) : originOf(o.signal);
  return {
    next: 'retry',
    record: { ...next, pendingRetry: { action: o.action, at: nextAllowedAt, origin } },
    retryAt: nextAllowedAt,
  };
}

/** Given up: no more automatic actions until it recovers by itself or an operator resets it. */
export function givenUp(r: ContainerRecord, now: number): ContainerRecord {
  if (r.givenUp) return r;
  return { ...r, givenUp: true, givenUpAt: now, pendingRetry: undefined };
}

/** An operator reset: fresh attempts, no back-off, no retry, no incident, no flapping report. */
export function resetRecord(r: ContainerRecord): ContainerRecord {
  return {
    ...r,
    attempts: 0,
    failures: 0,
    givenUp: false,
    givenUpAt: undefined,
    nextAllowedAt: undefined,
    pendingRetry: undefined,
    incidentId: undefined,
    flappingAt: undefined,
  };
}

/**
 * After a restart of the service, an action it was carrying out when it died: it counts as an
 * attempt made at its start, and the cooldown holds from then. Its pending retry is dropped: the
 * interrupted action is verified instead, and its result decides what follows. (No `now`: the
 * cooldown runs from the action's start, whenever the service comes back.)
 */
export function resumed(r: ContainerRecord, cooldownMs: number): ContainerRecord {
  if (!r.inFlight) return r;
  const nextAllowedAt = Math.max(r.nextAllowedAt ?? 0, r.inFlight.startedAt + cooldownMs);
  return { ...r, nextAllowedAt, pendingRetry: undefined };
}

/** The incident is over without an action (the alert resolved, or the container recovered by itself). */
export function incidentEnded(r: ContainerRecord): ContainerRecord {
  return { ...r, pendingRetry: undefined, incidentId: undefined };
}

/** A human was told the container is flapping; the hold is an incident of its own. */
export function flappingReported(r: ContainerRecord, now: number, incidentId: string): ContainerRecord {
  return { ...r, flappingAt: now, incidentId };
}

/**
 * What a skip does beyond its audit: `report_flapping` (once per verified recovery), `give_up` (the
 * attempts are used up and the container is actually failing), `end_incident` (it recovered by itself
 * while an incident was open), or nothing.
 */
export function skipConsequence(
  decision: Extract<Decision, { verdict: 'skip' }>,
  r: ContainerRecord | undefined,
  view: ContainerView,
): 'report_flapping' | 'give_up' | 'end_incident' | undefined {
  if (decision.reason === 'flapping' && shouldReportFlapping(r, view)) return 'report_flapping';
  if (decision.reason === 'max_attempts' && shouldGiveUp(r, view)) return 'give_up';
  if (decision.reason === 'already_healthy' && r?.incidentId && !r.givenUp) return 'end_incident';
  return undefined;
}
