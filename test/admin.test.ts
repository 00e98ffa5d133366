// The admin API's contract through inject(): authentication, every kind of bad input (and that nothing
// changes on any of them), notify, and the OpenAPI document. Targets are looked up on the real engine.
import t from 'tap';
import { adminApp, adminAuth, RecordingTextNotifier, WEBHOOK_TOKEN } from './fixtures/admin-app.js';
import { createTestContainer } from './fixtures/docker.js';

const json = (body: string) => JSON.parse(body) as Record<string, unknown>;

t.test('authentication: missing, wrong and webhook tokens get 401 on every endpoint', async (t) => {
  const { app, store } = await adminApp(t);
  const endpoints: Array<[string, string, unknown?]> = [
    ['POST', '/api/v1/remediations', { target: 'x', action: 'restart' }],
    ['GET', '/api/v1/remediations/abc'],
    ['GET', '/api/v1/containers'],
    ['GET', '/api/v1/services'],
    ['GET', '/api/v1/incidents'],
    ['POST', '/api/v1/containers/x/pause', { for: '1h' }],
    ['DELETE', '/api/v1/containers/x/pause'],
    ['POST', '/api/v1/containers/x/reset', {}],
    ['POST', '/api/v1/notify', { text: 'hi' }],
  ];
  const headers: Array<[string, Record<string, string>]> = [
    ['no token', {}],
    ['wrong token', adminAuth('not-the-admin-token-at-all')],
    ['webhook token', adminAuth(WEBHOOK_TOKEN)],
    ['token without scheme', { authorization: 'test-admin-token-0123456789ab' }],
  ];
  for (const [method, url, payload] of endpoints) {
    for (const [what, h] of headers) {
      const res = await app.inject({
        method: method as 'GET',
        url,
        headers: h,
        ...(payload ? { payload: payload as object } : {}),
      });
      t.equal(res.statusCode, 401, `${method} ${url} with ${what}`);
      t.equal(json(res.body).error, 'unauthorized');
    }
  }
  t.same(store.listRemediations(), [], 'nothing was recorded');
});

t.test('without ADMIN_TOKEN the admin API is disabled and says which variable to set', async (t) => {
  const { app } = await adminApp(t, { env: { ADMIN_TOKEN: '' } });
  const res = await app.inject({ method: 'GET', url: '/api/v1/containers', headers: adminAuth() });
  t.equal(res.statusCode, 503);
  t.match(json(res.body).message, /ADMIN_TOKEN/);
});

t.test('bad input: clear 4xx answers, and nothing changes', async (t) => {
  const { app, store, audit, metric, engine } = await adminApp(t);
  const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' } });
  const post = (url: string, payload: object) =>
    app.inject({ method: 'POST', url, headers: adminAuth(), payload });

  const cases: Array<{
    what: string;
    res: () => Promise<{ statusCode: number; body: string }>;
    status: number;
    error?: string;
    message?: RegExp;
    check?: (b: Record<string, unknown>) => void;
  }> = [
    {
      what: 'unknown container',
      res: () => post('/api/v1/remediations', { target: 'no-such-container-xyz', action: 'restart' }),
      status: 404,
      error: 'target_not_found',
      message: /no-such-container-xyz/,
      check: (b) => t.equal(b.target, 'no-such-container-xyz'),
    },
    {
      what: 'unknown service',
      res: () => post('/api/v1/remediations', { target: 'service:shop/no-such-svc', action: 'restart' }),
      status: 404,
      error: 'target_not_found',
      message: /service:shop\/no-such-svc/,
    },
    {
      what: 'unknown action',
      res: () => post('/api/v1/remediations', { target: c.name, action: 'reboot' }),
      status: 400,
      error: 'unknown_action',
      message: /unknown action "reboot": use one of restart, stop_start, cleanup/,
    },
    {
      what: 'action none',
      res: () => post('/api/v1/remediations', { target: c.name, action: 'none' }),
      status: 400,
      error: 'unknown_action',
    },
    {
      what: 'restart without a target',
      res: () => post('/api/v1/remediations', { action: 'restart' }),
      status: 400,
      error: 'bad_target',
      message: /needs a target/,
    },
    {
      what: 'restart of the host',
      res: () => post('/api/v1/remediations', { target: 'host', action: 'restart' }),
      status: 400,
      error: 'bad_target',
    },
    {
      what: 'cleanup of a container',
      res: () => post('/api/v1/remediations', { target: c.name, action: 'cleanup' }),
      status: 400,
      error: 'bad_target',
      message: /whole host/,
    },
    {
      what: 'unknown field (a typo must not be ignored)',
      res: () => post('/api/v1/remediations', { target: c.name, action: 'restart', dry_run: true }),
      status: 400,
      error: 'bad_request',
    },
    {
      what: 'dryRun of the wrong type',
      res: () => post('/api/v1/remediations', { target: c.name, action: 'restart', dryRun: 'yes' }),
      status: 400,
      error: 'bad_request',
    },
    {
      what: 'malformed body',
      res: () =>
        app.inject({
          method: 'POST',
          url: '/api/v1/remediations',
          headers: { ...adminAuth(), 'content-type': 'application/json' },
          payload: '{"target":',
        }),
      status: 400,
    },
    ...['forever', '1x', '0', '-5m', '10 minutes', '400d'].map((d) => ({
      what: `malformed duration ${JSON.stringify(d)}`,
      res: () => post(`/api/v1/containers/${c.name}/pause`, { for: d }),
      status: 400,
      error: 'bad_duration',
      message: new RegExp(`malformed duration "${d}"`),
    })),
    {
      what: 'pause without a duration',
      res: () => post(`/api/v1/containers/${c.name}/pause`, {}),
      status: 400,
      error: 'bad_request',
    },
    {
      what: 'pause of an unknown container',
      res: () => post('/api/v1/containers/no-such-container-xyz/pause', { for: '1h' }),
      status: 404,
      error: 'target_not_found',
      message: /no-such-container-xyz/,
    },
    {
      what: 'resume of an unknown container',
      res: () =>
        app.inject({
          method: 'DELETE',
          url: '/api/v1/containers/no-such-container-xyz/pause',
          headers: adminAuth(),
        }),
      status: 404,
      error: 'target_not_found',
    },
    {
      what: 'reset of an unknown container',
      res: () => post('/api/v1/containers/no-such-container-xyz/reset', {}),
      status: 404,
      error: 'target_not_found',
    },
    // A name Docker could never have given is the caller's mistake (400), not an engine failure (503).
    ...['a b', 'a\u0000b', '名前', 'a;rm -rf /', '../x', '..', 'web?x=1', 'x'].flatMap((name) => {
      const said = /is not a container name or id: Docker names are two or more letters/;
      const path = `/api/v1/containers/${encodeURIComponent(name)}`;
      const inBody = {
        what: `restart of ${JSON.stringify(name)}`,
        res: () => post('/api/v1/remediations', { target: name, action: 'restart', dryRun: true }),
        status: 400,
        error: 'invalid_target',
        message: said,
        check: (b: Record<string, unknown>) => t.equal(b.target, name),
      };
      // inject() resolves a `..` path segment before the router sees it (docker-safety.test.ts sends
      // it over a socket).
      if (name === '..') return [inBody];
      return [
        inBody,
        {
          what: `pause of ${JSON.stringify(name)}`,
          res: () => post(`${path}/pause`, { for: '1h' }),
          status: 400,
          error: 'invalid_target',
          message: said,
        },
        {
          what: `resume of ${JSON.stringify(name)}`,
          res: () => app.inject({ method: 'DELETE', url: `${path}/pause`, headers: adminAuth() }),
          status: 400,
          error: 'invalid_target',
          message: said,
        },
        {
          what: `reset of ${JSON.stringify(name)}`,
          res: () => post(`${path}/reset`, {}),
          status: 400,
          error: 'invalid_target',
          message: said,
        },
      ];
    }),
    {
      what: 'a malformed Compose service',
      res: () => post('/api/v1/remediations', { target: 'service:shop/web;reboot', action: 'restart' }),
      status: 400,
      error: 'invalid_target',
      message: /"web;reboot" is not a Compose service name/,
    },
    {
      what: 'a malformed Compose project',
      res: () => post('/api/v1/remediations', { target: 'service:../web', action: 'restart' }),
      status: 400,
      error: 'invalid_target',
      message: /"\.\." is not a Compose project name/,
    },
    {
      what: 'unknown remediation id',
      res: () => app.inject({ method: 'GET', url: '/api/v1/remediations/nope', headers: adminAuth() }),
      status: 404,
      error: 'not_found',
      message: /nope/,
    },
    {
      what: 'bad since',
      res: () =>
        app.inject({ method: 'GET', url: '/api/v1/incidents?since=yesterday', headers: adminAuth() }),
      status: 400,
      error: 'bad_since',
    },
    {
      what: 'notify without a notifier',
      res: () => post('/api/v1/notify', { text: 'build 42 done' }),
      status: 503,
      error: 'not_configured',
      message: /TELEGRAM_BOT_TOKEN/,
    },
    {
      what: 'notify with empty text',
      res: () => post('/api/v1/notify', { text: '' }),
      status: 400,
    },
  ];
  const recordsBefore = JSON.stringify([...store.records()]);
  for (const k of cases) {
    const res = await k.res();
    t.equal(res.statusCode, k.status, `${k.what}: status`);
    const b = json(res.body);
    if (k.error) t.equal(b.error, k.error, `${k.what}: error`);
    if (k.message) t.match(b.message, k.message, `${k.what}: message`);
    t.type(b.message, 'string', `${k.what}: has a message`);
    k.check?.(b);
  }
  await engine.idle();
  t.same(store.listRemediations(), [], 'no remediation was recorded');
  t.equal(JSON.stringify([...store.records()]), recordsBefore, 'no container record changed');
  t.same(store.listIncidents(), [], 'no incident');
  const events = audit().map((l) => l.event);
  for (const e of ['manual_request', 'decision', 'action', 'pause', 'resume', 'reset', 'notify']) {
    t.notOk(events.includes(e), `no ${e} in the audit log`);
  }
  t.equal(await metric('autoheal_decisions_total', { reason: 'ok' }), 0, 'no decision counted');
});

t.test('notify queues the text with the notifier and logs who sent it', async (t) => {
  const notifier = new RecordingTextNotifier();
  const { app, audit } = await adminApp(t, { notifier });
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/notify',
    headers: { ...adminAuth(), 'x-requested-by': 'ci:build-1234' },
    payload: { text: 'build 1234 deployed <b>ok</b>', silent: true },
  });
  t.equal(res.statusCode, 202);
  t.same(json(res.body), { id: 'msg-1', status: 'queued' });
  t.same(notifier.texts, [{ id: 'msg-1', text: 'build 1234 deployed <b>ok</b>', silent: true }]);
  const line = audit().find((l) => l.event === 'notify');
  t.equal(line?.requestedBy, 'ci:build-1234');
  const tooLong = await app.inject({
    method: 'POST',
    url: '/api/v1/notify',
    headers: adminAuth(),
    payload: { text: 'x'.repeat(4097) },
  });
  t.equal(tooLong.statusCode, 400);
  t.equal(notifier.texts.length, 1);
});

t.test('a dry run goes through the policy, is followed by id and names its requester', async (t) => {
  const { app, settled, audit } = await adminApp(t);
  const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' } });
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/remediations',
    headers: { ...adminAuth(), 'x-requested-by': 'alice' },
    payload: { target: c.name, action: 'restart', reason: 'checking the policy', dryRun: true },
  });
  t.equal(res.statusCode, 202);
  const b = json(res.body);
  t.match(b, { state: 'queued', target: c.name, action: 'restart' });
  t.equal(res.headers.location, `/api/v1/remediations/${b.id}`);
  await settled(String(b.id));
  const got = await app.inject({ method: 'GET', url: `/api/v1/remediations/${b.id}`, headers: adminAuth() });
  t.equal(got.statusCode, 200);
  t.match(json(got.body), {
    id: b.id,
    state: 'dry_run',
    done: true,
    source: 'manual',
    requestedBy: 'alice',
    reason: 'checking the policy',
  });
  const req = audit().find((l) => l.event === 'manual_request');
  t.match(req, { requestedBy: 'alice', reason: 'checking the policy', dryRun: true, action: 'restart' });
  const text = audit()
    .map((l) => JSON.stringify(l))
    .join('\n');
  t.notMatch(text, /test-admin-token/, 'the admin token never reaches the audit log');
});

t.test('an Idempotency-Key: a repeated request gets the remediation the first one started', async (t) => {
  const { app, settled, store, audit } = await adminApp(t);
  const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' } });
  const post = (key: string | undefined, payload: object) =>
    app.inject({
      method: 'POST',
      url: '/api/v1/remediations',
      headers: { ...adminAuth(), ...(key === undefined ? {} : { 'idempotency-key': key }) },
      payload,
    });
  const first = await post('deploy-1234', { target: c.name, action: 'restart', dryRun: true });
  t.equal(first.statusCode, 202);
  const id = String(json(first.body).id);
  await settled(id);
  const again = await post('deploy-1234', { target: c.name, action: 'restart', dryRun: true });
  t.equal(again.statusCode, 202);
  t.equal(json(again.body).id, id, 'the same remediation');
  t.equal(json(again.body).state, 'dry_run', 'in the state it reached');
  t.equal(again.headers['idempotent-replayed'], 'true');
  t.equal(store.listRemediations().length, 1, 'nothing new queued');
  t.equal(audit().filter((l) => l.event === 'manual_request').length, 1);
  t.equal(audit().filter((l) => l.event === 'manual_request_repeat').length, 1);
  // The key names one request: another action under it is refused, and so is a malformed key.
  const other = await post('deploy-1234', { target: c.name, action: 'stop_start', dryRun: true });
  t.equal(other.statusCode, 409);
  t.equal(json(other.body).error, 'idempotency_key_reused');
  const bad = await post('has spaces in it', { target: c.name, action: 'restart', dryRun: true });
  t.equal(bad.statusCode, 400);
  t.equal(json(bad.body).error, 'bad_idempotency_key');
  const tooLong = await post('k'.repeat(129), { target: c.name, action: 'restart', dryRun: true });
  t.equal(tooLong.statusCode, 400);
  t.equal(store.listRemediations().length, 1, 'refusals changed nothing');
});

t.test('a container id names its container; cleanup defaults to the host', async (t) => {
  const { app, settled } = await adminApp(t, { env: { DRY_RUN: 'true' } });
  const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' } });
  const byId = await app.inject({
    method: 'POST',
    url: '/api/v1/remediations',
    headers: adminAuth(),
    payload: { target: c.id.slice(0, 12), action: 'stop_start' },
  });
  t.equal(byId.statusCode, 202);
  t.equal(json(byId.body).target, c.name);
  const cleanup = await app.inject({
    method: 'POST',
    url: '/api/v1/remediations',
    headers: adminAuth(),
    payload: { action: 'cleanup', reason: 'disk at 91%' },
  });
  t.equal(cleanup.statusCode, 202);
  t.equal(json(cleanup.body).target, 'host');
  const r = await settled(String(json(cleanup.body).id));
  t.equal(r.state, 'dry_run', 'DRY_RUN=true: decided and logged, nothing touched');
});

t.test('OpenAPI document and browsable UI', async (t) => {
  const { app } = await adminApp(t);
  const res = await app.inject('/docs/json');
  t.equal(res.statusCode, 200);
  const doc = JSON.parse(res.body) as {
    openapi: string;
    paths: Record<string, Record<string, { security?: unknown; requestBody?: unknown }>>;
    components: { securitySchemes: Record<string, unknown> };
  };
  t.match(doc.openapi, /^3\./);
  for (const p of [
    '/api/v1/remediations',
    '/api/v1/remediations/{id}',
    '/api/v1/containers',
    '/api/v1/incidents',
    '/api/v1/containers/{name}/pause',
    '/api/v1/containers/{name}/reset',
    '/api/v1/notify',
    '/webhooks/alertmanager',
  ]) {
    t.ok(doc.paths[p], `documents ${p}`);
  }
  t.same(doc.paths['/api/v1/remediations']?.post?.security, [{ adminToken: [] }]);
  t.ok(doc.paths['/api/v1/remediations']?.post?.requestBody, 'request body schema is in the document');
  t.ok(doc.components.securitySchemes.adminToken);
  const page = await app.inject('/docs/');
  t.equal(page.statusCode, 200, 'the UI page');
  t.match(page.headers['content-type'], /html/);
  const bundle = await app.inject('/docs/static/swagger-ui-bundle.js');
  t.equal(bundle.statusCode, 200, 'its script is served locally (no CDN)');
});
