// The one policy every action obeys, as pure functions of (signal, container, state, config, now).
// Each "no" carries its reason; the engine logs and counts every decision under it.
import { type ActionCatalog, type ActionName, hostOnly, NO_ACTION } from './actions.js';
import { parseDuration } from './duration.js';
import { isAside } from './names.js';
import { CONTAINER_LABELS } from './labels.js';
import { DEFAULT_SCALE, type ScaleDefaults } from './scale.js';
import { checkScope, type ScopeContext } from './scope.js';
import type { ContainerRecord, ContainerView, Decision, Signal } from './types.js';

/** Attempt limits, cooldown/backoff and the circuit breaker (ms and counts). */
export interface PolicyConfig {
  readonly maxAttempts: number;
  readonly cooldownMs: number;
  readonly backoffMaxMs: number;
  readonly stablePeriodMs: number;
  readonly circuitMaxActions: number;
  readonly circuitWindowMs: number;
  readonly circuitCooldownMs: number;
}

export interface PolicyContext extends ScopeContext {
  readonly dryRun: boolean;
  readonly policy: PolicyConfig;
  readonly startPeriodMs: number;
  readonly nodeName: string | undefined;
  /** The actions the service has (its registry): a signal asking for another is unknown_action. */
  readonly actions: ActionCatalog;
  /** The replica limits of a service without autoheal.scale.min/max labels (SCALE_MIN, SCALE_MAX). */
  readonly scale?: ScaleDefaults | undefined;
}

export interface CircuitView {
  readonly actionTimes: ReadonlyArray<number>;
  readonly openUntil?: number | undefined;
}

export interface DecideInput {
  readonly signal: Signal;
  readonly action: ActionName;
  readonly container: ContainerView;
  readonly record: ContainerRecord | undefined;
  readonly circuit: CircuitView;
  /** An action on this container is running now. */
  readonly busy: boolean;
  readonly now: number;
  readonly ctx: PolicyContext;
}

const AUTOMATIC = new Set(['alertmanager', 'docker_event', 'reconcile', 'schedule']);
const WATCHER = new Set(['docker_event', 'reconcile']);

const skip = (reason: Extract<Decision, { verdict: 'skip' }>['reason'], detail?: string): Decision => ({
  verdict: 'skip',
  reason,
  detail,
});

/** A per-container label override of a number of seconds or a duration, in ms. */
function labelMs(c: ContainerView, key: string): number | undefined {
  const v = c.labels[key];
  return v === undefined ? undefined : parseDuration(v);
}

export function maxAttemptsFor(c: ContainerView, p: PolicyConfig): number {
  const v = Number(c.labels[CONTAINER_LABELS.maxAttempts]);
  return Number.isInteger(v) && v > 0 ? v : p.maxAttempts;
}

export function cooldownBaseFor(c: ContainerView | undefined, p: PolicyConfig): number {
  return (c && labelMs(c, CONTAINER_LABELS.cooldown)) ?? p.cooldownMs;
}

/** Cooldown after a remediation: the base, doubled for each consecutive failure, capped. */
export function cooldownAfter(failures: number, baseMs: number, maxMs: number): number {
  if (failures <= 0) return baseMs;
  return Math.min(baseMs * 2 ** (failures - 1), Math.max(maxMs, baseMs));
}

/**
 * Attempts count until the container is stable again (kubelet-style reset): healthy for the stable
 * period, or the stable period past its last verified recovery with no action since. The second rule
 * bounds a flapping container's hold: at most max attempts per stable period, then a fresh start.
 */
export function effectiveAttempts(r: ContainerRecord | undefined, now: number, p: PolicyConfig): number {
  if (!r) return 0;
  if (r.inFlight) return r.attempts;
  if (r.healthySince !== undefined && now - r.healthySince >= p.stablePeriodMs) return 0;
  if (r.lastResult === 'succeeded' && r.healedAt !== undefined && now - r.healedAt >= p.stablePeriodMs)
    return 0;
  return r.attempts;
}

/** Healthy as far as the engine says: running, and its health check passing (or it has none). */
export const isHealthyNow = (c: Pick<ContainerView, 'state' | 'health'>): boolean =>
  c.state === 'running' && (c.health === 'healthy' || c.health === 'none');

/** Results of an attempt that did not bring the container back ('interrupted': the service died during it). */
const FAILED_RESULTS = new Set(['failed', 'timed_out', 'interrupted']);

/**
 * Whether a container whose attempts are used up is given up: only one that is actually failing, i.e.
 * its last attempt did not verify and it is not healthy now. A healthy container, or one whose last
 * attempt healed it, is never given up (the skip is only a skip).
 */
export function shouldGiveUp(r: ContainerRecord | undefined, c: ContainerView): boolean {
  return Boolean(r && !r.givenUp && FAILED_RESULTS.has(r.lastResult ?? '') && !isHealthyNow(c));
}

/**
 * Whether a flapping skip should tell a human: the container is failing now and nobody was told since
 * its last verified recovery.
 */
export function shouldReportFlapping(r: ContainerRecord | undefined, c: ContainerView): boolean {
  if (!r || isHealthyNow(c)) return false;
  return r.flappingAt === undefined || r.flappingAt < (r.healedAt ?? 0);
}

export function allowedActions(c: ContainerView): ReadonlySet<string> | undefined {
  const v = c.labels[CONTAINER_LABELS.actions];
  if (v === undefined) return undefined;
  return new Set(
    v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

export function pausedUntil(c: ContainerView, r: ContainerRecord | undefined): number | undefined {
  const fromLabel = c.labels[CONTAINER_LABELS.pausedUntil];
  const labelTime = fromLabel ? Date.parse(fromLabel) : Number.NaN;
  const times = [r?.pausedUntil, Number.isNaN(labelTime) ? undefined : labelTime].filter(
    (t): t is number => t !== undefined,
  );
  return times.length ? Math.max(...times) : undefined;
}

export const circuitIsOpen = (c: CircuitView, now: number): boolean =>
  c.openUntil !== undefined && c.openUntil > now;

/** Records one automatic action in the breaker's window; says whether this action opens it. */
export function recordAction(
  c: CircuitView,
  now: number,
  p: PolicyConfig,
): { next: CircuitView; opened: boolean } {
  const actionTimes = [...c.actionTimes.filter((t) => now - t < p.circuitWindowMs), now];
  if (actionTimes.length > p.circuitMaxActions && !circuitIsOpen(c, now)) {
    return { next: { actionTimes: [], openUntil: now + p.circuitCooldownMs }, opened: true };
  }
  return { next: { actionTimes, openUntil: c.openUntil }, opened: false };
}

/**
 * Whether the service may act on this container at all, whatever the signal: in scope and not its own,
 * not protected, the action allowed by its autoheal.actions label, not paused. decide() starts here;
 * an action that touches several containers (restart_stack) asks it of each.
 */
export function mayTouch(
  c: ContainerView,
  action: ActionName,
  r: ContainerRecord | undefined,
  now: number,
  ctx: ScopeContext,
): Extract<Decision, { verdict: 'skip' }> | undefined {
  const scope = checkScope(c, ctx);
  if (!scope.ok) return { verdict: 'skip', reason: scope.reason, detail: scope.detail };
  // The old container of a recreate under verification: the recreate keeps it or puts it back.
  if (isAside(c.name)) return { verdict: 'skip', reason: 'in_progress', detail: 'put aside by a recreate' };
  if (c.labels[CONTAINER_LABELS.protect] === 'true')
    return { verdict: 'skip', reason: 'protected', detail: `${CONTAINER_LABELS.protect}=true` };
  const allowed = allowedActions(c);
  if (allowed && !allowed.has(action)) {
    return {
      verdict: 'skip',
      reason: 'action_not_allowed',
      detail: `${CONTAINER_LABELS.actions}=${[...allowed].join(',')}`,
    };
  }
  const paused = pausedUntil(c, r);
  if (paused !== undefined && paused > now)
    return { verdict: 'skip', reason: 'paused', detail: `paused until ${new Date(paused).toISOString()}` };
  return undefined;
}

/** The decision for one action on one container. */
export function decide(i: DecideInput): Decision {
  const { signal, action, container: c, record: r, now, ctx } = i;
  const automatic = AUTOMATIC.has(signal.source);

  const untouchable = mayTouch(c, action, r, now, ctx);
  if (untouchable) return untouchable;
  const spec = ctx.actions.get(action);
  const refused = spec?.consent?.(c, r, { automatic });
  if (refused !== undefined) return skip('not_opted_in', refused);
  const outside = spec?.bounds?.(c, { automatic, params: signal.params, scale: ctx.scale ?? DEFAULT_SCALE });
  if (outside) return skip(outside.reason, outside.detail);
  if (i.busy || r?.inFlight) return skip('in_progress', `${r?.inFlight?.action ?? 'an action'} is running`);

  if (automatic && r?.stoppedByOperator && c.state !== 'running') {
    return skip('stopped_by_operator', 'stopped on purpose; start it to resume healing');
  }
  // A retry after a failed remediation is moot once the container has recovered by itself.
  if (
    signal.condition === 'retry' &&
    c.state === 'running' &&
    (c.health === 'healthy' || c.health === 'none')
  ) {
    return skip('already_healthy', 'recovered before the retry');
  }
  if (WATCHER.has(signal.source)) {
    const startPeriod = labelMs(c, CONTAINER_LABELS.startPeriod) ?? ctx.startPeriodMs;
    if (c.state === 'running' && c.startedAt !== undefined && now - c.startedAt < startPeriod) {
      return skip('start_period', `started ${Math.round((now - c.startedAt) / 1000)}s ago`);
    }
    if (signal.condition === 'unhealthy' && c.health === 'healthy') return skip('already_healthy');
    if (signal.condition === 'exited' && c.state === 'running')
      return skip('already_healthy', 'running again');
  }

  if (signal.force)
    return {
      verdict: 'act',
      reason: ctx.dryRun || signal.dryRun ? 'dry_run' : 'forced',
      action,
      dryRun: Boolean(ctx.dryRun || signal.dryRun),
    };

  if (r?.givenUp) return skip('given_up', 'waiting for recovery or an operator reset');
  const max = maxAttemptsFor(c, ctx.policy);
  const attempts = effectiveAttempts(r, now, ctx.policy);
  if (attempts >= max) {
    // Healed each time, and failing again: flapping. Held until the stable period after the last
    // recovery gives it fresh attempts; it is not given up, since the last attempt did heal it.
    if (r?.lastResult === 'succeeded' && !isHealthyNow(c)) {
      const resumes =
        r.healedAt === undefined
          ? 'once it stays healthy'
          : `at ${new Date(r.healedAt + ctx.policy.stablePeriodMs).toISOString()}`;
      return skip(
        'flapping',
        `healed ${attempts} times within ${Math.round(ctx.policy.stablePeriodMs / 1000)}s and failing again; automatic healing resumes ${resumes}`,
      );
    }
    return skip('max_attempts', `${attempts} of ${max} attempts used`);
  }
  if (r?.nextAllowedAt !== undefined && r.nextAllowedAt > now && attempts > 0) {
    return skip('cooldown_active', `next action allowed in ${Math.ceil((r.nextAllowedAt - now) / 1000)}s`);
  }
  if (automatic && circuitIsOpen(i.circuit, now)) {
    return skip(
      'circuit_open',
      `automatic actions paused until ${new Date(i.circuit.openUntil ?? now).toISOString()}`,
    );
  }
  if (ctx.dryRun || signal.dryRun) return { verdict: 'act', reason: 'dry_run', action, dryRun: true };
  return { verdict: 'act', reason: 'ok', action, dryRun: false };
}

/**
 * Decisions about an action on a whole (the host: cleanup; a Compose project: restart_stack): the
 * breaker and dry run apply here, the container scope to each container it touches (mayTouch).
 */
export function decideHost(
  signal: Signal,
  circuit: CircuitView,
  busy: boolean,
  now: number,
  ctx: PolicyContext,
): Decision {
  if (busy) return skip('in_progress', `${signal.action ?? 'an action'} is running`);
  if (!signal.force && AUTOMATIC.has(signal.source) && circuitIsOpen(circuit, now)) {
    return skip(
      'circuit_open',
      `automatic actions paused until ${new Date(circuit.openUntil ?? now).toISOString()}`,
    );
  }
  const dryRun = Boolean(ctx.dryRun || signal.dryRun);
  return {
    verdict: 'act',
    reason: dryRun ? 'dry_run' : signal.force ? 'forced' : 'ok',
    // Only admitted signals get here, and admit() has checked the action is a known one.
    action: signal.action ?? NO_ACTION,
    dryRun,
  };
}

/** Checks that apply to a signal before any target is looked up. */
export function admit(
  signal: Signal,
  ctx: PolicyContext,
): { ok: true; action: ActionName } | { ok: false; decision: Decision } {
  if (signal.host && ctx.nodeName && signal.host !== ctx.nodeName) {
    return {
      ok: false,
      decision: skip('other_host', `alert is for host ${signal.host}, this is ${ctx.nodeName}`),
    };
  }
  if (signal.action === undefined)
    return { ok: false, decision: skip('no_action', 'no remediation label or rule') };
  if (signal.action === NO_ACTION) return { ok: false, decision: skip('no_action', 'remediation=none') };
  if (!ctx.actions.has(signal.action)) {
    return { ok: false, decision: skip('unknown_action', `unknown action "${signal.action}"`) };
  }
  if (signal.target.kind === 'none' && !hostOnly(ctx.actions, signal.action)) {
    return { ok: false, decision: skip('no_target', 'no container, container_name, name or service label') };
  }
  return { ok: true, action: signal.action };
}
