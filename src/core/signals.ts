// requestSignal: the one shape of a signal somebody asked for by name, whether an operator through the
// admin API or a SCHEDULES entry at its time. Both go through the same policy as alerts and the health
// watcher, so they must look alike to the engine; building them in one place keeps them so. Pure: the
// caller supplies the id and the time.
import type { ActionName, Signal, SignalSource, TargetSelector } from './types.js';

export interface SignalRequest {
  readonly id: string;
  readonly source: Extract<SignalSource, 'manual' | 'schedule'>;
  readonly target: TargetSelector;
  readonly action: ActionName;
  /** Who asked, already scrubbed and printable. */
  readonly requestedBy: string;
  readonly reason?: string | undefined;
  readonly force?: boolean | undefined;
  readonly dryRun?: boolean | undefined;
  /** The action's parameters (a scale step's `step`). */
  readonly params?: Readonly<Record<string, string>> | undefined;
  readonly now: number;
}

export function requestSignal(r: SignalRequest): Omit<Signal, 'remediationId'> {
  return {
    id: r.id,
    source: r.source,
    status: 'firing',
    receivedAt: r.now,
    condition: 'requested',
    target: r.target,
    action: r.action,
    params: r.params ?? {},
    labels: {},
    annotations: {},
    requestedBy: r.requestedBy,
    reason: r.reason,
    force: r.force ?? false,
    dryRun: r.dryRun ?? false,
  };
}
