// restart: one engine call that stops (honouring the stop timeout) and starts the container.
import { type ActionHandler, wrongKind } from './handler.js';

export const restartAction: ActionHandler = {
  name: 'restart',
  targets: ['container'],
  async run(ctx, target) {
    if (target.kind !== 'container') return wrongKind('restart', target);
    const { container, stopTimeoutSec } = target;
    const startedAt = ctx.now();
    const outcome = await ctx.docker.restart(container.id, stopTimeoutSec);
    if (outcome === 'gone') return { ok: false, detail: 'container no longer exists' };
    return { ok: true, detail: `restarted (stop timeout ${stopTimeoutSec}s)`, startedAfter: startedAt };
  },
};
