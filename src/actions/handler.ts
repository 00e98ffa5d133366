// The one contract every action meets: the target kinds it accepts, a run through injected ports
// (the DockerClient, the config, the clock), and an outcome the engine's verification understands.
// One file per action; registry.ts lists them, and the engine is handed that registry.
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { ScopeContext } from '../core/scope.js';
import type { ActionName } from '../core/actions.js';
import type { TargetKind } from '../core/targets.js';
import type { ContainerDetails, DockerClient } from '../docker/client.js';

export interface ActionContext {
  readonly docker: DockerClient;
  readonly config: Config;
  readonly log: Logger;
  readonly now: () => number;
  readonly params: Readonly<Record<string, string>>;
}

/** What an action can be run on: one inspected container, or the host within the service's scope. */
export type ActionTarget =
  | { readonly kind: 'container'; readonly container: ContainerDetails; readonly stopTimeoutSec: number }
  | { readonly kind: 'host'; readonly scope: ScopeContext };

export type { TargetKind } from '../core/targets.js';

export interface CleanupReport {
  readonly ok: boolean;
  readonly reclaimedBytes: number;
  readonly removed: Readonly<Record<string, number>>;
  readonly truncatedLogs: ReadonlyArray<string>;
  readonly errors: ReadonlyArray<string>;
}

export interface ActionOutcome {
  readonly ok: boolean;
  readonly detail: string;
  /** When the action changed the container (restarted, started): verification looks for a start after it. */
  readonly startedAfter?: number;
  /** What a host action freed; the engine reports it instead of verifying a container. */
  readonly report?: CleanupReport;
}

export interface ActionHandler {
  readonly name: ActionName;
  /** The kinds of target it acts on: the engine runs it on no other (see accepts()). */
  readonly targets: ReadonlyArray<TargetKind>;
  run(ctx: ActionContext, target: ActionTarget): Promise<ActionOutcome>;
}

/**
 * The actions the engine can run, by name. Tests and benchmarks may hand the engine their own. It is
 * also the decisions' ActionCatalog (core/actions.ts): each handler carries the kinds it acts on.
 */
export type ActionRegistry = ReadonlyMap<ActionName, ActionHandler>;

/** True when the handler accepts targets of this kind (the engine asks before it runs one). */
export const accepts = (h: ActionHandler, kind: TargetKind): boolean => h.targets.includes(kind);

/** What a handler answers a target of a kind it does not accept (the engine never asks it to). */
export const wrongKind = (action: ActionName, target: ActionTarget): ActionOutcome => ({
  ok: false,
  detail: `${action} does not act on a ${target.kind}`,
});

/** The report of a host action; an action without one reports nothing freed. */
export const reportOf = (o: ActionOutcome): CleanupReport =>
  o.report ?? { ok: o.ok, reclaimedBytes: 0, removed: {}, truncatedLogs: [], errors: o.ok ? [] : [o.detail] };
