// Liveness and readiness. /healthz says the process is alive; /readyz says the Docker engine answers.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { explainEngineError } from '../src/startup.js';

const Ready = Type.Object({ status: Type.String(), reason: Type.Optional(Type.String()) });

const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/healthz',
    { schema: { response: { 200: Type.Object({ status: Type.Literal('ok') }) } } },
    async () => ({ status: 'ok' as const }),
  );

  app.get('/readyz', { schema: { response: { 200: Ready, 503: Ready } } }, async (_req, reply) => {
    try {
      await app.deps.docker.ping();
      return { status: 'ready' };
    } catch (err) {
      const why = explainEngineError(app.config.dockerHost, (err as Error).message);
      const reason = `docker engine unreachable at ${app.config.dockerHost}: ${why}`;
      return reply.code(503).send({ status: 'not_ready', reason });
    }
  });
};
export default healthRoutes;
