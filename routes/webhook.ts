// POST /webhooks/alertmanager: authenticate, validate, durably accept, reply; remediation runs later.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { checkToken } from '../src/http/auth.js';
import { alertToSignal, WebhookPayloadSchema } from '../src/inputs/alertmanager.js';
import { StateWriteError } from '../src/state/journal.js';

const Accepted = Type.Object({
  status: Type.Literal('accepted'),
  accepted: Type.Integer(),
  duplicates: Type.Integer(),
});
const ErrorBody = Type.Object({ error: Type.String(), message: Type.String() });

const webhookRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { engine, metrics, clock } = app.deps;
  const rules = app.deps.rules ?? [];

  app.post(
    '/webhooks/alertmanager',
    {
      schema: {
        body: WebhookPayloadSchema,
        response: { 200: Accepted, 401: ErrorBody, 503: ErrorBody },
      },
      // Authenticate before the body is parsed: an anonymous caller costs nothing.
      onRequest: async (req, reply) => {
        const auth = checkToken(req.headers.authorization, app.config.webhookToken, 'WEBHOOK_TOKEN');
        if (!auth.ok) {
          metrics.webhookRequests.inc({ code: String(auth.status) });
          return reply.code(auth.status).send({ error: auth.error, message: auth.message });
        }
      },
      onError: async (_req, reply) => {
        metrics.webhookRequests.inc({ code: String(reply.statusCode) });
      },
    },
    async (req, reply) => {
      const now = clock.now();
      const signals = req.body.alerts.map((a) =>
        alertToSignal(a, req.body, rules, now, app.deps.engine.policyContext.actions),
      );
      try {
        const { accepted, duplicates } = engine.ingest(signals);
        for (const a of req.body.alerts) metrics.alertsReceived.inc({ status: a.status });
        metrics.webhookRequests.inc({ code: '200' });
        return { status: 'accepted' as const, accepted: accepted.length, duplicates };
      } catch (err) {
        if (!(err instanceof StateWriteError)) throw err;
        req.log.error({ err }, 'cannot record alerts; Alertmanager will retry');
        metrics.webhookRequests.inc({ code: '503' });
        return reply
          .code(503)
          .send({ error: 'state_unavailable', message: 'cannot record the alerts; retry later' });
      }
    },
  );
};
export default webhookRoutes;
