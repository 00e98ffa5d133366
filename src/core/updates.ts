// auto_patcher's decisions, pure: whether a container takes image updates (its autoheal.update label,
// else AUTOPATCH), whether one may start now, and what a check run does with what it found: the
// updates to apply, grouped so that the replicas of one Compose service go one at a time (the engine
// runs an update's targets in turn and holds the rest back when one fails), and the ones to tell the
// humans about without touching anything (notify, watchtower's monitor-only).
import { CONTAINER_LABELS } from './labels.js';
import type { ContainerRecord, ContainerView, TargetSelector } from './types.js';

export const UPDATE_MODES = ['apply', 'notify', 'off'] as const;
export type UpdateMode = (typeof UPDATE_MODES)[number];

export const isUpdateMode = (v: string | undefined): v is UpdateMode =>
  (UPDATE_MODES as ReadonlyArray<string>).includes(v ?? '');

/** The container's mode: its label when that is a mode, else the global default. */
export function updateModeOf(labels: Readonly<Record<string, string>>, fallback: UpdateMode): UpdateMode {
  const v = labels[CONTAINER_LABELS.update]?.trim();
  return isUpdateMode(v) ? v : fallback;
}

/**
 * Why an update may not start on this container now, or undefined when it may. Automatic triggers (a
 * schedule, an alert) need `apply`; an operator's request also goes to a `notify` container (that is
 * what notify is for: told, the human decides); `off` is never. A container with an open incident is
 * being healed: an update waits until it is over.
 */
export function updateRefusal(
  c: Pick<ContainerView, 'labels'>,
  r: Pick<ContainerRecord, 'incidentId' | 'givenUp'> | undefined,
  o: { readonly automatic: boolean; readonly fallback: UpdateMode },
): string | undefined {
  const mode = updateModeOf(c.labels, o.fallback);
  const source =
    c.labels[CONTAINER_LABELS.update] === undefined
      ? `AUTOPATCH=${mode}`
      : `${CONTAINER_LABELS.update}=${mode}`;
  if (mode === 'off') return `${source}: image updates are not opted in`;
  if (mode === 'notify' && o.automatic) return `${source}: updates are listed, applied only by an operator`;
  if (r?.givenUp) return 'given up: an update waits for its recovery or a reset';
  if (r?.incidentId !== undefined) return 'it has an open incident: an update waits until it is over';
  return undefined;
}

/** One container of a check run, as the check found it. */
export interface CheckedContainer {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly status: 'up_to_date' | 'available' | 'unknown';
  /** The available image is one an update of this container was rolled back from. */
  readonly rejected?: boolean | undefined;
}

export interface UpdatePlan {
  /** One target per update to request: a container, or a Compose service with all its replicas. */
  readonly apply: ReadonlyArray<TargetSelector>;
  /** Available updates of notify containers: listed to the humans, nothing touched. */
  readonly notify: ReadonlyArray<string>;
  /** Available updates the run leaves alone: off, or an image already rolled back once. */
  readonly left: ReadonlyArray<string>;
}

const serviceKey = (labels: Readonly<Record<string, string>>): string | undefined => {
  const project = labels[CONTAINER_LABELS.composeProject];
  const service = labels[CONTAINER_LABELS.composeService];
  return project && service ? `${project}/${service}` : undefined;
};

/**
 * What a check run does with what it found. The replicas of one Compose service are one target (the
 * engine takes them one at a time), so a broken image stops at the first replica. An image that was
 * rolled back once is not applied again by a run (an operator may still update by hand); for a
 * service, one replica that rolled it back holds the whole service.
 */
export function planUpdates(found: ReadonlyArray<CheckedContainer>, fallback: UpdateMode): UpdatePlan {
  const apply: TargetSelector[] = [];
  const services = new Set<string>();
  const notify: string[] = [];
  const left: string[] = [];
  const rejectedServices = new Set(
    found
      .filter((c) => c.rejected)
      .map((c) => serviceKey(c.labels))
      .filter((k) => k !== undefined),
  );
  for (const c of found) {
    if (c.status !== 'available') continue;
    const mode = updateModeOf(c.labels, fallback);
    if (mode === 'notify') notify.push(c.name);
    if (mode !== 'apply') {
      if (mode === 'off') left.push(c.name);
      continue;
    }
    const key = serviceKey(c.labels);
    if (c.rejected || (key !== undefined && rejectedServices.has(key))) {
      left.push(c.name);
      continue;
    }
    const project = c.labels[CONTAINER_LABELS.composeProject];
    const service = c.labels[CONTAINER_LABELS.composeService];
    if (key !== undefined && project && service) {
      if (services.has(key)) continue;
      services.add(key);
      apply.push({ kind: 'service', project, service });
    } else apply.push({ kind: 'container', name: c.name });
  }
  return { apply, notify, left };
}
