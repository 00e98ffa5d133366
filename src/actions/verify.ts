// Proof that a remediation worked: the container is healthy again (or, without a health check, has
// been running for a grace period) within a deadline.
import { setTimeout as sleep } from 'node:timers/promises';
import type { DockerClient } from '../docker/client.js';

export type VerifyResult = 'succeeded' | 'failed' | 'timed_out';

export interface Verification {
  readonly result: VerifyResult;
  readonly detail: string;
  readonly lastHealthOutput?: string | undefined;
}

export interface VerifyOptions {
  readonly timeoutMs: number;
  readonly graceMs: number;
  readonly pollMs?: number;
  readonly now: () => number;
}

export async function verifyRecovery(
  docker: DockerClient,
  id: string,
  o: VerifyOptions,
): Promise<Verification> {
  const deadline = o.now() + o.timeoutMs;
  const poll = o.pollMs ?? 200;
  let last: string | undefined;
  for (;;) {
    const c = await docker.inspect(id);
    if (!c) return { result: 'failed', detail: 'container no longer exists' };
    last = c.lastHealthOutput ?? last;
    if (!c.running && c.state !== 'restarting') {
      return {
        result: 'failed',
        detail: `not running (${c.state}, exit code ${c.exitCode})`,
        lastHealthOutput: last,
      };
    }
    if (c.running && c.hasHealthCheck) {
      if (c.health === 'healthy') return { result: 'succeeded', detail: 'healthy' };
      if (c.health === 'unhealthy') {
        return { result: 'failed', detail: 'health check still failing', lastHealthOutput: last };
      }
    } else if (c.running && c.startedAt !== undefined && o.now() - c.startedAt >= o.graceMs) {
      return { result: 'succeeded', detail: `running for ${Math.round((o.now() - c.startedAt) / 1000)}s` };
    }
    if (o.now() >= deadline) {
      return {
        result: 'timed_out',
        detail: `not healthy after ${Math.round(o.timeoutMs / 1000)}s (health: ${c.health})`,
        lastHealthOutput: last,
      };
    }
    await sleep(poll);
  }
}

/** What an action hands verification: the container it replaced the given one with, and its settle. */
export interface Settleable {
  readonly detail: string;
  readonly verifyId?: string | undefined;
  readonly settle?: ((verified: boolean) => Promise<string>) | undefined;
}

/**
 * Verifies what an action did (the container it hands over, else the one it was given) and lets the
 * action keep or undo its work on the verdict. The detail reads "action's; verification's; settle's".
 */
export async function verifyAndSettle(
  docker: DockerClient,
  done: Settleable,
  givenId: string,
  o: VerifyOptions,
): Promise<Verification> {
  const v = await verifyRecovery(docker, done.verifyId ?? givenId, o);
  const detail = `${done.detail}; ${v.detail}`;
  if (!done.settle) return { ...v, detail };
  return { ...v, detail: `${detail}; ${await done.settle(v.result === 'succeeded')}` };
}

/** Swarm's update states in which it has stopped the update (paused it, or is rolling it back). */
const HALTED = new Set(['paused', 'rollback_started', 'rollback_paused', 'rollback_completed']);
const TASK_FAILED = new Set(['failed', 'rejected']);

/**
 * Proof that a Swarm service action worked: every task Swarm wants running runs the service's spec as
 * it is now (its image and its ForceUpdate), as many as the service asks for, and healthy where the
 * spec has a health check (a task on another node, which this engine cannot inspect, counts when it
 * runs). An update Swarm paused or rolled back by itself fails at once, with its message. The failed
 * tasks' errors since `after` are the evidence a human gets.
 */
export async function verifyService(
  docker: DockerClient,
  serviceId: string,
  o: VerifyOptions & { readonly after: number; readonly rollback?: boolean },
): Promise<Verification> {
  const deadline = o.now() + o.timeoutMs;
  const poll = o.pollMs ?? 250;
  for (;;) {
    const svc = (await docker.listServices()).find((s) => s.id === serviceId);
    if (!svc) return { result: 'failed', detail: 'the service no longer exists' };
    const tasks = await docker.listTasks(serviceId);
    const errors = tasks
      .filter((t) => TASK_FAILED.has(t.state) && t.at >= o.after)
      .map((t) => `task ${t.slot ?? t.id.slice(0, 12)} ${t.state}: ${t.error ?? t.message}`);
    const evidence = errors.length ? errors.slice(0, 5).join('\n') : undefined;
    // UpdateStatus describes the last update: one that started before this action is not its verdict.
    const ours = svc.updateStartedAt !== undefined && svc.updateStartedAt >= o.after - 1000;
    const state = ours ? svc.updateState : undefined;
    const ownRollback = o.rollback === true && state === 'rollback_completed';
    if (state && HALTED.has(state) && !ownRollback && !(o.rollback && state === 'rollback_started')) {
      return {
        result: 'failed',
        detail: `Swarm ${state.replace('_', ' ')} the update: ${svc.updateMessage ?? 'no message'}`,
        lastHealthOutput: evidence,
      };
    }
    const wanted = tasks.filter((t) => t.desiredState === 'running');
    const current = wanted.filter((t) => t.image === svc.image && t.forceUpdate === svc.forceUpdate);
    const running = current.filter((t) => t.state === 'running');
    const want = svc.replicas ?? Math.max(1, wanted.length);
    let healthy = running.length >= want && running.length === wanted.length;
    let health = '';
    if (healthy && svc.hasHealthCheck) {
      for (const t of running) {
        const c = t.containerId ? await docker.inspect(t.containerId) : undefined;
        if (c && c.health !== 'healthy') healthy = false;
      }
      health = ', healthy';
    }
    const updating = state === 'updating' || (o.rollback === true && state === 'rollback_started');
    if (healthy && !updating) {
      return {
        result: 'succeeded',
        detail: `${running.length} of ${want} tasks running${health} at the new spec`,
      };
    }
    if (o.now() >= deadline) {
      return {
        result: 'timed_out',
        detail: `${running.length} of ${want} tasks running at the new spec after ${Math.round(o.timeoutMs / 1000)}s${errors.length ? `; ${errors.length} failed` : ''}`,
        lastHealthOutput: evidence,
      };
    }
    await sleep(poll);
  }
}
