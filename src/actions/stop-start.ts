// stop_start: stop (already stopped counts), kill when the stop itself hangs, then start.
import { type ActionHandler, wrongKind } from './handler.js';

export const stopStartAction: ActionHandler = {
  name: 'stop_start',
  targets: ['container'],
  async run(ctx, target) {
    if (target.kind !== 'container') return wrongKind('stop_start', target);
    const { container, stopTimeoutSec } = target;
    const startedAt = ctx.now();
    let stopped: string;
    try {
      stopped = await ctx.docker.stop(container.id, stopTimeoutSec);
    } catch (err) {
      // The engine did not finish the stop in time: the container is stuck, so kill it.
      ctx.log.warn({ container: container.name, err }, 'stop did not finish; killing the container');
      const killed = await ctx.docker.kill(container.id);
      if (killed === 'gone') return { ok: false, detail: 'container no longer exists' };
      stopped = 'killed';
    }
    if (stopped === 'gone') return { ok: false, detail: 'container no longer exists' };
    const started = await ctx.docker.start(container.id);
    if (started === 'gone') return { ok: false, detail: 'container disappeared before start' };
    return {
      ok: true,
      detail: `${stopped.replace('_', ' ')}, then ${started.replace('_', ' ')}`,
      startedAfter: startedAt,
    };
  },
};
