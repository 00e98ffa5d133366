// Scaling decisions (auto_scaler), pure: a service's replica limits, the plan of one scale step, and the
// ledger that brings a service back down calmly once the alerts that scaled it up have resolved.
//   limits:  autoheal.scale.min / autoheal.scale.max on the service, else SCALE_MIN / SCALE_MAX
//   plan:    from the current replicas and the step; an operator's request outside the limits is refused,
//            an alert's step is cut to what the limits leave (a partial step beats none under load)
//   ledger:  per service, the replicas it had before an alert first scaled it up (its baseline), the
//            scale-up alerts still firing, and since when none has been; one step down per window
import { CONTAINER_LABELS } from './labels.js';
import { isAside } from './names.js';
import { composeRecordName } from './targets.js';

export type ScaleDirection = 'up' | 'down';

export interface ScaleLimits {
  readonly min: number;
  readonly max: number;
  /** Where each bound comes from, for the reason of a refusal ("autoheal.scale.max=3", "SCALE_MAX=5"). */
  readonly minFrom: string;
  readonly maxFrom: string;
}

export interface ScaleDefaults {
  readonly min: number;
  readonly max: number;
}

/** SCALE_MIN and SCALE_MAX unset. */
export const DEFAULT_SCALE: ScaleDefaults = { min: 1, max: 5 };

/** The largest step one request may ask for. */
export const MAX_STEP = 100;

const count = (v: string | undefined): number | undefined => {
  if (v === undefined || !/^[0-9]{1,4}$/.test(v.trim())) return undefined;
  return Number(v.trim());
};

/**
 * A service's limits: its labels where they are whole numbers, else the defaults. A min above the max
 * (a typo on one of them) is read as both being the max: the service is never scaled past either.
 */
export function scaleLimits(labels: Readonly<Record<string, string>>, d: ScaleDefaults): ScaleLimits {
  const minLabel = count(labels[CONTAINER_LABELS.scaleMin]);
  const maxLabel = count(labels[CONTAINER_LABELS.scaleMax]);
  const max = maxLabel ?? d.max;
  const maxFrom = maxLabel !== undefined ? `${CONTAINER_LABELS.scaleMax}=${maxLabel}` : `SCALE_MAX=${d.max}`;
  const rawMin = minLabel ?? d.min;
  const minFrom = minLabel !== undefined ? `${CONTAINER_LABELS.scaleMin}=${minLabel}` : `SCALE_MIN=${d.min}`;
  return rawMin > max ? { min: max, max, minFrom: maxFrom, maxFrom } : { min: rawMin, max, minFrom, maxFrom };
}

/** A step as an alert label, a rule's params or a request gives it: a whole number 1..MAX_STEP. */
export function parseStep(v: string | undefined): { ok: true; step: number } | { ok: false; detail: string } {
  if (v === undefined || v === '') return { ok: true, step: 1 };
  const n = /^\+?-?[0-9]{1,6}$/.test(v.trim()) ? Math.abs(Number(v.trim())) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_STEP)
    return {
      ok: false,
      detail: `step must be a whole number from 1 to ${MAX_STEP} (got ${JSON.stringify(v)})`,
    };
  return { ok: true, step: n };
}

export type ScalePlan =
  | { readonly ok: true; readonly from: number; readonly to: number; readonly detail: string }
  | { readonly ok: false; readonly detail: string };

export interface PlanInput {
  readonly direction: ScaleDirection;
  readonly current: number;
  readonly step: number;
  readonly limits: ScaleLimits;
  /** An alert or the scale-down of the ledger: a step the limits cut short is cut, not refused. */
  readonly automatic: boolean;
  /** A scale-down of the ledger never goes below the replicas the service had before it scaled up. */
  readonly floor?: number | undefined;
}

/** The replicas one scale step goes to, or why it does not run. */
export function planScale(i: PlanInput): ScalePlan {
  const { current, step, limits } = i;
  if (i.direction === 'up') {
    if (current >= limits.max)
      return { ok: false, detail: `${current} replicas, at its maximum (${limits.maxFrom})` };
    const wanted = current + step;
    if (wanted > limits.max && !i.automatic)
      return {
        ok: false,
        detail: `+${step} would make ${wanted} replicas, above its maximum (${limits.maxFrom}): at most +${limits.max - current}`,
      };
    const to = Math.min(wanted, limits.max);
    return {
      ok: true,
      from: current,
      to,
      detail: `${current} → ${to}${to < wanted ? ` (${limits.maxFrom})` : ''}`,
    };
  }
  const floor = Math.max(limits.min, i.floor ?? 0);
  const floorFrom =
    i.floor !== undefined && i.floor > limits.min ? `its ${i.floor} before it scaled up` : limits.minFrom;
  if (current <= floor) return { ok: false, detail: `${current} replicas, at its minimum (${floorFrom})` };
  const wanted = current - step;
  if (wanted < floor && !i.automatic)
    return {
      ok: false,
      detail: `-${step} would leave ${wanted} replicas, below its minimum (${floorFrom}): at most -${current - floor}`,
    };
  const to = Math.max(wanted, floor);
  return { ok: true, from: current, to, detail: `${current} → ${to}${to > wanted ? ` (${floorFrom})` : ''}` };
}

/**
 * The plan of one step as an action's parameters ask for it (`step`, and the ledger's `floor`), on a
 * service with these labels: why not (a bad step, or the limits), or from and to. The policy's bounds
 * hook and the action itself both plan through it.
 */
export function planStep(i: {
  readonly direction: ScaleDirection;
  readonly current: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly params: Readonly<Record<string, string>>;
  readonly defaults: ScaleDefaults;
  readonly automatic: boolean;
}): ScalePlan | { readonly ok: false; readonly detail: string; readonly invalidStep: true } {
  const step = parseStep(i.params.step);
  if (!step.ok) return { ok: false, detail: step.detail, invalidStep: true };
  const floor = i.params.floor === undefined ? undefined : Number(i.params.floor);
  return planScale({
    direction: i.direction,
    current: i.current,
    step: step.step,
    limits: scaleLimits(i.labels, i.defaults),
    automatic: i.automatic,
    floor: Number.isInteger(floor) ? floor : undefined,
  });
}

/**
 * The replicas of each Compose service that sets a scale limit (autoheal.scale.min or max), by its
 * record name, from the containers watched now (one-off runs and replicas put aside not counted).
 */
export function scalableReplicas(
  containers: Iterable<{ readonly name: string; readonly labels: Readonly<Record<string, string>> }>,
): Map<string, number> {
  const { composeProject, composeService, composeOneoff, scaleMin, scaleMax } = CONTAINER_LABELS;
  const counts = new Map<string, number>();
  for (const c of containers) {
    const l = c.labels;
    const project = l[composeProject];
    const service = l[composeService];
    if (!project || !service || l[composeOneoff] === 'True' || isAside(c.name)) continue;
    if (l[scaleMin] === undefined && l[scaleMax] === undefined) continue;
    const key = composeRecordName(project, service);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

// The ledger -----------------------------------------------------------------------------------------

/** One service an alert scaled up, until it is back at its baseline. Keyed by its record name. */
export interface ScaleEntry {
  /** The record name of the service: service:PROJECT/NAME or swarm:NAME. */
  readonly key: string;
  /** The replicas it had before the first alert scaled it up: the scale-down stops there. */
  readonly baseline: number;
  /** The scale-up alerts still firing for it (fingerprint → when first seen). */
  readonly firing: Readonly<Record<string, number>>;
  /** When the last of them resolved: the stabilisation window runs from here (or from the last step). */
  readonly quietSince?: number | undefined;
  /** When it last stepped down. */
  readonly lastStepAt?: number | undefined;
}

export type ScaleLedger = Readonly<Record<string, ScaleEntry>>;

/** An alert scaled the service up from `from` replicas: it is remembered, with the alert as firing. */
export function scaledUp(
  l: ScaleLedger,
  key: string,
  fingerprint: string,
  from: number,
  now: number,
): ScaleLedger {
  const e = l[key];
  return {
    ...l,
    [key]: {
      key,
      baseline: e?.baseline ?? from,
      firing: { ...(e?.firing ?? {}), [fingerprint]: e?.firing[fingerprint] ?? now },
      quietSince: undefined,
      lastStepAt: e?.lastStepAt,
    },
  };
}

/**
 * A scale-up alert fired for a service the ledger holds (acted on or not: at its maximum, in its
 * cooldown): no step down while it fires. A service the ledger does not hold is not added.
 */
export function alertFiring(l: ScaleLedger, key: string, fingerprint: string, now: number): ScaleLedger {
  const e = l[key];
  if (!e) return l;
  return {
    ...l,
    [key]: {
      ...e,
      firing: { ...e.firing, [fingerprint]: e.firing[fingerprint] ?? now },
      quietSince: undefined,
    },
  };
}

/** An alert resolved: it no longer holds any service up; a service with none left firing is quiet from now. */
export function alertResolved(l: ScaleLedger, fingerprint: string, now: number): ScaleLedger {
  let next: Record<string, ScaleEntry> | undefined;
  for (const e of Object.values(l)) {
    if (!(fingerprint in e.firing)) continue;
    const { [fingerprint]: _gone, ...firing } = e.firing;
    next ??= { ...l };
    next[e.key] = { ...e, firing, quietSince: Object.keys(firing).length === 0 ? now : e.quietSince };
  }
  return next ?? l;
}

/** When the service may step down next, or undefined while an alert still holds it up. */
export function nextStepDownAt(e: ScaleEntry, windowMs: number): number | undefined {
  if (Object.keys(e.firing).length > 0 || e.quietSince === undefined) return undefined;
  return Math.max(e.quietSince, e.lastStepAt ?? 0) + windowMs;
}

/** The services due a step down now. */
export const dueStepDowns = (l: ScaleLedger, now: number, windowMs: number): ReadonlyArray<ScaleEntry> =>
  Object.values(l).filter((e) => {
    const at = nextStepDownAt(e, windowMs);
    return at !== undefined && at <= now;
  });

/** A step down was asked for: the next one waits a whole window again. */
export function steppedDown(l: ScaleLedger, key: string, now: number): ScaleLedger {
  const e = l[key];
  return e ? { ...l, [key]: { ...e, lastStepAt: now } } : l;
}

/** The service is back at its baseline (or gone): forgotten. */
export function settled(l: ScaleLedger, key: string): ScaleLedger {
  if (!(key in l)) return l;
  const { [key]: _gone, ...rest } = l;
  return rest;
}
