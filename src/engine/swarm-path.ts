// The Swarm path: an action on a Swarm service (restart: a force update; rollback), through the
// manager's API. The service is resolved from the manager's service listing, never from containers
// (its tasks' containers belong to Swarm). It then takes the container path's policy whole: the
// decision on the service's own labels (scope, protection, autoheal.actions, pause), the intent, the
// record under swarm:NAME (attempts, cooldown and back-off, give-up, escalation) and the audit; only the
// run and its verification (the tasks running the new spec: verifyService) are the service's own.
import { verifyService } from '../actions/verify.js';
import { swarmRecordName } from '../core/targets.js';
import type { ActionName, ContainerView, Decision, HealthStatus, Signal } from '../core/types.js';
import type { SwarmService, SwarmTask } from '../docker/client.js';
import type { EngineIo } from './deps.js';
import { isScaleAction, recordScaleStep, type ScaleStep, skippedStep } from './scale-path.js';
import type { ContainerPath, TargetRun } from './remediate.js';

/** Failed tasks this recent make the service unhealthy as the policy sees it. */
export const RECENT_TASK_FAILURE_MS = 120_000;

/**
 * The service as the policy sees a container: running, and unhealthy while a task Swarm wants running
 * is not running, or one failed recently.
 */
export function serviceView(s: SwarmService, tasks: ReadonlyArray<SwarmTask>, now: number): ContainerView {
  const wanted = tasks.filter((t) => t.desiredState === 'running');
  const down = wanted.some((t) => t.state !== 'running');
  const failed = tasks.some(
    (t) => (t.state === 'failed' || t.state === 'rejected') && now - t.at < RECENT_TASK_FAILURE_MS,
  );
  const health: HealthStatus = down || failed ? 'unhealthy' : 'healthy';
  return {
    id: s.id,
    name: swarmRecordName(s.name),
    labels: s.labels,
    state: 'running',
    health,
    replicas: s.replicas,
  };
}

function skipped(
  io: EngineIo,
  signal: Signal,
  decision: Extract<Decision, { verdict: 'skip' }>,
  key: string,
) {
  io.report.finishManual(signal, 'skipped', decision);
  io.report.audit(signal, decision, key);
  return { summary: `no automatic action (${decision.reason}: ${decision.detail ?? ''})` };
}

/** Resolves a Swarm service by name and runs the action on it under the one policy. */
export async function runSwarmAction(
  io: EngineIo,
  path: ContainerPath,
  signal: Signal,
  action: ActionName,
  service: string,
): Promise<{ summary: string }> {
  const { docker, config, clock } = io.deps;
  const key = swarmRecordName(service);
  const role = await docker.swarmRole();
  if (role !== 'manager') {
    const where = role === 'worker' ? 'a Swarm worker' : 'not part of a Swarm';
    return skipped(
      io,
      signal,
      {
        verdict: 'skip',
        reason: 'no_target',
        detail: `this engine is ${where}: Swarm services are acted on through a manager`,
      },
      key,
    );
  }
  const svc = (await docker.listServices()).find((s) => s.name === service);
  if (!svc) {
    const missing = {
      verdict: 'skip',
      reason: 'target_not_found',
      detail: `no Swarm service named "${service}"`,
    } as const;
    if (isScaleAction(action)) return skippedStep(io, signal, action, missing, key);
    return skipped(io, signal, missing, key);
  }
  const scale = isScaleAction(action);
  // A scale step is not a heal: the service's health is not its question (it is never given up for it).
  const seen = serviceView(svc, await docker.listTasks(svc.id), clock.now());
  const view: ContainerView = scale ? { ...seen, health: 'none' } : seen;
  let scaled: ScaleStep['scaled'];
  const how: TargetRun = {
    kind: 'swarm_service',
    async run(h, ctx) {
      const after = ctx.now();
      const out = await h.run(ctx, { kind: 'swarm_service', service: svc });
      if (!out.ok) return { result: 'failed', detail: out.detail };
      scaled = out.scaled;
      const v = await verifyService(docker, svc.id, {
        timeoutMs: config.verifyTimeoutMs,
        graceMs: config.verifyGraceMs,
        now: () => clock.now(),
        after,
        rollback: out.serviceSpec?.rollback,
      });
      // The action keeps or undoes its work on the verdict (a scale-up whose tasks failed: scaled back).
      const undo = out.settle ? await out.settle(v.result === 'succeeded') : '';
      const settledHow = undo ? `; ${undo}` : '';
      if (scaled && undo) {
        // Undone (or not): the replicas are what the manager says now.
        const now = (await docker.listServices()).find((s) => s.id === svc.id)?.replicas;
        scaled = { ...scaled, to: now ?? scaled.to };
      }
      return {
        result: v.result,
        detail: `${out.detail}; ${v.detail}${settledHow}`,
        lastHealthOutput: v.lastHealthOutput,
      };
    },
  };
  const done = await path.remediateContainer(signal, action, view, how);
  if (scale)
    recordScaleStep(io, signal, { key, action, decision: done.decision, result: done.result, scaled });
  return { summary: done.summary };
}
