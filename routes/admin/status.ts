// The service at a glance, for the status page and the CLI: version, the engine connection, the
// circuit breaker, the notifier's outbox and the open incidents. Reads only.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { circuitIsOpen } from '../../src/core/policy.js';
import { VERSION } from '../../src/version.js';
import { SECURITY, TAGS } from '../../src/http/admin-schemas.js';
import { API, errors, iso } from './shared.js';

const Iso = (description: string) => Type.String({ format: 'date-time', description });

export const ServiceStatus = Type.Object({
  version: Type.String(),
  dryRun: Type.Boolean({ description: 'DRY_RUN: decisions are made and logged, nothing is touched' }),
  scope: Type.String({ description: 'WATCH_SCOPE' }),
  engine: Type.Object({
    reachable: Type.Boolean({ description: 'The Docker engine answered a ping just now' }),
    eventsFollowed: Type.Boolean({ description: "The health watcher follows the engine's event stream" }),
    detail: Type.Optional(Type.String()),
  }),
  circuit: Type.Object({
    open: Type.Boolean({ description: 'Automatic actions are held host-wide' }),
    openUntil: Type.Union([Iso('Held until'), Type.Null()]),
    recentActions: Type.Integer({ description: 'Automatic actions in the current window' }),
    maxActions: Type.Integer({ description: 'CIRCUIT_MAX_ACTIONS' }),
    windowSeconds: Type.Integer({ description: 'CIRCUIT_WINDOW' }),
  }),
  outbox: Type.Object({
    pending: Type.Integer({ description: 'Messages and escalations waiting to be delivered' }),
    failed: Type.Integer({ description: 'Deliveries given up since the service started' }),
  }),
  incidentsOpen: Type.Integer(),
  now: Iso('The time on the service'),
});

const statusRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { docker, store, clock, metrics } = app.deps;
  const { policy } = app.config;

  app.get(
    `${API}/status`,
    {
      schema: {
        tags: TAGS,
        security: SECURITY,
        summary: 'Version, engine connection, circuit breaker, notification outbox, open incidents',
        response: { 200: ServiceStatus, ...errors },
      },
    },
    async () => {
      let reachable = true;
      let detail: string | undefined;
      try {
        await docker.ping();
      } catch (err) {
        reachable = false;
        detail = `docker engine unreachable at ${app.config.dockerHost}: ${(err as Error).message}`;
      }
      const connected = (await metrics.dockerConnected.get()).values.some((v) => v.value === 1);
      const failed = (await metrics.notifications.get()).values
        .filter((v) => v.labels.result === 'failed')
        .reduce((n, v) => n + v.value, 0);
      const now = clock.now();
      const circuit = store.circuit();
      const open = circuitIsOpen(circuit, now);
      return {
        version: VERSION,
        dryRun: app.config.dryRun,
        scope: app.config.scope,
        engine: { reachable, eventsFollowed: connected, detail },
        circuit: {
          open,
          openUntil: open && circuit.openUntil !== undefined ? iso(circuit.openUntil) : null,
          recentActions: circuit.actionTimes.filter((t) => t > now - policy.circuitWindowMs).length,
          maxActions: policy.circuitMaxActions,
          windowSeconds: Math.round(policy.circuitWindowMs / 1000),
        },
        outbox: { pending: app.deps.outboxDepth?.() ?? 0, failed },
        incidentsOpen: store.openIncidentCount(),
        now: iso(now),
      };
    },
  );
};
export default statusRoutes;
