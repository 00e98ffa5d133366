// The OpenAPI document, generated from the route schemas, and a browsable UI at /docs (the document
// itself at /docs/json). Registered on the root instance before any route, because @fastify/swagger
// collects routes as they are added.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { VERSION } from '../src/version.js';

export const DOCS_PREFIX = '/docs';

type Root = FastifyInstance<Server, IncomingMessage, ServerResponse, Logger, TypeBoxTypeProvider>;

export async function registerApiDocs(app: Root): Promise<void> {
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'AutoHeal-Nexus',
        version: VERSION,
        description:
          'Self-healing for Docker hosts. The admin API (Bearer ADMIN_TOKEN) triggers and follows remediations, ' +
          'pauses and resets containers, lists incidents and sends messages; the webhook takes Alertmanager ' +
          'notifications (Bearer WEBHOOK_TOKEN).',
      },
      components: {
        securitySchemes: {
          adminToken: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' },
          webhookToken: { type: 'http', scheme: 'bearer', description: 'WEBHOOK_TOKEN' },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: DOCS_PREFIX });
}
