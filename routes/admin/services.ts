// The services and stacks the healer watches, beside its containers: each Compose service in the watch
// scope (its replicas, its scale limits, and its own record as a whole: attempts, cooldown, pause, last
// scale step), each Compose project (its containers, and its last restart_stack), and on a Swarm
// manager each Swarm service in scope (replicas wanted and running, its record). One container listing
// per request, grouped by core/views.ts; the Swarm's services and tasks one call each. Reads only.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { DEFAULT_SCALE } from '../../src/core/scale.js';
import { checkScope, scopeListFilter } from '../../src/core/scope.js';
import { groupCompose, lastRemediation, standingOf, taskCounts } from '../../src/core/views.js';
import type { SwarmTask } from '../../src/docker/client.js';
import { serviceView } from '../../src/engine/swarm-path.js';
import {
  type ComposeProjectOut,
  SECURITY,
  ServiceList,
  type SwarmServiceOut,
  TAGS,
} from '../../src/http/admin-schemas.js';
import { API, adminHelpers, errors, iso, standingOut } from './shared.js';

const serviceRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { engine, store, docker, clock } = app.deps;
  const policy = app.config.policy;
  const { viaDocker } = adminHelpers(app);

  app.get(
    `${API}/services`,
    {
      schema: {
        tags: TAGS,
        security: SECURITY,
        summary:
          'Watched Compose services (replicas, scale limits, record), Compose projects (last restart_stack) and Swarm services',
        response: { 200: ServiceList, ...errors },
      },
    },
    async () => {
      const ctx = engine.policyContext;
      const [containers, role] = await viaDocker(() =>
        Promise.all([docker.listContainers({ all: true, labels: scopeListFilter(ctx) }), docker.swarmRole()]),
      );
      const now = clock.now();
      const grouped = groupCompose(containers, {
        scope: ctx,
        record: (name) => store.record(name),
        now,
        policy,
        scaleDefaults: ctx.scale ?? DEFAULT_SCALE,
      });
      const remediations = store.listRemediations();
      const stacks = grouped.projects.map((p): ComposeProjectOut => {
        const last = lastRemediation(remediations, `project:${p.project}`, 'restart_stack');
        return {
          project: p.project,
          containers: p.containers,
          services: [...p.services],
          lastRestart: last && {
            id: last.id,
            state: last.state,
            at: iso(last.createdAt),
            updatedAt: iso(last.updatedAt),
            detail: last.detail,
          },
        };
      });
      const swarm: SwarmServiceOut[] = [];
      if (role === 'manager') {
        const [services, tasks] = await viaDocker(() =>
          Promise.all([docker.listServices(), docker.listTasks()]),
        );
        const byService = new Map<string, SwarmTask[]>();
        for (const t of tasks) byService.set(t.serviceId, [...(byService.get(t.serviceId) ?? []), t]);
        for (const s of services) {
          const own = byService.get(s.id) ?? [];
          const view = serviceView(s, own, now);
          if (!checkScope(view, ctx).ok) continue;
          const counted = taskCounts(own);
          swarm.push({
            key: view.name,
            name: s.name,
            mode: s.replicas === undefined ? 'global' : 'replicated',
            replicas: { desired: s.replicas ?? null, running: counted.running, wanted: counted.wanted },
            health: view.health,
            image: s.image,
            updateState: s.updateState,
            ...standingOut(standingOf(view, store.record(view.name), now, policy)),
          });
        }
        swarm.sort((a, b) => a.name.localeCompare(b.name));
      }
      return {
        services: grouped.services.map((s) => ({
          key: s.key,
          project: s.project,
          service: s.service,
          replicas: s.replicas,
          scale: s.scale && {
            min: s.scale.min,
            max: s.scale.max,
            minFrom: s.scale.minFrom,
            maxFrom: s.scale.maxFrom,
          },
          containers: [...s.containers],
          ...standingOut(s.standing),
        })),
        stacks,
        swarm: { manager: role === 'manager', services: swarm },
      };
    },
  );
};
export default serviceRoutes;
