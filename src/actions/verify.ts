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
