// Crash-loop detection, as a pure function of the engine's restart count over time. A container that
// Docker's own restart policy keeps restarting is not helped by another restart from us: it needs a
// human, so the watcher escalates it once per episode instead of acting.

export interface CrashLoopPolicy {
  /** This many restarts by Docker inside the window make a crash loop. */
  readonly threshold: number;
  readonly windowMs: number;
}

export const DEFAULT_CRASH_LOOP: CrashLoopPolicy = { threshold: 3, windowMs: 5 * 60_000 };

/** What the watcher remembers of one container's restarts. */
export interface RestartHistory {
  /** The last restart count the engine reported; undefined until the first observation. */
  readonly lastCount: number | undefined;
  /** When each restart inside the window was seen (oldest first). */
  readonly times: ReadonlyArray<number>;
  /** Set while an escalated episode lasts, so that one loop raises one escalation. */
  readonly escalatedAt?: number | undefined;
}

export const emptyHistory: RestartHistory = { lastCount: undefined, times: [] };

export type CrashLoopVerdict =
  /** Not looping. */
  | 'none'
  /** Just crossed the threshold: escalate now. */
  | 'crash_loop'
  /** Still looping, already escalated. */
  | 'looping';

export interface CrashLoopObservation {
  readonly next: RestartHistory;
  readonly verdict: CrashLoopVerdict;
  readonly restartsInWindow: number;
}

/**
 * Folds one observation of the restart count into the history. The first observation is a baseline:
 * restarts made before the watcher saw the container have no known time, so they never count.
 * A count that goes down (a manual start resets it in some engine versions) is a new baseline too.
 */
export function observeRestartCount(
  h: RestartHistory,
  count: number,
  now: number,
  p: CrashLoopPolicy = DEFAULT_CRASH_LOOP,
): CrashLoopObservation {
  let times = h.times.filter((t) => now - t < p.windowMs);
  if (h.lastCount !== undefined && count > h.lastCount) {
    // Several restarts between two observations all count; keep no more than the threshold needs.
    const added = Math.min(count - h.lastCount, p.threshold);
    times = [...times, ...Array.from({ length: added }, () => now)].slice(-p.threshold * 2);
  }
  let escalatedAt = h.escalatedAt;
  // An episode ends when a whole window passes without a restart.
  if (escalatedAt !== undefined && times.length === 0) escalatedAt = undefined;
  let verdict: CrashLoopVerdict = 'none';
  if (times.length >= p.threshold) {
    verdict = escalatedAt === undefined ? 'crash_loop' : 'looping';
    escalatedAt ??= now;
  } else if (escalatedAt !== undefined) {
    verdict = 'looping';
  }
  return { next: { lastCount: count, times, escalatedAt }, verdict, restartsInWindow: times.length };
}

/** True while a container is in an escalated crash-loop episode (its restarts are a human's job). */
export function inCrashLoop(
  h: RestartHistory,
  now: number,
  p: CrashLoopPolicy = DEFAULT_CRASH_LOOP,
): boolean {
  return h.escalatedAt !== undefined && h.times.some((t) => now - t < p.windowMs);
}
