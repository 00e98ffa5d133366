// What every remediation handler receives and returns. One file per handler; index.ts registers them.
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { ScopeContext } from '../core/scope.js';
import type { ActionName } from '../core/types.js';
import type { ContainerDetails, DockerClient } from '../docker/client.js';

export interface HandlerContext {
  readonly docker: DockerClient;
  readonly config: Config;
  readonly log: Logger;
  readonly now: () => number;
  readonly params: Readonly<Record<string, string>>;
}

export interface ActionOutcome {
  readonly ok: boolean;
  readonly detail: string;
  /** When the action changed the container (restarted, started): verification looks for a start after it. */
  readonly startedAfter?: number;
}

/** A remediation of one container: restart, stop_start. */
export interface ContainerHandler {
  readonly action: ActionName;
  run(ctx: HandlerContext, container: ContainerDetails, stopTimeoutSec: number): Promise<ActionOutcome>;
}

export interface CleanupReport {
  readonly ok: boolean;
  readonly reclaimedBytes: number;
  readonly removed: Readonly<Record<string, number>>;
  readonly truncatedLogs: ReadonlyArray<string>;
  readonly errors: ReadonlyArray<string>;
}

/** A remediation of the host: cleanup. */
export interface HostHandler {
  readonly action: ActionName;
  run(ctx: HandlerContext, scope: ScopeContext): Promise<CleanupReport>;
}
