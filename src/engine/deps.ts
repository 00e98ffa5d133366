// What the engine is built from: every port it acts through, handed in by the composition root
// (src/service.ts), so tests and benchmarks can pass their own.
import type { Logger } from 'pino';
import type { ActionRegistry } from '../actions/handler.js';
import type { Config } from '../config.js';
import type { Clock } from '../core/clock.js';
import type { CompiledRule } from '../core/rules.js';
import type { DockerClient } from '../docker/client.js';
import type { Metrics } from '../metrics.js';
import type { EscalationSink } from '../notifiers/escalation.js';
import type { Store } from '../state/store.js';

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
}
