// What the decisions know of the actions the service can run: their names and the kinds of target
// each acts on. The set is open: src/actions/registry.ts is the one list, and a registry is itself a
// catalog (a handler carries its `targets`), so core never imports the handlers and adding an action
// is its file plus one registry line.
import type { ScaleDefaults } from './scale.js';
import type { TargetKind } from './targets.js';
import type { ContainerRecord, ContainerView, SkipReason } from './types.js';

/** What an action bounded by its target's own limits is told: who asked, with what, and the defaults. */
export interface BoundsInput {
  readonly automatic: boolean;
  readonly params: Readonly<Record<string, string>>;
  readonly scale: ScaleDefaults;
}

/** An action's name as the registry, a label, a rule or a request spells it ("restart"). */
export type ActionName = string;

export interface ActionSpec {
  /** The kinds of target the action acts on. */
  readonly targets: ReadonlyArray<TargetKind>;
  /**
   * For an action a container must opt in to (update): why it may not run on this container now, or
   * undefined when it may. decide() asks it after the scope and protection checks, before any other.
   */
  readonly consent?:
    | ((
        c: ContainerView,
        r: ContainerRecord | undefined,
        o: { readonly automatic: boolean },
      ) => string | undefined)
    | undefined;
  /**
   * The containers of one target (the replicas of a service) are acted on one after another, and the
   * rest are held back once one fails (update), instead of all at once.
   */
  readonly oneAtATime?: boolean | undefined;
  /**
   * A failure is final: escalated at once whatever asked for the action, its incident closed, never
   * retried (an update that was rolled back runs the image it had; trying again would fail again).
   */
  readonly oneShot?: boolean | undefined;
  /** May be scheduled over every watched container at once (`update:all`), through the service's own run. */
  readonly batch?: boolean | undefined;
  /**
   * A step of a planned change (scale_up, scale_down), not a recovery: a verified step leaves no attempt
   * counted, so the attempt cap counts the steps that failed in a row.
   */
  readonly stepwise?: boolean | undefined;
  /**
   * For an action bounded by its target's own limits (scale_up, scale_down: the replicas a service may
   * have): why this request cannot run within them, or undefined. decide() asks it after consent.
   */
  readonly bounds?:
    | ((
        c: ContainerView,
        o: BoundsInput,
      ) =>
        | { readonly reason: Extract<SkipReason, 'scale_limit' | 'invalid_step'>; readonly detail: string }
        | undefined)
    | undefined;
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
