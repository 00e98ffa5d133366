// The registry of remediation handlers: the one place that maps an action name to its code.
import type { ActionName } from '../core/types.js';
import { cleanupHandler } from './cleanup.js';
import type { ContainerHandler, HostHandler } from './handler.js';
import { restartHandler } from './restart.js';
import { stopStartHandler } from './stop-start.js';

export const containerHandlers: ReadonlyMap<ActionName, ContainerHandler> = new Map(
  [restartHandler, stopStartHandler].map((h) => [h.action, h]),
);

export const hostHandlers: ReadonlyMap<ActionName, HostHandler> = new Map([
  [cleanupHandler.action, cleanupHandler],
]);

export type {
  ActionOutcome,
  CleanupReport,
  ContainerHandler,
  HandlerContext,
  HostHandler,
} from './handler.js';
