// rollback: a Swarm service back to the spec it had before its last update (the engine's own rollback,
// under the service's rollback policy). Verified like a restart: its tasks running what the spec names.
import { type ActionHandler, wrongKind } from './handler.js';
import { serviceRefusal } from './restart.js';

export const rollbackAction: ActionHandler = {
  name: 'rollback',
  targets: ['swarm_service'],
  async run(ctx, target) {
    if (target.kind !== 'swarm_service') return wrongKind('rollback', target);
    const s = target.service;
    if (!s.hasPreviousSpec) return serviceRefusal(s.name, 'no_previous_spec');
    const outcome = await ctx.docker.rollbackService(s.id, s.version);
    if (outcome !== 'updated') return serviceRefusal(s.name, outcome);
    return {
      ok: true,
      detail: `rollback of swarm:${s.name} to its previous spec`,
      startedAfter: ctx.now(),
      serviceSpec: { rollback: true },
    };
  },
};
