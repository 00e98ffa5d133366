// restart: one engine call that stops (honouring the stop timeout) and starts the container.
import type { ContainerHandler } from './handler.js';

export const restartHandler: ContainerHandler = {
  action: 'restart',
  async run(ctx, container, stopTimeoutSec) {
    const startedAt = ctx.now();
    const outcome = await ctx.docker.restart(container.id, stopTimeoutSec);
    if (outcome === 'gone') return { ok: false, detail: 'container no longer exists' };
    return { ok: true, detail: `restarted (stop timeout ${stopTimeoutSec}s)`, startedAfter: startedAt };
  },
};
