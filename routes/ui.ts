// The status page (/ui): its files, served from this process (no CDN: an operator may be offline),
// and its sessions. POST /ui/login takes the admin token once and answers with a session cookie
// (HttpOnly, SameSite=Strict, a random id, never the token); the page then calls the admin API like any
// client, with the cookie and its session's CSRF token (routes/admin/index.ts checks both). Every answer
// here carries a strict Content-Security-Policy: the page runs no inline script or style.
import { readFileSync } from 'node:fs';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { safeEqual } from '../src/http/auth.js';
import { clientKey } from '../src/http/app.js';
import {
  CSRF_HEADER,
  csrfMatches,
  LoginThrottle,
  parseCookies,
  SESSION_COOKIE,
  type Session,
  sessionCookie,
} from '../src/http/sessions.js';
import { ErrorBody } from '../src/http/admin-schemas.js';

export const UI = '/ui';

/** The page's files, by the name they are served under; read once (from src/ui/, or dist/src/ui/). */
const FILES: Record<string, { file: string; type: string }> = {
  'app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  'app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
  'icon.svg': { file: 'icon.svg', type: 'image/svg+xml' },
};
const DIR = new URL('../src/ui/', import.meta.url);
const load = (file: string) => readFileSync(new URL(file, DIR));

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "font-src 'none'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const SessionOut = Type.Object({
  csrfToken: Type.String({ description: `Send it in ${CSRF_HEADER} with every call that changes something` }),
  expiresAt: Type.String({ format: 'date-time' }),
});
const LoginBody = Type.Object(
  { token: Type.String({ minLength: 1, maxLength: 4096, description: 'ADMIN_TOKEN' }) },
  { additionalProperties: false },
);
const uiErrors = { 401: ErrorBody, 403: ErrorBody, 429: ErrorBody, 503: ErrorBody };

function hostnameOf(url: string): string | undefined {
  try {
    return new URL(url).hostname || undefined;
  } catch {
    return undefined;
  }
}

const uiRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { clock, log } = app.deps;
  const sessions = app.sessions;
  const throttle = new LoginThrottle();
  const html = load('index.html');
  const assets = new Map(
    Object.entries(FILES).map(([name, f]) => [name, { body: load(f.file), type: f.type }]),
  );

  // Encapsulated: these headers go on the page's answers only (the OpenAPI UI at /docs has its own).
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('content-security-policy', CSP);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cross-origin-opener-policy', 'same-origin');
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    return payload;
  });

  const sessionOf = (req: FastifyRequest): Session | undefined =>
    sessions.get(parseCookies(req.headers.cookie).get(SESSION_COOKIE), clock.now());
  const secure = (req: FastifyRequest) => req.protocol === 'https';
  const out = (s: Session) => ({ csrfToken: s.csrf, expiresAt: new Date(s.expiresAt).toISOString() });
  /**
   * A browser says where a request comes from: one from another site is refused before anything. The
   * host name is compared, not the scheme or port: behind a TLS proxy the page is https on 443 and
   * this service sees http on its own port. (A proxy that rewrites Host must send X-Forwarded-Host.)
   */
  const foreign = (req: FastifyRequest, reply: FastifyReply) => {
    const origin = req.headers.origin;
    if (origin === undefined) return false;
    const name = hostnameOf(origin);
    const forwarded = req.headers['x-forwarded-host'];
    const ours = [req.host, typeof forwarded === 'string' ? forwarded : undefined].map((h) =>
      h === undefined ? undefined : hostnameOf(`http://${h}`),
    );
    if (name !== undefined && ours.includes(name)) return false;
    reply.code(403).send({ error: 'forbidden', message: 'a request from another origin' });
    return true;
  };

  app.get('/', { schema: { hide: true } }, async (_req, reply) => reply.redirect(UI, 302));

  app.get(UI, { schema: { hide: true } }, async (_req, reply) =>
    reply.type('text/html; charset=utf-8').send(html),
  );

  app.get<{ Params: { file: string } }>(
    `${UI}/assets/:file`,
    { schema: { hide: true } },
    async (req, reply) => {
      const a = assets.get(req.params.file);
      if (!a) return reply.code(404).send({ error: 'not_found', message: 'no such file' });
      return reply.type(a.type).header('cache-control', 'no-cache').send(a.body);
    },
  );

  app.get(
    `${UI}/session`,
    { schema: { hide: true, response: { 200: SessionOut, ...uiErrors } } },
    async (req, reply) => {
      const s = sessionOf(req);
      if (!s) return reply.code(401).send({ error: 'unauthorized', message: 'not logged in' });
      return out(s);
    },
  );

  app.post(
    `${UI}/login`,
    { schema: { hide: true, body: LoginBody, response: { 200: SessionOut, ...uiErrors } } },
    async (req, reply) => {
      if (foreign(req, reply)) return reply;
      const token = app.config.adminToken;
      if (!token) {
        return reply.code(503).send({
          error: 'not_configured',
          message: 'the status page is disabled until ADMIN_TOKEN or ADMIN_TOKEN_FILE is set',
        });
      }
      const now = clock.now();
      const client = clientKey(req.socket.remoteAddress);
      const wait = throttle.retryAfterMs(client, now);
      if (wait > 0) {
        return reply
          .code(429)
          .header('retry-after', String(Math.ceil(wait / 1000)))
          .send({ error: 'too_many_requests', message: 'too many failed logins: wait and try again' });
      }
      if (!safeEqual(req.body.token, token)) {
        throttle.failed(client, now);
        // Never the token that was tried: only who tried.
        log.warn({ event: 'login_failed', client }, `status page: a login from ${client} with a wrong token`);
        return reply.code(401).send({ error: 'unauthorized', message: 'wrong token' });
      }
      // A login replaces the session this browser had.
      sessions.end(parseCookies(req.headers.cookie).get(SESSION_COOKIE));
      const s = sessions.create(now);
      log.info({ event: 'login', client }, `status page: a session started from ${client}`);
      reply.header('set-cookie', sessionCookie(s.id, (s.expiresAt - now) / 1000, secure(req)));
      return out(s);
    },
  );

  app.post(
    `${UI}/logout`,
    { schema: { hide: true, response: { 200: Type.Object({ ok: Type.Boolean() }), ...uiErrors } } },
    async (req, reply) => {
      if (foreign(req, reply)) return reply;
      const s = sessionOf(req);
      if (s && !csrfMatches(s, req.headers[CSRF_HEADER])) {
        return reply
          .code(403)
          .send({ error: 'csrf_failed', message: `logging out needs the session's ${CSRF_HEADER} header` });
      }
      if (s) sessions.end(s.id);
      reply.header('set-cookie', sessionCookie('', 0, secure(req)));
      return { ok: true };
    },
  );
};
export default uiRoutes;
