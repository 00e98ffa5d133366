// The default actions: the one place that maps an action name to its code. Adding an action is its
// file plus one line here. The engine is handed a registry (EngineDeps.actions); it imports none.
import { cleanupAction } from './cleanup.js';
import type { ActionHandler, ActionRegistry } from './handler.js';
import { recreateAction } from './recreate.js';
import { restartAction } from './restart.js';
import { restartStackAction } from './restart-stack.js';
import { rollbackAction } from './rollback.js';
import { scaleDownAction, scaleUpAction } from './scale.js';
import { stopStartAction } from './stop-start.js';
import { makeUpdateAction, type UpdateOptions } from './update.js';

/** A registry of the given handlers, keyed by their names. */
export const registryOf = (handlers: ReadonlyArray<ActionHandler>): ActionRegistry =>
  new Map(handlers.map((h) => [h.name, h]));

/** The service's actions; `updates` sets AUTOPATCH and the count of each update's end. */
export function defaultActions(o: { readonly updates?: UpdateOptions } = {}): ActionRegistry {
  return registryOf([
    restartAction, // container: docker restart with the stop timeout; Swarm service: force update
    stopStartAction, // container: stop (kill when stuck), then start
    cleanupAction, // host: remove stopped containers, prune, truncate oversized logs
    recreateAction, // container: re-created from its definition, the old one kept aside until verified
    restartStackAction, // compose_project: every container in depends_on order, each layer verified first
    makeUpdateAction(o.updates), // container: pulled and re-created on the new image, rolled back unless healthy
    rollbackAction, // Swarm service: back to its previous spec
    scaleUpAction, // Compose or Swarm service: replicas added within autoheal.scale.max, each verified
    scaleDownAction, // Compose or Swarm service: replicas removed, highest number first, within autoheal.scale.min
  ]);
}
