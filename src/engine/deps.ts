// What the engine is built from: every port it acts through, handed in by the composition root
// (src/service.ts), so tests and benchmarks can pass their own; and what its stages share.
import type { Logger } from 'pino';
import type { LimitFunction } from 'p-limit';
import type {
  ActionContext,
  ActionHandler,
  ActionOutcome,
  ActionRegistry,
  ActionTarget,
  Bound,
} from '../actions/handler.js';
import type { Config } from '../config.js';
import type { Clock } from '../core/clock.js';
import type { PolicyContext } from '../core/policy.js';
import type { CompiledRule } from '../core/rules.js';
import type { Signal } from '../core/types.js';
import type { DockerClient } from '../docker/client.js';
import type { Metrics } from '../metrics.js';
import type { EscalationSink } from '../notifiers/escalation.js';
import type { Silencer } from '../notifiers/silences.js';
import type { Store } from '../state/store.js';
import type { Report } from './report.js';
import type { RetryTimers } from './retries.js';

export interface EngineDeps {
  readonly config: Config;
  readonly docker: DockerClient;
  readonly store: Store;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly clock: Clock;
  readonly escalations: EscalationSink;
  /** The actions the engine can run (defaultActions() in production; tests may pass their own). */
  readonly actions: ActionRegistry;
  readonly rules?: ReadonlyArray<CompiledRule>;
  /** Alertmanager silences while a remediation started from an alert runs (ALERTMANAGER_URL). */
  readonly silences?: Silencer | undefined;
}

/**
 * What the engine's stages (the container path, the host path, resumption) share besides its ports:
 * the report, the retry timers, the containers being acted on, the bound on parallel actions. The
 * Engine builds it once; each stage is handed it instead of reaching into the Engine.
 */
export interface EngineIo {
  readonly deps: EngineDeps;
  readonly report: Report;
  readonly retries: RetryTimers;
  /** Names (and the host key) with an action running now. */
  readonly busy: Set<string>;
  /** The bound on actions running at once (MAX_PARALLEL). */
  readonly limit: LimitFunction;
  /** The same bound, for an action that puts only its costly part inside it (see runBounded). */
  readonly bound: Bound;
  /** The policy context as it is now (SELF_CONTAINER_ID is replaced by the full id after start). */
  ctx(): PolicyContext;
  stopping(): boolean;
  /** Runs fn's state changes as one durable write; a failed write is counted and rethrown. */
  durably<R>(fn: () => R): R;
  /** Counts an automatic action in the circuit breaker's window (and opens it past the limit). */
  countForCircuit(now: number): void;
  handlerContext(signal: Signal): ActionContext;
}

/**
 * Runs an action within MAX_PARALLEL: the whole of it, or, for one that `boundsItself`, only the part
 * it puts inside its context's bound (a restart's start; its stop signal goes out at once).
 */
export function runBounded(
  io: EngineIo,
  handler: ActionHandler,
  ctx: ActionContext,
  target: ActionTarget,
): Promise<ActionOutcome> {
  // Only here is a handler handed the bound: one run inside a slot that waited for another would hang.
  if (handler.boundsItself) return handler.run({ ...ctx, bound: io.bound }, target);
  return io.limit(() => handler.run(ctx, target));
}
