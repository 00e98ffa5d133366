// GET /api/v1/events: a server-sent event stream of changes to the durable state, so that the status
// page (or a CLI following a remediation) learns of a signal, a decision, an action or a verification
// as soon as it is journalled, without polling. Each `change` event names the collections written
// (containers, incidents, remediations, inbox, misc); the reader fetches what it shows again. Comment
// lines keep a quiet stream from being cut as an idle connection.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { VERSION } from '../../src/version.js';
import { SECURITY, TAGS } from '../../src/http/admin-schemas.js';
import { API } from './shared.js';

const eventRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { changes } = app.deps;
  // Well inside the idle-socket cut (src/http/app.ts: connectionTimeout).
  const heartbeatMs = Math.max(
    1_000,
    Math.min(15_000, Math.floor((app.config.http.requestTimeoutMs + app.config.dockerTimeoutMs) / 3)),
  );
  const open = new Set<() => void>();
  // app.close() waits for every connection: the streams end first.
  app.addHook('preClose', async () => {
    for (const end of [...open]) end();
  });

  app.get(
    `${API}/events`,
    {
      schema: {
        tags: TAGS,
        security: SECURITY,
        summary: 'Server-sent events: a `change` event naming the state written, as it is written',
        produces: ['text/event-stream'],
      },
    },
    async (req, reply) => {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        'x-accel-buffering': 'no',
      });
      const send = (event: string, data: unknown, id?: number) =>
        res.write(
          `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`,
        );
      res.write('retry: 2000\n\n');
      send('hello', { version: VERSION, live: changes !== undefined });
      const unsubscribe = changes?.subscribe((c) => send('change', c, c.seq));
      const beat = setInterval(() => res.write(': keep-alive\n\n'), heartbeatMs);
      beat.unref();
      const end = () => {
        if (!open.delete(end)) return;
        clearInterval(beat);
        unsubscribe?.();
        res.end();
      };
      open.add(end);
      req.raw.once('close', end);
      res.once('close', end);
    },
  );
};
export default eventRoutes;
