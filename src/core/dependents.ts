// Who depends on a container that was just restarted or re-created, and what to do with each (pure).
// Two kinds, as Compose means them: a container that runs in the parent's network namespace
// (`network_mode: service:vpn` / `container:vpn`) has no network once the parent's namespace is gone, and
// is restarted against it (re-created against the new id when the parent was re-created); a container
// whose depends_on names the parent's service with restart: true is restarted after the parent is
// healthy again, dependents of dependents after them, in layers. `autoheal.dependents` on the dependent
// (else on the parent) chooses restart, recreate or ignore.
import type { ActionName } from './actions.js';
import { buildComposeGraph, dependentsOf, type GraphContainer } from './compose-graph.js';
import { CONTAINER_LABELS } from './labels.js';

export const DEPENDENT_MODES = ['restart', 'recreate', 'ignore'] as const;
export type DependentMode = (typeof DEPENDENT_MODES)[number];

export interface DependentContainer extends GraphContainer {
  readonly id: string;
  /** HostConfig.NetworkMode from the listing: `container:ID` for one in another's namespace. */
  readonly networkMode?: string | undefined;
}

export interface DependentStep<C> {
  readonly container: C;
  /** Why it depends on the parent: its network namespace, or a depends_on with restart: true. */
  readonly why: 'network_namespace' | 'depends_on';
  readonly mode: DependentMode;
  /** For a re-created namespace dependent: the network mode to give it (the parent's new id). */
  readonly networkMode?: string | undefined;
}

export interface DependentsPlan<C> {
  /** In order: each layer after the one before is healthy; the steps of one layer in parallel. */
  readonly layers: ReadonlyArray<ReadonlyArray<DependentStep<C>>>;
  /** What the labels said that could not be used (a bad autoheal.dependents value, a cycle). */
  readonly problems: ReadonlyArray<string>;
}

function modeOf(
  labels: Readonly<Record<string, string>>,
  fallback: DependentMode,
  problems: string[],
  who: string,
): DependentMode {
  const v = labels[CONTAINER_LABELS.dependents]?.trim();
  if (v === undefined || v === '') return fallback;
  if ((DEPENDENT_MODES as readonly string[]).includes(v)) return v as DependentMode;
  problems.push(
    `${who}: ${CONTAINER_LABELS.dependents}=${JSON.stringify(v)} is not one of ${DEPENDENT_MODES.join(', ')}`,
  );
  return fallback;
}

/**
 * The dependents of `parent` after `action` on it, from one listing of the engine. `parentIds` are the
 * ids the parent had and has (a recreate changes it): a namespace dependent names one of them, or the
 * parent's name.
 */
export function planDependents<C extends DependentContainer>(
  parent: {
    readonly name: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly ids: ReadonlyArray<string>;
  },
  action: ActionName,
  listing: ReadonlyArray<C>,
  newId: string,
): DependentsPlan<C> {
  const problems: string[] = [];
  const namespaces = new Set([parent.name, ...parent.ids].map((x) => `container:${x}`));
  const others = listing.filter((c) => c.name !== parent.name && !parent.ids.includes(c.id));
  // The dependent's own label, else the parent's, else the default for how it depends.
  const modeFor = (c: C, fallback: DependentMode) =>
    modeOf(c.labels, modeOf(parent.labels, fallback, problems, parent.name), problems, c.name);

  // Its network is gone with the parent's namespace: first, all at once.
  const ns: DependentStep<C>[] = others
    .filter((c) => c.networkMode !== undefined && namespaces.has(c.networkMode))
    .map((c) => {
      const mode = modeFor(c, action === 'recreate' ? 'recreate' : 'restart');
      return {
        container: c,
        why: 'network_namespace',
        mode,
        networkMode: mode === 'recreate' ? `container:${newId}` : undefined,
      };
    });
  const taken = new Set(ns.map((s) => s.container.name));

  // depends_on with restart: true, transitively, in layers from the parent outwards.
  const layers: DependentStep<C>[][] = ns.length ? [ns] : [];
  const project = parent.labels[CONTAINER_LABELS.composeProject];
  const service = parent.labels[CONTAINER_LABELS.composeService];
  if (project && service) {
    const members = listing.filter(
      (c) =>
        c.labels[CONTAINER_LABELS.composeProject] === project &&
        c.labels[CONTAINER_LABELS.composeOneoff] !== 'True',
    );
    const graph = buildComposeGraph(project, members);
    const seen = new Set([service]);
    let frontier = [service];
    while (frontier.length) {
      const next: string[] = [];
      const layer: DependentStep<C>[] = [];
      for (const s of frontier) {
        for (const d of dependentsOf(graph, s)) {
          if (!d.restart || seen.has(d.service)) continue;
          seen.add(d.service);
          next.push(d.service);
          for (const c of graph.services.get(d.service)?.containers ?? []) {
            if (taken.has(c.name) || c.name === parent.name) continue;
            taken.add(c.name);
            layer.push({ container: c, why: 'depends_on', mode: modeFor(c, 'restart') });
          }
        }
      }
      if (layer.length) layers.push(layer);
      frontier = next;
    }
  }
  return { layers, problems: [...new Set(problems)] };
}
