// buildApp(config, deps): the HTTP face of the service as a Fastify instance. It never reads
// process.env and never listens; server.ts does both, and tests call inject() on what this returns.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Update } from '@grammyjs/types';
import Fastify, { LogController } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Clock } from '../core/clock.js';
import type { CompiledRule } from '../core/rules.js';
import type { DockerClient } from '../docker/client.js';
import type { Engine } from '../engine/engine.js';
import type { Metrics } from '../metrics.js';
import type { TextNotifier } from '../notifiers/escalation.js';
import type { ChangeFeed } from '../state/change-feed.js';
import type { Store } from '../state/store.js';
import type { UpdateChecker } from '../inputs/updates.js';
import type { Forecaster } from '../inputs/forecasts.js';
import healthRoutes from '../../routes/health.js';
import metricsRoutes from '../../routes/metrics.js';
import webhookRoutes from '../../routes/webhook.js';
import adminRoutes from '../../routes/admin/index.js';
import telegramRoutes from '../../routes/telegram.js';
import { registerApiDocs } from '../../routes/admin-docs.js';
import uiRoutes from '../../routes/ui.js';
import { SessionStore } from './sessions.js';

export interface Deps {
  readonly docker: DockerClient;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly clock: Clock;
  readonly store: Store;
  readonly engine: Engine;
  readonly rules?: ReadonlyArray<CompiledRule>;
  /** Image update checks and runs (auto_patcher); absent in apps built without one. */
  readonly updates?: UpdateChecker;
  /** The humans' channel for free text; absent when no notifier is configured. */
  readonly notifier?: TextNotifier;
  /** Forecasts (PROMETHEUS_URL): GET /api/v1/forecasts; absent in apps built without one. */
  readonly forecasts?: Pick<Forecaster, 'enabled' | 'list'>;
  /** Telegram updates posted to /telegram/webhook (TELEGRAM_UPDATES=webhook); absent: no such route. */
  readonly telegram?: {
    readonly secret: string;
    receive(updates: ReadonlyArray<Update>): boolean;
  };
  /** Writes to the durable state, as they happen (the event stream of the status page). */
  readonly changes?: ChangeFeed;
  /** Messages waiting in the notifier's outbox (0 without a notifier). */
  readonly outboxDepth?: () => number;
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    deps: Deps;
    /** The status page's browser sessions (in memory). */
    sessions: SessionStore;
  }
}

export async function buildApp(config: Config, deps: Deps) {
  const limits = config.http;
  const app = Fastify({
    loggerInstance: deps.log,
    // Per-request lines would drown the audit trail; decisions and actions are logged instead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.webhookBodyLimit,
    // A client that sends slowly is cut off (408) instead of holding a file descriptor for good:
    // headers within HTTP_HEADERS_TIMEOUT, the whole request within HTTP_REQUEST_TIMEOUT. Node checks
    // these every connectionsCheckingInterval, so a cut comes at most that much later.
    requestTimeout: limits.requestTimeoutMs,
    http: {
      headersTimeout: limits.headersTimeoutMs,
      connectionsCheckingInterval: Math.min(1_000, limits.headersTimeoutMs),
    },
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // A socket silent this long is closed: longer than a whole request plus the slowest engine call a
    // handler waits for, so only a client that stopped reading or talking is hit.
    connectionTimeout: limits.requestTimeoutMs + config.dockerTimeoutMs,
    trustProxy: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.decorate('config', config);
  app.decorate('deps', deps);
  app.decorate('sessions', new SessionStore());
  limitConnections(app.server, limits, deps);

  // An answer sent before the body was read (a 401 from an onRequest hook, a 413) closes the
  // connection: otherwise Node would go on reading, and the client keeps the socket, until the body
  // ends or HTTP_REQUEST_TIMEOUT. Routes authenticate in onRequest, before the body is read.
  app.addHook('onSend', async (req, reply, payload) => {
    if (!req.raw.complete) reply.header('connection', 'close');
    return payload;
  });

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
  await app.register(telegramRoutes);
  await app.register(uiRoutes);
  return app;
}

export type App = Awaited<ReturnType<typeof buildApp>>;

/**
 * The address a connection limit counts: IPv4 as it is (an IPv4-mapped IPv6 address too), IPv6 by its
 * /64, which is what one client usually holds.
 */
export function clientKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const mapped = /^::ffff:([0-9.]+)$/i.exec(address);
  if (mapped) return mapped[1] as string;
  if (!address.includes(':')) return address;
  const bare = address.split('%')[0] as string;
  const [head = '', tail] = bare.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups =
    tail === undefined
      ? left
      : [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => (Number.parseInt(g, 16) || 0).toString(16))
    .join(':')}::/64`;
}

/**
 * Caps connections per client address and in total, so that no one client, and no crowd, can take the
 * file descriptors the Docker engine calls need. A connection over a cap is closed at once, before a
 * byte of it is read; refusals are logged at most once a minute, with a count.
 */
function limitConnections(server: Server, limits: Config['http'], deps: Pick<Deps, 'log' | 'clock'>): void {
  server.maxConnections = limits.maxConnections;
  const open = new Map<string, number>();
  let refused = 0;
  let lastWarnAt = Number.NEGATIVE_INFINITY;
  const warn = (why: string, client: string) => {
    refused++;
    const now = deps.clock.now();
    if (now - lastWarnAt < 60_000) return;
    lastWarnAt = now;
    deps.log.warn(
      { event: 'connection_refused', client, refused, reason: why },
      `HTTP connection from ${client} closed at once (${refused} since the last such line): ${why}; ` +
        'a slow or hostile client holds too many; raise the setting only if they are real clients',
    );
    refused = 0;
  };
  server.on('connection', (socket: Socket) => {
    const key = clientKey(socket.remoteAddress);
    const n = (open.get(key) ?? 0) + 1;
    if (n > limits.maxConnectionsPerClient) {
      socket.destroy();
      warn(
        `more than HTTP_MAX_CONNECTIONS_PER_CLIENT=${limits.maxConnectionsPerClient} from one address`,
        key,
      );
      return;
    }
    open.set(key, n);
    socket.once('close', () => {
      const left = (open.get(key) ?? 1) - 1;
      if (left > 0) open.set(key, left);
      else open.delete(key);
    });
  });
  // Node closes connections beyond maxConnections itself and says so with 'drop'.
  server.on('drop', (data?: { remoteAddress?: string }) =>
    warn(`more than HTTP_MAX_CONNECTIONS=${limits.maxConnections} in total`, clientKey(data?.remoteAddress)),
  );
}

function errorName(status: number, code: string | undefined): string {
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return 'payload_too_large';
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return 'unsupported_media_type';
  if (code?.startsWith('FST_ERR_CTP') || code === 'FST_ERR_VALIDATION') return 'bad_request';
  return status === 401 ? 'unauthorized' : status === 404 ? 'not_found' : 'bad_request';
}
