// The health watcher's judgements, as pure functions of what it knows: whose stop an engine event is
// (the service's own remediation, an operator, or nobody: a crash), what an exit the stream reported
// asks for, what a reconcile pass found that the stream missed, and when Docker's own restarts are a
// crash loop to hold back from. The watcher applies the verdicts; it judges nothing itself.
import { type ActionCatalog, type ActionName, actsOn, NO_ACTION } from './actions.js';
import { type CrashLoopPolicy, inCrashLoop, observeRestartCount, type RestartHistory } from './crash-loop.js';
import { CONTAINER_LABELS } from './labels.js';
import type { ContainerRecord, ContainerView } from './types.js';

/** Events older than this when they arrive are replays (since=...), not live news. */
export const REPLAY_AGE_MS = 2000;
/** A replayed kill/stop this soon after one of our actions began is taken as that action's. */
export const OWN_ACTION_WINDOW_MS = 120_000;
/**
 * How long an exit a reconcile pass finds, with no event seen for it, waits for the event stream before
 * the pass heals it. A listing can answer before the stream has delivered the kill of a docker stop
 * that happened just before it: healing at once would restart what an operator just stopped.
 */
export const STREAM_GRACE_MS = 3000;

export interface OwnActionVerdict {
  readonly own: boolean;
  readonly reason: 'in_flight' | 'replay_of_own_action' | 'no_record' | 'not_ours';
}

/**
 * Whether an event at eventTime is the service's own doing. The record says "in flight" only while an
 * action runs, so a live event is judged on arrival; a replayed one (after a reconnect) may come after
 * the action ended, and is ours when it falls in the window after the action began.
 */
export function ownAction(
  r: Pick<ContainerRecord, 'inFlight' | 'lastActionAt'> | undefined,
  eventTime: number,
  now: number,
): OwnActionVerdict {
  if (!r) return { own: false, reason: 'no_record' };
  if (r.inFlight) return { own: true, reason: 'in_flight' };
  const replayed = now - eventTime > REPLAY_AGE_MS;
  const own =
    replayed &&
    r.lastActionAt !== undefined &&
    eventTime >= r.lastActionAt &&
    eventTime - r.lastActionAt < OWN_ACTION_WINDOW_MS;
  return own ? { own: true, reason: 'replay_of_own_action' } : { own: false, reason: 'not_ours' };
}

export type StopVerdict =
  /** The service's own remediation: its result, not the watcher, decides the record. */
  | { readonly by: 'service' }
  /**
   * An operator's docker stop / docker kill: never healed. operatorStopAt is what the watcher keeps
   * until the next start; stoppedByOperator, when set, is what the record is told now.
   */
  | { readonly by: 'operator'; readonly operatorStopAt: number; readonly stoppedByOperator: boolean }
  /** A die nobody asked for: the exit is judged by exitVerdict once the container is inspected. */
  | { readonly by: 'nobody' };

/**
 * Who stopped a container, from one kill, stop or die event. docker stop and docker kill send kill
 * first, so a die after a kill that was not ours is an operator's; a die alone is a crash. The kill
 * only marks the stop: the die or stop after it tells the record.
 */
export function whoStopped(o: {
  readonly event: 'kill' | 'stop' | 'die';
  readonly time: number;
  /** ownAction's verdict for this event, judged when it arrived. */
  readonly own: boolean;
  /** A kill or stop that was not ours since the last start. */
  readonly operatorStopAt: number | undefined;
}): StopVerdict {
  if (o.own) return { by: 'service' };
  if (o.event === 'die' && o.operatorStopAt === undefined) return { by: 'nobody' };
  return {
    by: 'operator',
    operatorStopAt: o.operatorStopAt ?? o.time,
    stoppedByOperator: o.event !== 'kill',
  };
}

export type ExitVerdict =
  /** The engine is restarting it under its restart policy: that restart is Docker's, not ours. */
  | { readonly verdict: 'policy_restart' }
  /** Held back: it is in a crash loop a human was told about. */
  | { readonly verdict: 'crash_loop_hold'; readonly reason: string }
  /** A job that finished: observed, not healed. */
  | { readonly verdict: 'finished'; readonly reason: string }
  | { readonly verdict: 'failed'; readonly reason: string };

/**
 * What an exit nobody asked for asks of the watcher, from the inspect that followed the die. The
 * engine marks a container "restarting" (and counts the restart) before it reports the die when its
 * restart policy will bring it back.
 */
export function exitVerdict(o: {
  /** The state inspect reports after the die. */
  readonly state: string;
  readonly exitCode: number | undefined;
  readonly oomKilled: boolean;
  readonly restartPolicy: string | undefined;
  /** Whether the exit is a failure to heal (isFailedExit). */
  readonly failedExit: boolean;
  readonly history: RestartHistory;
  readonly crashLoop: CrashLoopPolicy;
  readonly now: number;
}): ExitVerdict {
  if (o.state === 'restarting' || o.state === 'running') return { verdict: 'policy_restart' };
  if (inCrashLoop(o.history, o.now, o.crashLoop)) {
    return { verdict: 'crash_loop_hold', reason: 'exited in a crash loop: left to a human, not restarted' };
  }
  if (!o.failedExit) {
    return {
      verdict: 'finished',
      reason: `finished (exit code 0, restart policy ${o.restartPolicy}): not a failure`,
    };
  }
  return {
    verdict: 'failed',
    reason: `exited with code ${o.exitCode}${o.oomKilled ? ' (out of memory)' : ''}`,
  };
}

export type ReconcileVerdict =
  | { readonly signal: 'unhealthy' | 'exited'; readonly reason: string }
  | {
      readonly signal: undefined;
      readonly reason:
        | 'given_up'
        | 'no_change'
        | 'not_a_failure'
        | 'stopped_by_operator'
        | 'own_action'
        | 'crash_loop_hold'
        /** An exit with no event seen yet: asked again after STREAM_GRACE_MS, from exitSeenAt. */
        | 'awaiting_events';
    };

/**
 * What one reconcile pass found of one container that the stream may have missed: it is unhealthy, or
 * it was running at the last look and has exited since with no event seen. Such an exit is healed only
 * once it has waited STREAM_GRACE_MS for its events (and none arrived or is still being applied): the
 * kill of an operator's docker stop may be on its way. A given-up container waits for a human or its
 * recovery: signalling it at every pass would only repeat the same skip forever.
 */
export function reconcileVerdict(o: {
  readonly record: ContainerRecord | undefined;
  readonly view: Pick<ContainerView, 'state' | 'health'>;
  /** Running at the previous pass (false for a container seen for the first time). */
  readonly wasRunning: boolean;
  /** When a pass first found this exit with no event for it (awaiting_events); undefined otherwise. */
  readonly exitSeenAt: number | undefined;
  /** Events of this container have arrived and are not applied yet. */
  readonly eventsPending: boolean;
  /** Whether its exit, as the listing shows it, is a failure to heal (isFailedExit). */
  readonly failedExit: boolean;
  readonly operatorStopAt: number | undefined;
  readonly history: RestartHistory;
  readonly crashLoop: CrashLoopPolicy;
  readonly now: number;
}): ReconcileVerdict {
  if (o.record?.givenUp === true) return { signal: undefined, reason: 'given_up' };
  if (o.view.state === 'running' && o.view.health === 'unhealthy') {
    return { signal: 'unhealthy', reason: 'unhealthy at reconcile' };
  }
  const missed = o.wasRunning || o.exitSeenAt !== undefined;
  if (!missed || o.view.state !== 'exited') return { signal: undefined, reason: 'no_change' };
  if (!o.failedExit) return { signal: undefined, reason: 'not_a_failure' };
  if (o.operatorStopAt !== undefined || o.record?.stoppedByOperator) {
    return { signal: undefined, reason: 'stopped_by_operator' };
  }
  if (ownAction(o.record, o.now, o.now).own) return { signal: undefined, reason: 'own_action' };
  if (inCrashLoop(o.history, o.now, o.crashLoop)) return { signal: undefined, reason: 'crash_loop_hold' };
  if (o.eventsPending || o.exitSeenAt === undefined || o.now - o.exitSeenAt < STREAM_GRACE_MS) {
    return { signal: undefined, reason: 'awaiting_events' };
  }
  return { signal: 'exited', reason: 'exited (seen at reconcile)' };
}

export interface RestartCountVerdict {
  readonly history: RestartHistory;
  /** Set when the restarts just became a crash loop: a human is told once per episode. */
  readonly escalate?: { readonly detail: string } | undefined;
}

/** Folds a restart count from inspect into the history; a new crash-loop episode is escalated. */
export function restartCountVerdict(o: {
  readonly history: RestartHistory;
  readonly restartCount: number;
  readonly restartPolicy: string | undefined;
  readonly crashLoop: CrashLoopPolicy;
  readonly now: number;
}): RestartCountVerdict {
  const seen = observeRestartCount(o.history, o.restartCount, o.now, o.crashLoop);
  if (seen.verdict !== 'crash_loop') return { history: seen.next };
  const windowS = Math.round(o.crashLoop.windowMs / 1000);
  return {
    history: seen.next,
    escalate: {
      detail: `restarted ${seen.restartsInWindow} times by its restart policy (${o.restartPolicy}) in ${windowS}s; restart count ${o.restartCount}`,
    },
  };
}

/** Restart policies under which a container is meant to keep running, so any exit of it is a failure. */
const RUNS_FOREVER = new Set(['always', 'unless-stopped']);

/**
 * What an autoheal.on_exit_zero label says about an exit with code 0: heal it with this action
 * (restart, stop_start), 'none' (never), or undefined (no label: the default rule decides).
 */
export function exitZeroAction(
  labels: Readonly<Record<string, string>>,
  actions: ActionCatalog,
): ActionName | undefined {
  const v = labels[CONTAINER_LABELS.onExitZero]?.trim();
  return v && (v === NO_ACTION || actsOn(actions, v, 'container')) ? v : undefined;
}

/**
 * Whether an exit is a failure to heal. A non-zero code, an unknown one or an out-of-memory kill is.
 * Exit code 0 is a job that finished (a one-shot, a migration) unless the container is meant to keep
 * running: its restart policy asks to run it again (always, unless-stopped), or it has a health check
 * (a service, not a job). The autoheal.on_exit_zero label overrides both ways (an action: heal; none: never).
 */
export function isFailedExit(o: {
  readonly exitCode: number | undefined;
  readonly oomKilled?: boolean | undefined;
  readonly restartPolicy: string | undefined;
  readonly hasHealthCheck?: boolean | undefined;
  readonly labels: Readonly<Record<string, string>>;
  /** The actions the label may name: the engine's registry. */
  readonly actions: ActionCatalog;
}): boolean {
  if (o.oomKilled) return true;
  if (o.exitCode === undefined || Number.isNaN(o.exitCode) || o.exitCode !== 0) return true;
  const label = exitZeroAction(o.labels, o.actions);
  if (label !== undefined) return label !== NO_ACTION;
  return RUNS_FOREVER.has(o.restartPolicy ?? 'no') || o.hasHealthCheck === true;
}

/** The action for an exit 0 that is healed: the label's when it names one. */
export function exitZeroHealAction(
  labels: Readonly<Record<string, string>>,
  actions: ActionCatalog,
): ActionName | undefined {
  const a = exitZeroAction(labels, actions);
  return a === NO_ACTION ? undefined : a;
}
