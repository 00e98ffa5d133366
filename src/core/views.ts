// What the status page and the CLI show of the targets the service watches, as pure functions of one
// engine listing, the durable records and the clock: a record's standing (attempts, cooldown left,
// pause, last action) as the policy reads it, the watched Compose services and projects grouped from
// the containers, and the Swarm services with their tasks counted. No I/O: the routes list, these judge.
import { CONTAINER_LABELS } from './labels.js';
import { isAside } from './names.js';
import { effectiveAttempts, isHealthyNow, maxAttemptsFor, type PolicyConfig, pausedUntil } from './policy.js';
import { type ScaleDefaults, type ScaleLimits, scaleLimits } from './scale.js';
import { checkScope, type ScopeContext } from './scope.js';
import { composeRecordName } from './targets.js';
import type { ContainerRecord, ContainerView } from './types.js';

/** A record's standing as the policy reads it now. */
export interface Standing {
  readonly attempts: number;
  readonly maxAttempts: number;
  readonly cooldownRemainingSeconds: number;
  /** Healing held until then (the operator's pause or the autoheal.paused_until label); undefined: not held. */
  readonly pausedUntil: number | undefined;
  readonly givenUp: boolean;
  readonly inProgress: string | undefined;
  readonly lastAction: string | undefined;
  readonly lastActionAt: number | undefined;
  readonly lastResult: string | undefined;
  readonly incidentId: string | undefined;
}

/** The standing of a target (a container, or a service as a whole) whose labels are `view`'s. */
export function standingOf(
  view: ContainerView,
  r: ContainerRecord | undefined,
  now: number,
  policy: PolicyConfig,
): Standing {
  const attempts = effectiveAttempts(r, now, policy);
  const paused = pausedUntil(view, r);
  return {
    attempts,
    maxAttempts: maxAttemptsFor(view, policy),
    // The policy applies a cooldown only once an attempt has been made (see decide()).
    cooldownRemainingSeconds:
      attempts > 0 && r?.nextAllowedAt !== undefined && r.nextAllowedAt > now
        ? Math.ceil((r.nextAllowedAt - now) / 1000)
        : 0,
    pausedUntil: paused !== undefined && paused > now ? paused : undefined,
    givenUp: r?.givenUp ?? false,
    inProgress: r?.inFlight?.action,
    lastAction: r?.lastAction,
    lastActionAt: r?.lastActionAt,
    lastResult: r?.lastResult,
    incidentId: r?.incidentId,
  };
}

/** The replicas of a service, or the containers of a project: how many, how many running, how many healthy. */
export interface Counts {
  readonly total: number;
  readonly running: number;
  readonly healthy: number;
}

const count = (cs: ReadonlyArray<ContainerView>): Counts => ({
  total: cs.length,
  running: cs.filter((c) => c.state === 'running').length,
  // A container without a health check counts as healthy while it runs, as the policy reads it.
  healthy: cs.filter(isHealthyNow).length,
});

export interface ComposeServiceView {
  /** Its record's name: service:PROJECT/NAME. */
  readonly key: string;
  readonly project: string;
  readonly service: string;
  readonly replicas: Counts;
  /** Set when the service labels a limit (autoheal.scale.min or max); the other bound may be a default. */
  readonly scale: ScaleLimits | undefined;
  readonly containers: ReadonlyArray<string>;
  readonly standing: Standing;
}

export interface ComposeProjectView {
  readonly project: string;
  readonly containers: Counts;
  readonly services: ReadonlyArray<string>;
}

export interface ComposeGrouping {
  readonly services: ReadonlyArray<ComposeServiceView>;
  readonly projects: ReadonlyArray<ComposeProjectView>;
}

const byName =
  <T>(key: (t: T) => string) =>
  (a: T, b: T) =>
    key(a).localeCompare(key(b));

/**
 * The Compose services and projects among the containers in the watch scope: one-off runs
 * (`docker compose run`) and replicas put aside by a scale-down or an update are not theirs. A
 * service's labels are its first replica's (by name), as the scale path reads them.
 */
export function groupCompose(
  containers: ReadonlyArray<ContainerView>,
  o: {
    readonly scope: ScopeContext;
    readonly record: (name: string) => ContainerRecord | undefined;
    readonly now: number;
    readonly policy: PolicyConfig;
    readonly scaleDefaults: ScaleDefaults;
  },
): ComposeGrouping {
  const { composeProject, composeService, composeOneoff, scaleMin, scaleMax } = CONTAINER_LABELS;
  const services = new Map<string, { project: string; service: string; members: ContainerView[] }>();
  const projects = new Map<string, { members: ContainerView[]; services: Set<string> }>();
  for (const c of containers) {
    const project = c.labels[composeProject];
    const service = c.labels[composeService];
    if (!project || !service || c.labels[composeOneoff] === 'True' || isAside(c.name)) continue;
    if (!checkScope(c, o.scope).ok) continue;
    const key = composeRecordName(project, service);
    const s = services.get(key) ?? { project, service, members: [] };
    s.members.push(c);
    services.set(key, s);
    const p = projects.get(project) ?? { members: [], services: new Set<string>() };
    p.members.push(c);
    p.services.add(service);
    projects.set(project, p);
  }
  const serviceViews = [...services.entries()].map(([key, s]): ComposeServiceView => {
    const members = [...s.members].sort(byName((c) => c.name));
    const first = members[0] as ContainerView;
    const labelled = first.labels[scaleMin] !== undefined || first.labels[scaleMax] !== undefined;
    const asWhole: ContainerView = { ...first, name: key, replicas: members.length };
    return {
      key,
      project: s.project,
      service: s.service,
      replicas: count(members),
      scale: labelled ? scaleLimits(first.labels, o.scaleDefaults) : undefined,
      containers: members.map((c) => c.name),
      standing: standingOf(asWhole, o.record(key), o.now, o.policy),
    };
  });
  const projectViews = [...projects.entries()].map(
    ([project, p]): ComposeProjectView => ({
      project,
      containers: count(p.members),
      services: [...p.services].sort(),
    }),
  );
  return {
    services: serviceViews.sort(byName((s) => s.key)),
    projects: projectViews.sort(byName((p) => p.project)),
  };
}

/** A remediation as the store keeps it, as far as "the last one of these" needs. */
export interface RemediationLike {
  readonly id: string;
  readonly target: string;
  readonly action: string;
  readonly state: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly detail?: string | undefined;
}

/** The newest remediation of an action on a target (by when it was asked for), if any. */
export function lastRemediation<R extends RemediationLike>(
  all: Iterable<R>,
  target: string,
  action: string,
): R | undefined {
  let last: R | undefined;
  for (const r of all) {
    if (r.target !== target || r.action !== action) continue;
    if (!last || r.createdAt > last.createdAt) last = r;
  }
  return last;
}

/** A Swarm service's tasks counted: those Swarm wants running, and those running. */
export function taskCounts(tasks: ReadonlyArray<{ readonly state: string; readonly desiredState: string }>): {
  readonly wanted: number;
  readonly running: number;
} {
  const wanted = tasks.filter((t) => t.desiredState === 'running');
  return { wanted: wanted.length, running: wanted.filter((t) => t.state === 'running').length };
}
