// Scheduled maintenance (SCHEDULES): cron entries that run inside the service instead of a host crontab.
// An entry is an input like any other: at its time it hands a signal (source 'schedule') to the engine,
// which decides, acts, verifies, logs and counts it like every remediation. croner parses the
// expressions and computes the next times; this module owns the timer, so the clock is injectable and
// a test can run an entry "at its time" by moving a ManualClock and calling tick().
import { randomUUID } from 'node:crypto';
import { Cron } from 'croner';
import type { Logger } from 'pino';
import { ConfigError } from '../config.js';
import type { Clock } from '../core/clock.js';
import { requestSignal } from '../core/signals.js';
import { defaultActions } from '../actions/registry.js';
import type { ActionCatalog } from '../core/actions.js';
import { describeTarget, resolveTarget, selectTarget } from '../core/targets.js';
import type { ActionName, ContainerView, Signal, TargetSelector } from '../core/types.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../state/store.js';

export interface ScheduleEntry {
  /** The entry as written, e.g. "0 3 * * *=cleanup": its name in logs and in the audit trail. */
  readonly text: string;
  readonly cron: string;
  readonly action: ActionName;
  /** `all`: every watched container, through the action's own check run (update:all). */
  readonly target: TargetSelector | 'all';
}

/** A croner job used only to compute times: without a callback it never starts a timer of its own. */
const cronOf = (expr: string) => new Cron(expr, { mode: '5-or-6-parts' });

/**
 * Parses SCHEDULES: "CRON=action[:target]" entries separated by ";", e.g.
 * "0 3 * * *=cleanup; 30 4 * * 0=restart:service:shop/worker". Any action of the service's registry
 * may be scheduled, its target checked by the same selectTarget() as the admin API's. Throws
 * ConfigError naming the entry.
 */
export function parseSchedules(text: string, actions: ActionCatalog = defaultActions()): ScheduleEntry[] {
  const entries: ScheduleEntry[] = [];
  const parts = text
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean);
  parts.forEach((part, i) => {
    const where = `SCHEDULES: entry ${i + 1} "${part}"`;
    const eq = part.indexOf('=');
    if (eq < 0) throw new ConfigError(`${where}: expected CRON=action[:target], e.g. "0 3 * * *=cleanup"`);
    const cron = part.slice(0, eq).trim();
    const rest = part.slice(eq + 1).trim();
    const colon = rest.indexOf(':');
    const action = (colon < 0 ? rest : rest.slice(0, colon)).trim();
    const targetText = colon < 0 ? '' : rest.slice(colon + 1).trim();
    try {
      cronOf(cron);
    } catch (err) {
      throw new ConfigError(`${where}: bad cron expression "${cron}": ${(err as Error).message}`);
    }
    if (targetText === 'all') {
      if (actions.get(action)?.batch !== true) {
        const batch = [...actions].filter(([, a]) => a.batch === true).map(([n]) => `${n}:all`);
        throw new ConfigError(
          `${where}: ${action} does not run over all containers at once${batch.length ? ` (${batch.join(', ')} does)` : ''}`,
        );
      }
      entries.push({ text: part, cron, action, target: 'all' });
      return;
    }
    const selected = selectTarget(actions, action, targetText);
    if (!selected.ok) throw new ConfigError(`${where}: ${selected.detail}`);
    entries.push({ text: part, cron, action, target: selected.target });
  });
  return entries;
}

/**
 * The entries whose container, service or project target names nothing in `containers` (one listing,
 * `all: true`), each as the message that refuses the start. Swarm targets and `all` are not checked.
 */
export function checkScheduleTargets(
  entries: ReadonlyArray<ScheduleEntry>,
  containers: ReadonlyArray<ContainerView>,
): string[] {
  const out: string[] = [];
  entries.forEach((e, i) => {
    if (e.target === 'all' || !['container', 'service', 'project'].includes(e.target.kind)) return;
    const found = resolveTarget(e.target, containers);
    if (found.ok) return;
    out.push(
      `SCHEDULES: entry ${i + 1} "${e.text}": ${found.detail} on this engine (\`docker ps -a\` lists the names); fix the target or remove the entry`,
    );
  });
  return out;
}

export interface SchedulerDeps {
  /** The engine's door for requests that callers follow by id (Engine.request). */
  readonly engine: { request(signal: Omit<Signal, 'remediationId'>): string };
  readonly store: Pick<Store, 'remediation'>;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Pick<Metrics, 'decisions'>;
  /**
   * Runs an `action:all` entry (update:all: the update check run) and resolves when it has handed its
   * requests to the engine; its id names the run in the log. Without it such entries are refused.
   */
  readonly batch?: (entry: ScheduleEntry) => Promise<{ readonly id: string }>;
  /** The timer re-reads the clock at least this often, so a clock that jumps is noticed. */
  readonly maxSleepMs?: number;
}

export interface ScheduleStatus {
  readonly entry: ScheduleEntry;
  readonly nextRunAt: number | undefined;
  readonly lastRunAt: number | undefined;
  readonly lastRemediationId: string | undefined;
}

interface Job {
  readonly entry: ScheduleEntry;
  readonly cron: Cron;
  nextAt: number | undefined;
  lastRunAt: number | undefined;
  lastRemediationId: string | undefined;
  /** An `all` entry's run that has not finished yet. */
  batchRunning?: boolean;
}

const RUNNING = new Set(['queued', 'running']);

export class Scheduler {
  private readonly jobs: Job[];
  private timer: NodeJS.Timeout | undefined;
  private started = false;

  constructor(
    entries: ReadonlyArray<ScheduleEntry>,
    private readonly d: SchedulerDeps,
  ) {
    const now = d.clock.now();
    this.jobs = entries.map((entry) => {
      const cron = cronOf(entry.cron);
      return {
        entry,
        cron,
        nextAt: nextAfter(cron, now),
        lastRunAt: undefined,
        lastRemediationId: undefined,
      };
    });
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    for (const j of this.jobs) {
      this.d.log.info(
        { event: 'schedule', schedule: j.entry.text, nextRunAt: isoOrNone(j.nextAt) },
        `schedule "${j.entry.text}": next run ${isoOrNone(j.nextAt)}`,
      );
    }
    this.arm();
  }

  stop(): void {
    this.started = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  status(): ScheduleStatus[] {
    return this.jobs.map((j) => ({
      entry: j.entry,
      nextRunAt: j.nextAt,
      lastRunAt: j.lastRunAt,
      lastRemediationId: j.lastRemediationId,
    }));
  }

  /**
   * Runs every entry whose time has come (by the injected clock) and computes its next time. Runs that
   * were missed while the service was down or the clock jumped are not caught up one by one: an entry
   * runs once, then waits for its next time. Returns the ids of the remediations it requested.
   */
  tick(): string[] {
    const now = this.d.clock.now();
    const started: string[] = [];
    for (const j of this.jobs) {
      if (j.nextAt === undefined || j.nextAt > now) continue;
      const due = j.nextAt;
      j.nextAt = nextAfter(j.cron, now);
      const id = this.run(j, due);
      if (id) started.push(id);
    }
    return started;
  }

  private run(j: Job, due: number): string | undefined {
    const { log, store } = this.d;
    const target = j.entry.target;
    if (target === 'all') return this.runBatch(j, due);
    const previous = j.lastRemediationId ? store.remediation(j.lastRemediationId) : undefined;
    if (previous && RUNNING.has(previous.state)) {
      // Never two runs of one entry at once: a nightly cleanup that is still busy at the next tick
      // would only pile up work on a host that is already struggling.
      this.d.metrics.decisions.inc({ reason: 'in_progress' });
      log.warn(
        {
          event: 'schedule_skipped',
          schedule: j.entry.text,
          reason: 'in_progress',
          running: previous.id,
          dueAt: new Date(due).toISOString(),
          nextRunAt: isoOrNone(j.nextAt),
        },
        `schedule "${j.entry.text}": skipped, the previous run ${previous.id} is still ${previous.state}`,
      );
      return undefined;
    }
    const now = this.d.clock.now();
    try {
      const id = this.d.engine.request(
        requestSignal({
          id: randomUUID(),
          source: 'schedule',
          target,
          action: j.entry.action,
          requestedBy: 'schedule',
          reason: `scheduled maintenance "${j.entry.text}"`,
          now,
        }),
      );
      j.lastRunAt = now;
      j.lastRemediationId = id;
      log.info(
        {
          event: 'schedule_run',
          schedule: j.entry.text,
          action: j.entry.action,
          target: describeTarget(target),
          remediationId: id,
          dueAt: new Date(due).toISOString(),
          nextRunAt: isoOrNone(j.nextAt),
        },
        `schedule "${j.entry.text}": ${j.entry.action} requested (${id})`,
      );
      return id;
    } catch (err) {
      log.error({ err, event: 'schedule_failed', schedule: j.entry.text }, 'cannot request a scheduled run');
      return undefined;
    }
  }

  /** An `action:all` entry: one run at a time, like every entry; its id is the run's, not a remediation's. */
  private runBatch(j: Job, due: number): string | undefined {
    const { log } = this.d;
    const batch = this.d.batch;
    const base = {
      schedule: j.entry.text,
      dueAt: new Date(due).toISOString(),
      nextRunAt: isoOrNone(j.nextAt),
    };
    if (!batch) {
      log.error(
        { event: 'schedule_failed', ...base },
        `schedule "${j.entry.text}": nothing runs ${j.entry.action}:all here`,
      );
      return undefined;
    }
    if (j.batchRunning) {
      this.d.metrics.decisions.inc({ reason: 'in_progress' });
      log.warn(
        { event: 'schedule_skipped', reason: 'in_progress', ...base },
        `schedule "${j.entry.text}": skipped, its previous run is still going`,
      );
      return undefined;
    }
    j.batchRunning = true;
    j.lastRunAt = this.d.clock.now();
    const id = `${j.entry.action}:all@${new Date(due).toISOString()}`;
    log.info(
      { event: 'schedule_run', action: j.entry.action, target: 'all', ...base },
      `schedule "${j.entry.text}": ${j.entry.action}:all started`,
    );
    batch(j.entry)
      .then((r) => {
        j.lastRemediationId = r.id;
      })
      .catch((err) =>
        log.error({ err, event: 'schedule_failed', ...base }, `schedule "${j.entry.text}": the run failed`),
      )
      .finally(() => {
        j.batchRunning = false;
      });
    return id;
  }

  /** Sleeps until the next entry is due (by the injected clock), at most maxSleepMs of real time. */
  private arm(): void {
    if (!this.started) return;
    clearTimeout(this.timer);
    const times = this.jobs.map((j) => j.nextAt).filter((t): t is number => t !== undefined);
    if (times.length === 0) return;
    const maxSleep = this.d.maxSleepMs ?? 60_000;
    const delay = Math.min(Math.max(0, Math.min(...times) - this.d.clock.now()), maxSleep);
    this.timer = setTimeout(() => {
      this.tick();
      this.arm();
    }, delay);
    this.timer.unref();
  }
}

function nextAfter(cron: Cron, now: number): number | undefined {
  return cron.nextRun(new Date(now))?.getTime();
}

const isoOrNone = (t: number | undefined) => (t === undefined ? 'never' : new Date(t).toISOString());
