// From alert labels to a target selector, and from a selector to the containers it names. A selector is
// resolved against one listing of the engine, never by asking the engine to look a caller's text up:
// the engine reads any hex string as an id prefix (`df` would name the container `df4b…`).
import { type ActionCatalog, type ActionName, hostOnly, unknownAction } from './actions.js';
import { ALERT_LABELS, CONTAINER_LABELS } from './labels.js';
import {
  checkComposeProject,
  checkComposeService,
  checkSwarmService,
  MIN_ID_PREFIX,
  parseContainerRef,
} from './names.js';
import type { ContainerView, TargetSelector } from './types.js';

/**
 * What an action runs on once a selector is resolved: containers (a container, a Compose service and a
 * Compose project all name containers, each acted on alone), a Compose service as a whole (its replicas:
 * scale_up, scale_down), a Compose project as a whole (its containers in dependency order:
 * restart_stack), a Swarm service, or the host.
 */
export type TargetKind = 'container' | 'compose_service' | 'compose_project' | 'swarm_service' | 'host';

/** The kind of target a selector resolves to; `none` names nothing. */
export function kindOf(t: TargetSelector): TargetKind | undefined {
  switch (t.kind) {
    case 'container':
    case 'service':
    case 'project':
      return 'container';
    case 'swarm':
      return 'swarm_service';
    case 'host':
      return 'host';
    case 'none':
      return undefined;
  }
}

/**
 * The kinds a selector can be acted on as, the first preferred: a Compose project is one target to an
 * action on whole projects (restart_stack) and its containers, one by one, to any other; a Compose
 * service is one target to an action on whole services (scale_up), and so is a container of one.
 */
export function kindsOf(t: TargetSelector): ReadonlyArray<TargetKind> {
  if (t.kind === 'project') return ['compose_project', 'container'];
  if (t.kind === 'service') return ['compose_service', 'container'];
  if (t.kind === 'container') return ['container', 'compose_service'];
  const kind = kindOf(t);
  return kind === undefined ? [] : [kind];
}

/** The kind an action acts on this selector as, or undefined when it acts on no kind of it. */
export const actedOnAs = (targets: ReadonlyArray<TargetKind>, t: TargetSelector): TargetKind | undefined =>
  kindsOf(t).find((k) => targets.includes(k));

const KIND_WORDS: Record<TargetKind, string> = {
  container: 'containers',
  compose_service: 'Compose services (service:NAME, service:PROJECT/NAME or a container of one)',
  compose_project: 'a whole Compose project (project:NAME)',
  swarm_service: 'Swarm services',
  host: 'the host',
};

const first = (labels: Readonly<Record<string, string>>, keys: ReadonlyArray<string>): string | undefined => {
  for (const k of keys) {
    const v = labels[k];
    if (v) return v;
  }
  return undefined;
};

/** The target an alert names: a container by name, or every container of a Compose service. */
export function targetFromLabels(labels: Readonly<Record<string, string>>, action?: string): TargetSelector {
  // A Swarm task's container belongs to its service: an alert about it acts on the service.
  const swarm = first(labels, ALERT_LABELS.swarmService);
  if (swarm) return { kind: 'swarm', service: swarm };
  const name = first(labels, ALERT_LABELS.containerName);
  if (name) return { kind: 'container', name: name.replace(/^\//, '') };
  const service = first(labels, ALERT_LABELS.service);
  if (service) return { kind: 'service', service, project: first(labels, ALERT_LABELS.project) };
  if (action === 'cleanup') return { kind: 'host' };
  return { kind: 'none' };
}

/** The name the state keeps a Swarm service's record under (a container name never has a colon). */
export const swarmRecordName = (service: string): string => `swarm:${service}`;

/** The name the state keeps a Compose service's record under, as a whole (its scaling). */
export const composeRecordName = (project: string, service: string): string =>
  `service:${project}/${service}`;

/** The target a record's name stands for: a Swarm service's (swarm:NAME), a Compose service's or a container's. */
export const targetOfRecord = (name: string): TargetSelector =>
  name.startsWith('swarm:') || name.startsWith('service:') ? parseTarget(name) : { kind: 'container', name };

/** What an operator writes to name a target (the admin API, the CLI, SCHEDULES). */
export const TARGET_GRAMMAR =
  'a container name or id, service:web, service:project/web, project:NAME (every container of a Compose project), swarm:NAME or host';

/**
 * A target as an operator writes it: "host", "service:web", "service:project/web", "project:shop",
 * "swarm:web", else a container name or id. Only the shape is read here; checkSelector checks the names.
 */
export function parseTarget(text: string): TargetSelector {
  if (text === 'host') return { kind: 'host' };
  const svc = /^service:(?:([^/]+)\/)?(.+)$/.exec(text);
  if (svc?.[2]) return { kind: 'service', service: svc[2], project: svc[1] };
  const project = /^project:(.+)$/.exec(text);
  if (project?.[1]) return { kind: 'project', project: project[1] };
  const swarm = /^swarm:(.+)$/.exec(text);
  if (swarm?.[1]) return { kind: 'swarm', service: swarm[1] };
  return { kind: 'container', name: text.replace(/^\//, '') };
}

export function describeTarget(t: TargetSelector): string {
  switch (t.kind) {
    case 'container':
      return t.name;
    case 'service':
      return `service:${t.project ? `${t.project}/` : ''}${t.service}`;
    case 'project':
      return `project:${t.project}`;
    case 'swarm':
      return `swarm:${t.service}`;
    case 'host':
      return 'host';
    case 'none':
      return '(none)';
  }
}

/** An ambiguous id prefix lists at most this many of the containers it matches. */
const MAX_CANDIDATES_SHOWN = 10;

export type TargetMiss = 'invalid_target' | 'target_not_found' | 'target_ambiguous';

export type TargetResolution<C> =
  | { readonly ok: true; readonly containers: C[] }
  | {
      readonly ok: false;
      readonly reason: TargetMiss;
      readonly detail: string;
      /** For target_ambiguous: the names of the containers the id prefix matches. */
      readonly candidates?: ReadonlyArray<string> | undefined;
    };

/** Whether a selector's names follow Docker's and Compose's grammar; checked before any engine call. */
export function checkSelector(
  t: TargetSelector,
):
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: 'invalid_target'; readonly detail: string } {
  if (t.kind === 'container') {
    const ref = parseContainerRef(t.name);
    return ref.ok ? { ok: true } : { ok: false, reason: 'invalid_target', detail: ref.detail };
  }
  if (t.kind === 'service') {
    const svc = checkComposeService(t.service);
    if (!svc.ok) return { ok: false, reason: 'invalid_target', detail: svc.detail };
    if (t.project !== undefined) {
      const project = checkComposeProject(t.project);
      if (!project.ok) return { ok: false, reason: 'invalid_target', detail: project.detail };
    }
  }
  if (t.kind === 'project') {
    const project = checkComposeProject(t.project);
    if (!project.ok) return { ok: false, reason: 'invalid_target', detail: project.detail };
  }
  if (t.kind === 'swarm') {
    const svc = checkSwarmService(t.service);
    if (!svc.ok) return { ok: false, reason: 'invalid_target', detail: svc.detail };
  }
  return { ok: true };
}

export type Selection =
  | { readonly ok: true; readonly target: TargetSelector }
  | {
      readonly ok: false;
      readonly reason: 'unknown_action' | 'bad_target' | 'invalid_target';
      readonly detail: string;
    };

/**
 * The one check of what an operator asked for (the admin API and SCHEDULES both use it): the action
 * is one the service has, the text names a kind of target that action acts on, and the names follow
 * Docker's and Compose's grammar. No engine call: whether the target exists is the resolver's question.
 * A host-only action (cleanup) takes "host" or no target at all.
 */
export function selectTarget(
  catalog: ActionCatalog,
  action: ActionName,
  text: string | undefined,
): Selection {
  const spec = catalog.get(action);
  if (!spec) return { ok: false, reason: 'unknown_action', detail: unknownAction(catalog, action) };
  if (hostOnly(catalog, action)) {
    if (text === undefined || text === '' || text === 'host') return { ok: true, target: { kind: 'host' } };
    return {
      ok: false,
      reason: 'bad_target',
      detail: `${action} acts on the whole host: use target "host" or leave it out (got ${JSON.stringify(text)})`,
    };
  }
  const named = text === undefined || text === '' ? undefined : parseTarget(text);
  const kind = named && kindOf(named);
  if (!named || (kind === 'host' && !spec.targets.includes('host'))) {
    return {
      ok: false,
      reason: 'bad_target',
      detail: `${action} needs a target: ${TARGET_GRAMMAR.replace(/ or host$/, '')}`,
    };
  }
  if (actedOnAs(spec.targets, named) === undefined) {
    const on = spec.targets.map((k) => KIND_WORDS[k]).join(' and ');
    return {
      ok: false,
      reason: 'bad_target',
      detail: `${action} acts on ${on}, not on ${JSON.stringify(text)}`,
    };
  }
  const checked = checkSelector(named);
  return checked.ok ? { ok: true, target: named } : checked;
}

/**
 * The containers a selector names, from one listing of the engine (`all: true`). Names match names
 * exactly; an id matches as the full id or as a prefix of at least 12 hex characters, and a prefix that
 * matches several containers is ambiguous, never "the first". In Docker's order: full id, name, prefix.
 */
export function resolveTarget<C extends ContainerView>(
  t: TargetSelector,
  containers: ReadonlyArray<C>,
): TargetResolution<C> {
  const none = (detail: string): TargetResolution<C> => ({ ok: false, reason: 'target_not_found', detail });
  switch (t.kind) {
    case 'container': {
      const ref = parseContainerRef(t.name);
      if (!ref.ok) return { ok: false, reason: 'invalid_target', detail: ref.detail };
      const v = ref.value;
      if (ref.kind === 'id') {
        const byId = containers.filter((c) => c.id === v);
        if (byId.length) return { ok: true, containers: byId };
      }
      const byName = containers.filter((c) => c.name === v);
      if (byName.length) return { ok: true, containers: byName.slice(0, 1) };
      if (ref.kind === 'id_prefix') {
        const byPrefix = containers.filter((c) => c.id.startsWith(v));
        if (byPrefix.length === 1) return { ok: true, containers: byPrefix };
        if (byPrefix.length > 1) {
          const candidates = byPrefix.map((c) => c.name).sort();
          const shown =
            candidates.length > MAX_CANDIDATES_SHOWN
              ? [...candidates.slice(0, MAX_CANDIDATES_SHOWN), '…']
              : candidates;
          return {
            ok: false,
            reason: 'target_ambiguous',
            detail: `the id prefix "${v}" matches ${byPrefix.length} containers (${shown.join(', ')}): give more of the id, or the name`,
            candidates: candidates.slice(0, MAX_CANDIDATES_SHOWN),
          };
        }
      }
      return none(
        ref.kind === 'name' && v.length < MIN_ID_PREFIX && /^[0-9a-f]+$/.test(v)
          ? `no container named "${v}" (an id needs at least ${MIN_ID_PREFIX} hex characters)`
          : `no container named "${v}"`,
      );
    }
    case 'service':
    case 'project': {
      const checked = checkSelector(t);
      if (!checked.ok) return checked;
      const { composeService, composeProject, composeOneoff } = CONTAINER_LABELS;
      const service = t.kind === 'service' ? t.service : undefined;
      // Every container of it, one-off runs (`docker compose run`) aside.
      const list = containers.filter(
        (c) =>
          (service === undefined || c.labels[composeService] === service) &&
          (t.project === undefined || c.labels[composeProject] === t.project) &&
          c.labels[composeOneoff] !== 'True',
      );
      return list.length ? { ok: true, containers: list } : none(`no container of ${describeTarget(t)}`);
    }
    case 'swarm':
      // A Swarm service is resolved from the Swarm API's service listing, not from containers.
      return none(`${describeTarget(t)} is a Swarm service: no action here acts on one`);
    default:
      return none(`${describeTarget(t)} names no container`);
  }
}
