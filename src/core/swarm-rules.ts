// The Swarm watcher's judgements, pure: which of a service's tasks failed since the last pass (each
// failed task is news once), and whether Swarm itself halted the service's last update (paused it, or
// rolled it back), which the humans hear of once per update.

/** A Swarm service as the manager reports it: what the engine path, the actions and the watcher read. */
export interface SwarmService {
  readonly id: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The object version an update must name (optimistic concurrency). */
  readonly version: number;
  readonly image: string;
  /** Replicated services: the replicas wanted; undefined for a global service. */
  readonly replicas?: number | undefined;
  readonly hasHealthCheck: boolean;
  /** TaskTemplate.ForceUpdate: a restart increments it, and the tasks that carry the new value are its. */
  readonly forceUpdate: number;
  /** Swarm keeps the spec before the last update: a rollback goes back to it. */
  readonly hasPreviousSpec: boolean;
  /** UpdateStatus: updating, paused, completed, rollback_started, rollback_paused, rollback_completed. */
  readonly updateState?: string | undefined;
  readonly updateMessage?: string | undefined;
  /** When the update that UpdateStatus describes started (ms); an update's identity. */
  readonly updateStartedAt?: number | undefined;
}

/** One task of a Swarm service. */
export interface SwarmTask {
  readonly id: string;
  readonly serviceId: string;
  readonly slot?: number | undefined;
  /** Status.State: new … running, complete, failed, rejected, shutdown, orphaned. */
  readonly state: string;
  readonly desiredState: string;
  readonly message: string;
  readonly error?: string | undefined;
  readonly containerId?: string | undefined;
  readonly exitCode?: number | undefined;
  /** Status.Timestamp (ms). */
  readonly at: number;
  readonly image: string;
  readonly forceUpdate: number;
}

const FAILED = new Set(['failed', 'rejected']);
const HALTED = new Set(['paused', 'rollback_paused', 'rollback_completed']);
/** An update Swarm is carrying out or has halted: its tasks' failures are the update's, not ours to heal. */
const IN_UPDATE = new Set(['updating', 'paused', 'rollback_started', 'rollback_paused']);

export interface SwarmPass {
  /** Tasks that failed and were not seen failed before, oldest first. */
  readonly failures: ReadonlyArray<SwarmTask>;
  /** Set when the last update was halted by Swarm and that update was not reported yet. */
  readonly halted?: { readonly key: string; readonly state: string; readonly message: string } | undefined;
  /** The last update's key, to keep as reported: at first sight a halted update is history, not news. */
  readonly reported: string | undefined;
}

/**
 * What one pass found of one service. `seen` holds the failed task ids already reported; `reported`
 * the halted update already told (its key: the update's start time and state). At the first sight of
 * a service (`first`), old failures are history, not news.
 */
export function swarmPass(o: {
  readonly service: SwarmService;
  readonly tasks: ReadonlyArray<SwarmTask>;
  readonly seen: ReadonlySet<string>;
  readonly reported: string | undefined;
  readonly first: boolean;
}): SwarmPass {
  // During an update (or one Swarm paused), a restart would only re-apply the spec being rolled out:
  // the humans hear of a halted update instead.
  const failures =
    o.first || IN_UPDATE.has(o.service.updateState ?? '')
      ? []
      : o.tasks.filter((t) => FAILED.has(t.state) && !o.seen.has(t.id)).sort((a, b) => a.at - b.at);
  const s = o.service;
  const key = `${s.updateStartedAt ?? 0}:${s.updateState ?? ''}`;
  const halted =
    s.updateState && HALTED.has(s.updateState) && key !== o.reported && !o.first
      ? { key, state: s.updateState, message: s.updateMessage ?? '' }
      : undefined;
  return { failures, halted, reported: halted?.key ?? (o.first ? key : o.reported) };
}

/** One line of evidence per failed task: its slot, state and Swarm's error. */
export const taskEvidence = (tasks: ReadonlyArray<SwarmTask>): string =>
  tasks
    .slice(-5)
    .map(
      (t) =>
        `task ${t.slot ?? t.id.slice(0, 12)} ${t.state}${t.exitCode !== undefined ? ` (exit ${t.exitCode})` : ''}: ${t.error ?? t.message}`,
    )
    .join('; ');
