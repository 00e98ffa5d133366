// From alert labels to a target selector, and from a selector to the containers it names. A selector is
// resolved against one listing of the engine, never by asking the engine to look a caller's text up:
// the engine reads any hex string as an id prefix (`df` would name the container `df4b…`).
import { ALERT_LABELS, CONTAINER_LABELS } from './labels.js';
import { checkComposeProject, checkComposeService, MIN_ID_PREFIX, parseContainerRef } from './names.js';
import type { ContainerView, TargetSelector } from './types.js';

const first = (labels: Readonly<Record<string, string>>, keys: ReadonlyArray<string>): string | undefined => {
  for (const k of keys) {
    const v = labels[k];
    if (v) return v;
  }
  return undefined;
};

/** The target an alert names: a container by name, or every container of a Compose service. */
export function targetFromLabels(labels: Readonly<Record<string, string>>, action?: string): TargetSelector {
  const name = first(labels, ALERT_LABELS.containerName);
  if (name) return { kind: 'container', name: name.replace(/^\//, '') };
  const service = first(labels, ALERT_LABELS.service);
  if (service) return { kind: 'service', service, project: first(labels, ALERT_LABELS.project) };
  if (action === 'cleanup') return { kind: 'host' };
  return { kind: 'none' };
}

/** A target as an operator writes it: "name", "service:web" or "project/service". */
export function parseTarget(text: string): TargetSelector {
  if (text === 'host') return { kind: 'host' };
  const svc = /^service:(?:([^/]+)\/)?(.+)$/.exec(text);
  if (svc?.[2]) return { kind: 'service', service: svc[2], project: svc[1] };
  return { kind: 'container', name: text.replace(/^\//, '') };
}

export function describeTarget(t: TargetSelector): string {
  switch (t.kind) {
    case 'container':
      return t.name;
    case 'service':
      return `service:${t.project ? `${t.project}/` : ''}${t.service}`;
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
  return { ok: true };
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
    case 'service': {
      const checked = checkSelector(t);
      if (!checked.ok) return checked;
      const list = containers.filter(
        (c) =>
          c.labels[CONTAINER_LABELS.composeService] === t.service &&
          (t.project === undefined || c.labels[CONTAINER_LABELS.composeProject] === t.project) &&
          c.labels[CONTAINER_LABELS.composeOneoff] !== 'True',
      );
      return list.length ? { ok: true, containers: list } : none(`no container of ${describeTarget(t)}`);
    }
    default:
      return none(`${describeTarget(t)} names no container`);
  }
}
