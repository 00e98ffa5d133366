// What the decisions know of the actions the service can run: their names and the kinds of target
// each acts on. The set is open: src/actions/registry.ts is the one list, and a registry is itself a
// catalog (a handler carries its `targets`), so core never imports the handlers and adding an action
// is its file plus one registry line.
import type { TargetKind } from './targets.js';

/** An action's name as the registry, a label, a rule or a request spells it ("restart"). */
export type ActionName = string;

export interface ActionSpec {
  /** The kinds of target the action acts on. */
  readonly targets: ReadonlyArray<TargetKind>;
}

export type ActionCatalog = ReadonlyMap<ActionName, ActionSpec>;

/** What an alert or label says to mean "do nothing" (remediation=none); never a registered action. */
export const NO_ACTION = 'none';

/** The catalog's names, for messages ("use one of restart, stop_start, cleanup"). */
export const actionNames = (catalog: ActionCatalog): ReadonlyArray<ActionName> => [...catalog.keys()];

export const actsOn = (catalog: ActionCatalog, action: ActionName, kind: TargetKind): boolean =>
  catalog.get(action)?.targets.includes(kind) ?? false;

/** True for an action that acts on the host as a whole and on nothing narrower (cleanup). */
export const hostOnly = (catalog: ActionCatalog, action: ActionName): boolean => {
  const targets = catalog.get(action)?.targets;
  return targets !== undefined && targets.length > 0 && targets.every((k) => k === 'host');
};

export const unknownAction = (catalog: ActionCatalog, action: string): string =>
  `unknown action "${action}": use one of ${actionNames(catalog).join(', ')}`;
