// Prometheus exposition of the service's registry.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

const metricsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/metrics', async (_req, reply) => {
    const { registry } = app.deps.metrics;
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
};
export default metricsRoutes;
