// stop_start: stop (already stopped counts), kill when the stop itself hangs, then start. The stop goes
// out at once, whatever else runs: the engine sends the stop signal and waits the stop timeout, which
// costs the host nothing; only the start, the costly part, waits for a slot of MAX_PARALLEL.
import type { ContainerDetails } from '../docker/client.js';
import {
  type ActionContext,
  type ActionHandler,
  type ActionOutcome,
  type ResumeOutcome,
  withinBound,
  wrongKind,
} from './handler.js';

/** Stops the container with its stop timeout, killing it when the stop itself does not finish. */
export async function stopOrKill(
  ctx: ActionContext,
  container: ContainerDetails,
  stopTimeoutSec: number,
): Promise<'stopped' | 'already_stopped' | 'killed' | 'gone'> {
  try {
    return await ctx.docker.stop(container.id, stopTimeoutSec);
  } catch (err) {
    // The engine did not finish the stop in time: the container is stuck, so kill it.
    ctx.log.warn({ container: container.name, err }, 'stop did not finish; killing the container');
    const killed = await ctx.docker.kill(container.id);
    return killed === 'gone' ? 'gone' : 'killed';
  }
}

/**
 * After a crash of the service between the stop and the start: a container of that name still
 * stopped is started (the action finished, not begun again); one running is verified as it is.
 */
export async function startIfStopped(ctx: ActionContext, name: string): Promise<ResumeOutcome> {
  const c = await ctx.docker.inspect(name);
  if (!c || !['exited', 'created'].includes(c.state)) return { detail: 'found it as the engine left it' };
  const started = await withinBound(ctx, () => ctx.docker.start(c.id));
  return { detail: started === 'gone' ? 'gone before its start' : 'found it stopped, started it' };
}

/**
 * Stops the container at once (no slot needed), then starts it inside the bound. `describe` words
 * the success from what the stop and the start found.
 */
export async function stopThenStart(
  ctx: ActionContext,
  container: ContainerDetails,
  stopTimeoutSec: number,
  describe: (stopped: string, started: string) => string,
): Promise<ActionOutcome> {
  const startedAt = ctx.now();
  const stopped = await stopOrKill(ctx, container, stopTimeoutSec);
  if (stopped === 'gone') return { ok: false, detail: 'container no longer exists' };
  const started = await withinBound(ctx, () => ctx.docker.start(container.id));
  if (started === 'gone') return { ok: false, detail: 'container disappeared before start' };
  return { ok: true, detail: describe(stopped, started), startedAfter: startedAt };
}

export const stopStartAction: ActionHandler = {
  name: 'stop_start',
  targets: ['container'],
  boundsItself: true,
  async run(ctx, target) {
    if (target.kind !== 'container') return wrongKind('stop_start', target);
    return stopThenStart(
      ctx,
      target.container,
      target.stopTimeoutSec,
      (stopped, started) => `${stopped.replace('_', ' ')}, then ${started.replace('_', ' ')}`,
    );
  },
  resume: startIfStopped,
};
