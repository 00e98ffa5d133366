// The dependency graph of one Compose project's services, read from its containers' labels: the order
// a whole stack is restarted in (restart_stack) and who depends on a service (its dependents). Compose
// v2 records each service's depends_on on its containers (`com.docker.compose.depends_on`, written by
// docker/compose's prepareLabels as `service:condition:restart`, comma-joined); docker-compose 1.x
// writes no such label, so `autoheal.depends_on` says the same by hand. Pure: no engine, no I/O, and
// a bad label or a cycle is reported, never thrown or looped on.
import { CONTAINER_LABELS } from './labels.js';
import { checkComposeService } from './names.js';

/** compose-spec's depends_on conditions. */
export const DEPENDS_ON_CONDITIONS = [
  'service_started',
  'service_healthy',
  'service_completed_successfully',
] as const;
export type DependsOnCondition = (typeof DEPENDS_ON_CONDITIONS)[number];

export interface Dependency {
  readonly service: string;
  readonly condition: DependsOnCondition;
  /** Compose's `restart: true`: the dependent is restarted when this dependency is. */
  readonly restart: boolean;
}

/** What an entry that leaves parts out means: the source decides (see the two below). */
export interface DependsOnDefaults {
  readonly condition: DependsOnCondition;
  readonly restart: boolean;
}

/**
 * Compose's own reader of the label (projectFromContainerLabels) restarts a dependency by default
 * when an older Compose left the flag out; the condition it then assumes is "running, or healthy
 * when there is a check", which is what the verification of a restart waits for anyway.
 */
export const COMPOSE_LABEL_DEFAULTS: DependsOnDefaults = { condition: 'service_started', restart: true };
/** A bare `db` in autoheal.depends_on is plain `depends_on: [db]`: started, no restart. */
export const AUTOHEAL_LABEL_DEFAULTS: DependsOnDefaults = { condition: 'service_started', restart: false };

export interface BadEntry {
  readonly entry: string;
  readonly why: string;
}

export interface ParsedDependsOn {
  readonly dependencies: ReadonlyArray<Dependency>;
  readonly bad: ReadonlyArray<BadEntry>;
}

const isCondition = (text: string): text is DependsOnCondition =>
  (DEPENDS_ON_CONDITIONS as ReadonlyArray<string>).includes(text);

/**
 * One depends_on label: `service[:condition[:restart]]` entries, comma-separated (blank entries and
 * spaces around parts are tolerated, as a hand-written label has them). A bad entry is reported and
 * the others kept; a service named twice keeps its last entry.
 */
export function parseDependsOn(text: string, defaults: DependsOnDefaults): ParsedDependsOn {
  const byService = new Map<string, Dependency>();
  const bad: BadEntry[] = [];
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const [service = '', condition, restart, ...extra] = entry.split(':').map((p) => p.trim());
    const named = checkComposeService(service);
    if (!named.ok) {
      bad.push({ entry, why: named.detail });
      continue;
    }
    if (extra.length > 0) {
      bad.push({ entry, why: 'more than service:condition:restart' });
      continue;
    }
    const given = condition === undefined || condition === '' ? defaults.condition : condition;
    if (!isCondition(given)) {
      bad.push({ entry, why: `unknown condition "${given}" (use ${DEPENDS_ON_CONDITIONS.join(', ')})` });
      continue;
    }
    if (restart !== undefined && restart !== 'true' && restart !== 'false') {
      bad.push({ entry, why: `restart must be true or false, not "${restart}"` });
      continue;
    }
    byService.set(service, {
      service,
      condition: given,
      restart: restart === undefined ? defaults.restart : restart === 'true',
    });
  }
  return { dependencies: [...byService.values()], bad };
}

/** What the graph needs of a container: an inspected one or a listed one both have it. */
export interface GraphContainer {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface ServiceNode<C extends GraphContainer> {
  readonly service: string;
  /** Its containers in the project (several with replicas), by name. */
  readonly containers: ReadonlyArray<C>;
  /** What it depends on, by service, from the labels of all its containers. */
  readonly dependsOn: ReadonlyArray<Dependency>;
}

/** Something in the labels the graph could not use; the graph is built without it. */
export interface GraphProblem {
  readonly container?: string | undefined;
  readonly service?: string | undefined;
  readonly detail: string;
}

export interface ComposeGraph<C extends GraphContainer> {
  readonly project: string;
  /** By service name, in name order. */
  readonly services: ReadonlyMap<string, ServiceNode<C>>;
  readonly problems: ReadonlyArray<GraphProblem>;
}

/** The dependencies one container's labels declare: Compose's label, then the hand-written one over it. */
function dependenciesOf(c: GraphContainer, problems: GraphProblem[]): Dependency[] {
  const merged = new Map<string, Dependency>();
  const sources: Array<[string, DependsOnDefaults]> = [
    [CONTAINER_LABELS.composeDependsOn, COMPOSE_LABEL_DEFAULTS],
    [CONTAINER_LABELS.dependsOn, AUTOHEAL_LABEL_DEFAULTS],
  ];
  for (const [key, defaults] of sources) {
    const text = c.labels[key];
    if (text === undefined) continue;
    const parsed = parseDependsOn(text, defaults);
    for (const b of parsed.bad) {
      problems.push({ container: c.name, detail: `${key}: ignored "${b.entry}": ${b.why}` });
    }
    for (const d of parsed.dependencies) merged.set(d.service, d);
  }
  return [...merged.values()];
}

/**
 * The graph over the services of `project` that the given containers belong to. Containers of other
 * projects, one-off containers (`docker compose run`) and containers without a service label are left
 * out and reported. A dependency on a service none of the containers belongs to is dropped and
 * reported: it cannot order anything here. Replicas that disagree on a dependency: the stricter one
 * wins (healthy over started, restart over none), so no replica's wish is lost.
 */
export function buildComposeGraph<C extends GraphContainer>(
  project: string,
  containers: ReadonlyArray<C>,
): ComposeGraph<C> {
  const problems: GraphProblem[] = [];
  const members = new Map<string, C[]>();
  const declared = new Map<string, Map<string, Dependency>>();
  for (const c of containers) {
    const own = c.labels[CONTAINER_LABELS.composeProject];
    const service = c.labels[CONTAINER_LABELS.composeService];
    if (own !== project) {
      problems.push({
        container: c.name,
        detail: `not of project ${project} (${own ?? 'no project label'})`,
      });
      continue;
    }
    if (c.labels[CONTAINER_LABELS.composeOneoff]?.toLowerCase() === 'true') {
      problems.push({
        container: c.name,
        service,
        detail: 'a one-off container (compose run): not part of the stack',
      });
      continue;
    }
    if (!service) {
      problems.push({ container: c.name, detail: 'no service label' });
      continue;
    }
    const replicas = members.get(service) ?? [];
    replicas.push(c);
    members.set(service, replicas);
    const deps = declared.get(service) ?? new Map<string, Dependency>();
    for (const d of dependenciesOf(c, problems)) deps.set(d.service, stricter(deps.get(d.service), d));
    declared.set(service, deps);
  }
  const services = new Map<string, ServiceNode<C>>();
  for (const service of [...members.keys()].sort()) {
    const dependsOn: Dependency[] = [];
    for (const d of declared.get(service)?.values() ?? []) {
      if (members.has(d.service)) dependsOn.push(d);
      else
        problems.push({ service, detail: `depends on ${d.service}, which has no container here: ignored` });
    }
    dependsOn.sort((a, b) => compare(a.service, b.service));
    const own = [...(members.get(service) ?? [])].sort((a, b) => compare(a.name, b.name));
    services.set(service, { service, containers: own, dependsOn });
  }
  return { project, services, problems };
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

const CONDITION_STRENGTH: Readonly<Record<DependsOnCondition, number>> = {
  service_started: 0,
  service_healthy: 1,
  service_completed_successfully: 2,
};

function stricter(a: Dependency | undefined, b: Dependency): Dependency {
  if (!a) return b;
  return {
    service: b.service,
    condition: CONDITION_STRENGTH[a.condition] >= CONDITION_STRENGTH[b.condition] ? a.condition : b.condition,
    restart: a.restart || b.restart,
  };
}

/**
 * The cycles among the services, each named from its smallest service round to it again
 * (`["app", "db", "app"]`; a service that depends on itself is `["db", "db"]`). Iterative, so a long
 * chain cannot overflow the stack; every service is visited once.
 */
export function findCycles(graph: ComposeGraph<GraphContainer>): ReadonlyArray<ReadonlyArray<string>> {
  // Tarjan's strongly connected components: a component of two or more, or one with a self-edge, is a cycle.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  let next = 0;
  const edges = (s: string) => (graph.services.get(s)?.dependsOn ?? []).map((d) => d.service);
  for (const root of graph.services.keys()) {
    if (index.has(root)) continue;
    const work: Array<{ node: string; i: number }> = [{ node: root, i: 0 }];
    index.set(root, next);
    low.set(root, next++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1] as { node: string; i: number };
      const out = edges(frame.node);
      if (frame.i < out.length) {
        const to = out[frame.i++] as string;
        if (!index.has(to)) {
          index.set(to, next);
          low.set(to, next++);
          stack.push(to);
          onStack.add(to);
          work.push({ node: to, i: 0 });
        } else if (onStack.has(to)) {
          low.set(frame.node, Math.min(low.get(frame.node) as number, index.get(to) as number));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent)
        low.set(parent.node, Math.min(low.get(parent.node) as number, low.get(frame.node) as number));
      if (low.get(frame.node) !== index.get(frame.node)) continue;
      const component: string[] = [];
      for (;;) {
        const s = stack.pop() as string;
        onStack.delete(s);
        component.push(s);
        if (s === frame.node) break;
      }
      const selfEdge = component.length === 1 && edges(frame.node).includes(frame.node);
      if (component.length > 1 || selfEdge) cycles.push(cycleThrough(component, edges));
    }
  }
  return cycles.sort((a, b) => compare(a[0] as string, b[0] as string));
}

/** One cycle inside a strongly connected component, from its smallest member back to it. */
function cycleThrough(component: string[], edges: (s: string) => string[]): string[] {
  const inside = new Set(component);
  const start = [...component].sort()[0] as string;
  // Breadth-first from start to start within the component: the shortest way round, so the name is short.
  const from = new Map<string, string>();
  const queue = [start];
  for (let head = 0; head < queue.length; head++) {
    const s = queue[head] as string;
    for (const to of edges(s)) {
      if (!inside.has(to)) continue;
      if (to === start) {
        const path = [start];
        for (let at: string | undefined = s; at !== undefined && at !== start; at = from.get(at))
          path.push(at);
        return [start, ...path.slice(1).reverse(), start];
      }
      if (!from.has(to)) {
        from.set(to, s);
        queue.push(to);
      }
    }
  }
  return [start, start];
}

export type LayerOrder =
  | { readonly ok: true; readonly layers: ReadonlyArray<ReadonlyArray<string>> }
  | { readonly ok: false; readonly cycles: ReadonlyArray<ReadonlyArray<string>> };

/**
 * The services in layers: each layer's services depend only on services of earlier layers, and a
 * service sits in the first layer it can (so independent services share one and can go in
 * parallel). Names sorted within a layer. With a cycle there is no order: the cycles are the answer.
 */
export function layersOf(graph: ComposeGraph<GraphContainer>): LayerOrder {
  const cycles = findCycles(graph);
  if (cycles.length > 0) return { ok: false, cycles };
  // Kahn's algorithm: a service's layer is one past the latest of its dependencies; linear in the edges.
  const waitingOn = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  const ready: string[] = [];
  for (const node of graph.services.values()) {
    waitingOn.set(node.service, node.dependsOn.length);
    if (node.dependsOn.length === 0) ready.push(node.service);
    for (const d of node.dependsOn) {
      const list = dependents.get(d.service) ?? [];
      list.push(node.service);
      dependents.set(d.service, list);
    }
  }
  const layer = new Map<string, number>(ready.map((s) => [s, 0]));
  for (let i = 0; i < ready.length; i++) {
    const s = ready[i] as string;
    for (const dep of dependents.get(s) ?? []) {
      layer.set(dep, Math.max(layer.get(dep) ?? 0, (layer.get(s) as number) + 1));
      const left = (waitingOn.get(dep) as number) - 1;
      waitingOn.set(dep, left);
      if (left === 0) ready.push(dep);
    }
  }
  const layers: string[][] = [];
  for (const [s, n] of layer) {
    layers[n] = layers[n] ?? [];
    layers[n].push(s);
  }
  return { ok: true, layers: layers.map((l) => l.sort()) };
}

export interface Dependent {
  readonly service: string;
  readonly condition: DependsOnCondition;
  readonly restart: boolean;
}

/** The services that depend on `service` directly, with how (restart flag, condition), in name order. */
export function dependentsOf(graph: ComposeGraph<GraphContainer>, service: string): ReadonlyArray<Dependent> {
  const out: Dependent[] = [];
  for (const node of graph.services.values()) {
    const d = node.dependsOn.find((x) => x.service === service);
    if (d) out.push({ service: node.service, condition: d.condition, restart: d.restart });
  }
  return out;
}

/** A cycle as a line: `app → db → app`. */
export const describeCycle = (cycle: ReadonlyArray<string>): string => cycle.join(' → ');
