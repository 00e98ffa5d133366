// The Compose service path, and what every scale step leaves behind. A Compose service acted on as a
// whole (scale_up, scale_down) is resolved from one listing (a container of it names it too), then
// takes the container path's policy whole, as a Swarm service does: the decision on its replicas'
// labels (scope, protection, autoheal.actions, pause, and the scale limits: ActionSpec.bounds), the
// intent, the record under service:PROJECT/NAME (cooldown per service, attempts, escalation) and the
// audit. The action adds and verifies the replicas itself. After each step, the metrics and the scale
// ledger (core/scale.ts): which alerts hold a service up, and when it may step back down.
import { composeRecordName, describeTarget } from '../core/targets.js';
import { CONTAINER_LABELS } from '../core/labels.js';
import { isAside } from '../core/names.js';
import { alertFiring, type ScaleLedger, scaledUp, settled } from '../core/scale.js';
import type {
  ActionName,
  ContainerView,
  Decision,
  RemediationResult,
  Signal,
  TargetSelector,
} from '../core/types.js';
import { stopTimeoutOf } from '../actions/handler.js';
import { lookupTargets } from '../docker/client.js';
import { replicaNumber } from '../actions/scale.js';
import type { EngineIo } from './deps.js';
import type { ContainerPath, TargetRun } from './remediate.js';

/** What one step of a scale action came to, as the paths report it here. */
export interface ScaleStep {
  readonly key: string;
  readonly action: ActionName;
  readonly decision?: Decision | undefined;
  readonly result?: RemediationResult | undefined;
  readonly scaled?: { readonly from: number; readonly to: number } | undefined;
}

const DIRECTION: Readonly<Record<string, 'up' | 'down'>> = { scale_up: 'up', scale_down: 'down' };

/** Skips that say the service is not there (any more): the ledger forgets it. */
const GONE: ReadonlySet<string> = new Set(['target_not_found', 'no_target']);

/** A step's result as autoheal_scale_events_total counts it; undefined for a skip of another reason. */
function scaleResult(s: ScaleStep, refused: boolean): string | undefined {
  if (s.result !== undefined) return s.result === 'succeeded' ? 'succeeded' : 'failed';
  if (refused) return 'refused';
  return s.decision?.verdict === 'act' ? 'dry_run' : undefined;
}

/** True for an action the scale ledger and metrics follow. */
export const isScaleAction = (action: ActionName): boolean => action in DIRECTION;

/**
 * The metrics of a scale step, and the ledger's part of it: an alert that scaled a service up holds it
 * up until it resolves; a step down of the ledger's that reached the baseline (or was refused at its
 * limit) ends the service's entry. Never throws: a ledger that cannot be written is logged.
 */
export function recordScaleStep(io: EngineIo, signal: Signal, s: ScaleStep): void {
  const { deps } = io;
  const direction = DIRECTION[s.action];
  if (!direction) return;
  const refused =
    s.decision?.verdict === 'skip' &&
    (s.decision.reason === 'scale_limit' || s.decision.reason === 'invalid_step');
  const result = scaleResult(s, refused);
  if (result) deps.metrics.scaleEvents.inc({ direction, result });
  if (s.scaled) deps.metrics.replicas.set({ service: s.key }, s.scaled.to);
  const before = deps.store.scaleLedger();
  let next: ScaleLedger = before;
  const now = deps.clock.now();
  if (direction === 'up' && signal.source === 'alertmanager' && signal.fingerprint) {
    next =
      s.result === 'succeeded' && s.scaled
        ? scaledUp(before, s.key, signal.fingerprint, s.scaled.from, now)
        : alertFiring(before, s.key, signal.fingerprint, now);
  }
  const floor = signal.params.floor === undefined ? undefined : Number(signal.params.floor);
  if (direction === 'down' && floor !== undefined) {
    // The ledger's own step: back at the baseline, refused at a limit, or the service is gone.
    const gone = s.decision?.verdict === 'skip' && GONE.has(s.decision.reason);
    if ((s.result === 'succeeded' && s.scaled && s.scaled.to <= floor) || refused || gone)
      next = settled(before, s.key);
  }
  if (next === before) return;
  try {
    io.durably(() => deps.store.putScaleLedger(next));
  } catch (err) {
    deps.log.error({ err, event: 'scale_ledger', service: s.key }, 'cannot record the scale ledger');
  }
}

/** A scale step that found no service to act on: reported, and recorded like any other step. */
export function skippedStep(
  io: EngineIo,
  signal: Signal,
  action: ActionName,
  decision: Extract<Decision, { verdict: 'skip' }>,
  key: string,
) {
  io.report.finishManual(signal, 'skipped', decision);
  io.report.audit(signal, decision, key);
  recordScaleStep(io, signal, { key, action, decision });
  return { summary: `no automatic action (${decision.reason}: ${decision.detail ?? ''})` };
}

/**
 * The one Compose service a selector names: a service (of one project, or of the only project that has
 * it) or a container of one. Null with the skip when it names none, or services of several projects.
 */
async function composeServiceOf(
  io: EngineIo,
  t: TargetSelector,
): Promise<{ project: string; service: string } | Extract<Decision, { verdict: 'skip' }>> {
  const found = await lookupTargets(io.deps.docker, t);
  if (!found.ok) return { verdict: 'skip', reason: found.reason, detail: found.detail };
  const { composeProject, composeService } = CONTAINER_LABELS;
  const pairs = new Map<string, { project: string; service: string }>();
  for (const c of found.containers) {
    const project = c.labels[composeProject];
    const service = c.labels[composeService];
    if (project && service) pairs.set(`${project}/${service}`, { project, service });
  }
  const [first, ...more] = [...pairs.values()];
  if (!first)
    return {
      verdict: 'skip',
      reason: 'no_target',
      detail: `${describeTarget(t)} is not part of a Compose service`,
    };
  if (more.length)
    return {
      verdict: 'skip',
      reason: 'target_ambiguous',
      detail: `${describeTarget(t)} names services of several projects (${[...pairs.keys()].sort().join(', ')}): use service:PROJECT/NAME`,
    };
  return first;
}

/** Resolves the Compose service a signal names and runs a whole-service action on it under the one policy. */
export async function runComposeServiceAction(
  io: EngineIo,
  path: ContainerPath,
  signal: Signal,
  action: ActionName,
): Promise<{ summary: string }> {
  const { docker, config } = io.deps;
  const named = await composeServiceOf(io, signal.target);
  if ('verdict' in named) return skippedStep(io, signal, action, named, describeTarget(signal.target));
  const key = composeRecordName(named.project, named.service);
  const listed = await lookupTargets(docker, { kind: 'service', ...named });
  const replicas = (listed.ok ? listed.containers : []).filter((c) => !isAside(c.name));
  replicas.sort((a, b) => replicaNumber(a) - replicaNumber(b));
  const first = replicas[0];
  if (!first)
    return skippedStep(
      io,
      signal,
      action,
      { verdict: 'skip', reason: 'target_not_found', detail: `no container of ${key}` },
      key,
    );
  const view: ContainerView = {
    id: first.id,
    name: key,
    labels: first.labels,
    state: 'running',
    // The service's health is not the question a scale step asks: it is never given up for it.
    health: 'none',
    replicas: replicas.length,
  };
  let scaled: ScaleStep['scaled'];
  const how: TargetRun = {
    kind: 'compose_service',
    async run(h, ctx) {
      const inspected = [];
      for (const c of replicas) {
        const d = await docker.inspect(c.id);
        if (d) inspected.push(d);
      }
      const out = await h.run(ctx, {
        kind: 'compose_service',
        project: named.project,
        service: named.service,
        replicas: inspected,
        stopTimeoutSec: (c) => stopTimeoutOf(c, config.defaultStopTimeoutSec),
      });
      scaled = out.scaled;
      return { result: out.ok ? 'succeeded' : 'failed', detail: out.detail };
    },
  };
  const done = await path.remediateContainer(signal, action, view, how);
  recordScaleStep(io, signal, { key, action, decision: done.decision, result: done.result, scaled });
  return { summary: done.summary };
}
