// The admin API: operators' controls over the healer, behind Bearer ADMIN_TOKEN (never the webhook
// token) or a status page session: its cookie, plus its CSRF header on every change
// (src/http/sessions.ts). This plugin guards its routes and maps their failures; the routes live one
// file per resource (remediations, containers, services, incidents, notify, updates, forecasts, status,
// events) and are registered inside it, so the hook and the error handler cover them and nothing else.
// Every error answers before anything changes.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { CSRF_HEADER, decideAccess } from '../../src/http/sessions.js';
import { StateWriteError } from '../../src/state/journal.js';
import containerRoutes from './containers.js';
import eventRoutes from './events.js';
import incidentRoutes from './incidents.js';
import notifyRoutes from './notify.js';
import remediationRoutes from './remediations.js';
import serviceRoutes from './services.js';
import statusRoutes from './status.js';
import updateRoutes from './updates.js';
import forecastRoutes from './forecasts.js';
import { AdminError } from './shared.js';

const adminRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // Encapsulated: this hook guards the admin routes only. It runs before the body is parsed.
  app.addHook('onRequest', async (req, reply) => {
    const auth = decideAccess(
      {
        method: req.method,
        authorization: req.headers.authorization,
        cookie: req.headers.cookie,
        csrf: req.headers[CSRF_HEADER],
      },
      { token: app.config.adminToken, sessions: app.sessions, now: app.deps.clock.now() },
    );
    if (!auth.ok) return reply.code(auth.status).send({ error: auth.error, message: auth.message });
  });

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof AdminError) {
      const { status, ...body } = err.failure;
      return reply.code(status).send(body);
    }
    if (err instanceof StateWriteError) {
      req.log.error({ err }, 'admin request: cannot write state');
      return reply.code(503).send({
        error: 'state_unavailable',
        message: 'cannot record the change; nothing was done, retry later',
      });
    }
    // Everything else (validation, 5xx) goes to the app's one error handler.
    throw err;
  });

  await app.register(remediationRoutes);
  await app.register(containerRoutes);
  await app.register(serviceRoutes);
  await app.register(incidentRoutes);
  await app.register(notifyRoutes);
  await app.register(updateRoutes);
  await app.register(forecastRoutes);
  await app.register(statusRoutes);
  await app.register(eventRoutes);
};
export default adminRoutes;
