// restart: for a container, one engine call that stops (honouring the stop timeout) and starts it, when
// a slot of MAX_PARALLEL is free; in a burst, when every slot is taken, the stop goes out at once (the
// signal costs nothing, and the engine waits the stop timeout) and only the start waits for a slot, so
// no container's stop signal waits behind other containers' stop timeouts. For a Swarm service, a force
// update (TaskTemplate.ForceUpdate incremented at the service's current version), which Swarm carries
// out task by task under the service's own update policy.
import {
  type ActionHandler,
  type ActionOutcome,
  type ActionTarget,
  withinBound,
  wrongKind,
} from './handler.js';
import { startIfStopped, stopThenStart } from './stop-start.js';

/** What a refused service update says: the target moved, vanished, or has nothing to go back to. */
export function serviceRefusal(name: string, outcome: string): ActionOutcome {
  const why: Record<string, string> = {
    gone: 'the service no longer exists',
    out_of_date: `${name} was updated by someone else meanwhile: nothing done, ask again`,
    no_previous_spec: `${name} has no previous spec to go back to`,
  };
  return { ok: false, detail: why[outcome] ?? outcome };
}

async function forceUpdate(
  ctx: Parameters<ActionHandler['run']>[0],
  target: Extract<ActionTarget, { kind: 'swarm_service' }>,
) {
  const s = target.service;
  const outcome = await ctx.docker.forceUpdate(s.id, s.version);
  if (outcome !== 'updated') return serviceRefusal(s.name, outcome);
  return {
    ok: true,
    detail: `force update of swarm:${s.name} (ForceUpdate ${s.forceUpdate} → ${s.forceUpdate + 1})`,
    startedAfter: ctx.now(),
    serviceSpec: { forceUpdate: s.forceUpdate + 1 },
  };
}

export const restartAction: ActionHandler = {
  name: 'restart',
  targets: ['container', 'swarm_service'],
  boundsItself: true,
  async run(ctx, target) {
    if (target.kind === 'swarm_service') return withinBound(ctx, () => forceUpdate(ctx, target));
    if (target.kind !== 'container') return wrongKind('restart', target);
    const { container, stopTimeoutSec } = target;
    const startedAt = ctx.now();
    if (!ctx.bound || ctx.bound.free()) {
      const outcome = await withinBound(ctx, () => ctx.docker.restart(container.id, stopTimeoutSec));
      if (outcome === 'gone') return { ok: false, detail: 'container no longer exists' };
      return { ok: true, detail: `restarted (stop timeout ${stopTimeoutSec}s)`, startedAfter: startedAt };
    }
    // Every slot is taken: stop now, start when a slot is free.
    return stopThenStart(
      ctx,
      container,
      stopTimeoutSec,
      () => `restarted (stop timeout ${stopTimeoutSec}s; stopped at once, started when MAX_PARALLEL allowed)`,
    );
  },
  resume: startIfStopped,
};
