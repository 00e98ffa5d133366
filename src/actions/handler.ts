// The one contract every action meets: the target kinds it accepts, a run through injected ports
// (the DockerClient, the config, the clock), and an outcome the engine's verification understands.
// One file per action; registry.ts lists them, and the engine is handed that registry.
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { CONTAINER_LABELS } from '../core/labels.js';
import type { ScopeContext } from '../core/scope.js';
import type { ActionName, ActionSpec } from '../core/actions.js';
import type { TargetKind } from '../core/targets.js';
import type { ContainerDetails, DockerClient, SwarmService } from '../docker/client.js';

export interface ActionContext {
  readonly docker: DockerClient;
  readonly config: Config;
  readonly log: Logger;
  readonly now: () => number;
  readonly params: Readonly<Record<string, string>>;
  /**
   * The bound on costly engine work (MAX_PARALLEL), handed to an action that `boundsItself`; the
   * engine runs every other action inside it. Absent: nothing is bounded (unit tests).
   */
  readonly bound?: Bound | undefined;
}

/** A bound on work running at once: run inside it, or ask whether work given now would wait. */
export interface Bound {
  <T>(work: () => Promise<T>): Promise<T>;
  /** True when work handed to it now starts at once (a slot is free and nothing queues). */
  readonly free: () => boolean;
}

/** Runs `work` inside the context's bound, or at once where there is none. */
export const withinBound = <T>(ctx: ActionContext, work: () => Promise<T>): Promise<T> =>
  ctx.bound ? ctx.bound(work) : work();

/** A container of a Compose project the policy keeps an action off, and why (reported, untouched). */
export interface Untouched {
  readonly name: string;
  readonly reason: string;
  /** Its labels: it still orders the others (a protected db is waited for, not restarted). */
  readonly labels: Readonly<Record<string, string>>;
}

/**
 * What an action can be run on: one inspected container, a whole Compose project (the containers the
 * policy lets it touch, inspected, and the ones it must leave alone), or the host within the scope.
 */
export type ActionTarget =
  | { readonly kind: 'container'; readonly container: ContainerDetails; readonly stopTimeoutSec: number }
  | {
      readonly kind: 'compose_project';
      readonly project: string;
      readonly containers: ReadonlyArray<ContainerDetails>;
      readonly untouched: ReadonlyArray<Untouched>;
      /** A container's stop timeout: its autoheal.stop.timeout label, its own, or the default. */
      readonly stopTimeoutSec: (c: ContainerDetails) => number;
    }
  | {
      readonly kind: 'host';
      readonly scope: ScopeContext;
      /** Containers another remediation is acting on now (a restart stops, then starts): left alone. */
      readonly inUse?: ((name: string) => boolean) | undefined;
    }
  /** A Swarm service, as the manager listed it (its version is what an update must name). */
  | { readonly kind: 'swarm_service'; readonly service: SwarmService }
  /** A Compose service as a whole: its replicas, inspected, in Compose's order (container-number 1, 2, …). */
  | {
      readonly kind: 'compose_service';
      readonly project: string;
      readonly service: string;
      readonly replicas: ReadonlyArray<ContainerDetails>;
      readonly stopTimeoutSec: (c: ContainerDetails) => number;
    };

/** One step of an action on several containers (restart_stack), for the audit and the escalation. */
export interface ActionStep {
  readonly container: string;
  readonly action: string;
  readonly result: 'succeeded' | 'failed' | 'timed_out' | 'skipped';
  readonly at: number;
  readonly detail: string;
}

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
  /** What an action on several containers did, in order (restart_stack); it verified each itself. */
  readonly steps?: ReadonlyArray<ActionStep> | undefined;
  /** A Swarm service action: the spec verification waits for (the tasks must run what it names). */
  readonly serviceSpec?: { readonly forceUpdate?: number; readonly rollback?: boolean } | undefined;
  /**
   * A scale step: the replicas before and after (after: what is running once the action has verified
   * the new replicas and removed the ones that failed).
   */
  readonly scaled?: { readonly from: number; readonly to: number } | undefined;
  /** The container verification looks at when the action replaced the one it was given (recreate). */
  readonly verifyId?: string | undefined;
  /**
   * Keeps or undoes what the action did, once verification has a verdict (recreate: removes the old
   * container when the new one is healthy, else puts the old one back and starts it). Returns a line
   * for the audit; never throws.
   */
  readonly settle?: ((verified: boolean) => Promise<string>) | undefined;
}

/** What an action left half done when the service died, as its resume() found and settled it. */
export interface ResumeOutcome {
  readonly detail: string;
  /**
   * The action was undone or never took effect (an update interrupted before its new container ran):
   * the container is still verified, but the attempt counts as failed, whatever its health.
   */
  readonly undone?: boolean | undefined;
  /** The container to verify now; the one that has the name when not given. */
  readonly verifyId?: string | undefined;
  /**
   * The action verified what it found itself (a scale step of a Compose service: its replicas): this
   * is the attempt's result, and the engine verifies nothing more.
   */
  readonly result?: 'succeeded' | 'failed' | undefined;
  readonly settle?: ((verified: boolean) => Promise<string>) | undefined;
}

/** An action's code, with what the decisions know of it (its target kinds and policy hooks: ActionSpec). */
export interface ActionHandler extends ActionSpec {
  readonly name: ActionName;
  /** The kinds of target it acts on: the engine runs it on no other (see accepts()). */
  readonly targets: ReadonlyArray<TargetKind>;
  run(ctx: ActionContext, target: ActionTarget): Promise<ActionOutcome>;
  /**
   * The action puts only its costly part inside `ctx.bound` (a restart's start, not its stop signal,
   * which costs the host nothing and must not wait behind other containers' stop timeouts). Without
   * it, the engine runs the whole action inside the bound.
   */
  readonly boundsItself?: boolean | undefined;
  /**
   * After a crash of the service during this action on the container `name`: finishes or rolls back
   * what it finds (recreate: an old container renamed aside) and says what to verify. Without it, the
   * container of that name is verified as it is. Never starts the action again.
   */
  resume?(ctx: ActionContext, name: string): Promise<ResumeOutcome>;
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

/** A container's stop timeout: its autoheal.stop.timeout label, else its own, else the default. */
export function stopTimeoutOf(c: ContainerDetails, defaultSec: number): number {
  const fromLabel = Number(c.labels[CONTAINER_LABELS.stopTimeout]);
  if (Number.isInteger(fromLabel) && fromLabel >= 0) return fromLabel;
  return c.stopTimeoutSec ?? defaultSec;
}
