// buildApp(config, deps): the HTTP face of the service as a Fastify instance. It never reads
// process.env and never listens; server.ts does both, and tests call inject() on what this returns.
import Fastify, { LogController } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { Clock } from './core/clock.js';
import type { CompiledRule } from './core/rules.js';
import type { DockerClient } from './docker/client.js';
import type { Engine } from './engine.js';
import type { Metrics } from './metrics.js';
import type { TextNotifier } from './notifiers/escalation.js';
import type { Store } from './state/store.js';
import healthRoutes from '../routes/health.js';
import metricsRoutes from '../routes/metrics.js';
import webhookRoutes from '../routes/webhook.js';
import adminRoutes from '../routes/admin.js';
import { registerApiDocs } from '../routes/admin-docs.js';

export interface Deps {
  readonly docker: DockerClient;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly clock: Clock;
  readonly store: Store;
  readonly engine: Engine;
  readonly rules?: ReadonlyArray<CompiledRule>;
  /** The humans' channel for free text; absent when no notifier is configured. */
  readonly notifier?: TextNotifier;
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    deps: Deps;
  }
}

export async function buildApp(config: Config, deps: Deps) {
  const app = Fastify({
    loggerInstance: deps.log,
    // Per-request lines would drown the audit trail; decisions and actions are logged instead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.webhookBodyLimit,
    trustProxy: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.decorate('config', config);
  app.decorate('deps', deps);

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    deps.metrics.httpDuration.observe(
      { route, method: req.method, code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    if (reply.statusCode >= 500) {
      req.log.warn({ route, method: req.method, code: reply.statusCode }, 'request failed');
    }
  });

  // One error handler: clients get a clear message for their own mistakes and little for ours.
  app.setErrorHandler(
    (err: Error & { statusCode?: number; code?: string; validation?: unknown }, req, reply) => {
      const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
      if (status >= 500) {
        req.log.error({ err, route: req.routeOptions.url }, 'unhandled error');
        return reply
          .code(status)
          .send({ error: 'internal_error', message: 'internal error; see the service log' });
      }
      return reply.code(status).send({ error: errorName(status, err.code), message: err.message });
    },
  );
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url}` }),
  );

  // Before every route: the OpenAPI document is generated from the routes registered after it.
  await registerApiDocs(app);
  await app.register(healthRoutes);
  await app.register(metricsRoutes);
  await app.register(webhookRoutes);
  await app.register(adminRoutes);
  return app;
}

export type App = Awaited<ReturnType<typeof buildApp>>;

function errorName(status: number, code: string | undefined): string {
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return 'payload_too_large';
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return 'unsupported_media_type';
  if (code?.startsWith('FST_ERR_CTP') || code === 'FST_ERR_VALIDATION') return 'bad_request';
  return status === 401 ? 'unauthorized' : status === 404 ? 'not_found' : 'bad_request';
}
