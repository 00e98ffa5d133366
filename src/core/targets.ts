// From alert labels to a target selector, and from a selector to the containers it names.
import { ALERT_LABELS, CONTAINER_LABELS } from './labels.js';
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

export const hostFromLabels = (labels: Readonly<Record<string, string>>): string | undefined =>
  first(labels, ALERT_LABELS.host);

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

/** The containers a selector names, from one listing of the engine. */
export function matchTargets<C extends ContainerView>(t: TargetSelector, containers: ReadonlyArray<C>): C[] {
  switch (t.kind) {
    case 'container': {
      const byName = containers.filter((c) => c.name === t.name);
      if (byName.length) return byName;
      // A full or 12+ character id prefix names a container as well.
      return t.name.length >= 12 ? containers.filter((c) => c.id.startsWith(t.name)) : [];
    }
    case 'service':
      return containers.filter(
        (c) =>
          c.labels[CONTAINER_LABELS.composeService] === t.service &&
          (t.project === undefined || c.labels[CONTAINER_LABELS.composeProject] === t.project) &&
          c.labels[CONTAINER_LABELS.composeOneoff] !== 'True',
      );
    default:
      return [];
  }
}
