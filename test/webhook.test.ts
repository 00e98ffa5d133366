// The Alertmanager webhook end to end on the real Docker engine: authentication, bad input,
// de-duplication, scope, and a real restart that heals a container, with audit and metrics.
import t from 'tap';
import { amPayload, bearer, testApp, WEBHOOK_TOKEN } from './fixtures/app.js';
import { refusingDisk } from './fixtures/disk.js';
import {
  breakContainer,
  createTestContainer,
  restartCountOf,
  waitFor,
  waitForHealth,
} from './fixtures/docker.js';

const post = (
  app: Awaited<ReturnType<typeof testApp>>['app'],
  payload: unknown,
  headers: Record<string, string> = bearer(),
) => app.inject({ method: 'POST', url: '/webhooks/alertmanager', payload: payload as object, headers });

t.test(
  'an unhealthy labelled container is restarted and healthy again; audit and metrics say so',
  async (t) => {
    const h = await testApp(t);
    const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' } });
    await waitForHealth(c.name, 'healthy');
    await breakContainer(c.name);
    await waitForHealth(c.name, 'unhealthy');
    const before = await restartCountOf(c.name);

    const res = await post(
      h.app,
      amPayload([{ labels: { alertname: 'ContainerUnhealthy', container: c.name, remediation: 'restart' } }]),
    );
    // Order, not speed: when the reply is there the remediation has not finished (a restart and its
    // verification take engine round trips and a health check), so the webhook did not wait for it.
    const finished = (result: string) =>
      h.metric('autoheal_remediations_total', { action: 'restart', result });
    const finishedAtReply = (await finished('succeeded')) + (await finished('failed'));
    t.equal(res.statusCode, 200);
    t.same(res.json(), { status: 'accepted', accepted: 1, duplicates: 0 });
    t.equal(finishedAtReply, 0, 'replied before the remediation finished');

    await h.engine.idle();
    t.equal(await (await import('./fixtures/docker.js')).healthOf(c.name), 'healthy');
    const after = await restartCountOf(c.name);
    t.not(after.startedAt, before.startedAt, 'the container was restarted');

    const audit = h.audit();
    const result = audit.find((l) => l.event === 'remediation' && l.container === c.name);
    t.match(result, { action: 'restart', result: 'succeeded', alertname: 'ContainerUnhealthy' });
    t.type(result?.durationMs, 'number');
    t.type(result?.fingerprint, 'string');
    t.ok(audit.some((l) => l.event === 'decision' && l.reason === 'ok' && l.container === c.name));
    t.equal(await h.metric('autoheal_remediations_total', { action: 'restart', result: 'succeeded' }), 1);
    t.equal(await h.metric('autoheal_decisions_total', { reason: 'ok' }), 1);
    t.equal(await h.metric('autoheal_alerts_received_total', { status: 'firing' }), 1);
    const incident = h.store.listIncidents({ container: c.name })[0];
    t.equal(incident?.status, 'recovered');
  },
);

t.test('the same alert three times and from two HA peers: one restart', async (t) => {
  const h = await testApp(t, { env: { RESTART_COOLDOWN: '60' } });
  const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' } });
  await waitForHealth(c.name, 'healthy');
  await breakContainer(c.name);
  await waitForHealth(c.name, 'unhealthy');
  const payload = amPayload([
    {
      labels: { alertname: 'ContainerUnhealthy', container: c.name, remediation: 'restart' },
      fingerprint: 'dup1',
    },
  ]);
  // Peer A three times (repeat, retry after timeout), peer B twice, interleaved and concurrent.
  const replies = await Promise.all([post(h.app, payload), post(h.app, payload), post(h.app, payload)]);
  replies.push(
    await post(h.app, { ...payload, receiver: 'peer-b' }),
    await post(h.app, { ...payload, receiver: 'peer-b' }),
  );
  t.same(
    replies.map((r) => r.statusCode),
    [200, 200, 200, 200, 200],
  );
  t.equal(
    replies.reduce((n, r) => n + (r.json() as { accepted: number }).accepted, 0),
    1,
  );
  await h.engine.idle();
  t.equal(await h.metric('autoheal_remediations_total', { action: 'restart', result: 'succeeded' }), 1);
  t.equal(await h.metric('autoheal_decisions_total', { reason: 'duplicate' }), 4);
  t.equal((await restartCountOf(c.name)).restarts, 0, 'restart API does not bump RestartCount');
  t.equal(h.audit().filter((l) => l.event === 'action' && l.container === c.name).length, 1);

  // Same failure re-fired later (new startsAt) while the cooldown holds: still one restart.
  await post(
    h.app,
    amPayload([
      {
        labels: { alertname: 'ContainerUnhealthy', container: c.name, remediation: 'restart' },
        startsAt: '2026-11-28T00:05:00Z',
      },
    ]),
  );
  await h.engine.idle();
  t.equal(h.audit().filter((l) => l.event === 'action' && l.container === c.name).length, 1);
  t.equal(await h.metric('autoheal_decisions_total', { reason: 'cooldown_active' }), 1);
});

t.test('authentication', async (t) => {
  const h = await testApp(t);
  const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' } });
  const before = await restartCountOf(c.name);
  const payload = amPayload([{ labels: { alertname: 'X', container: c.name, remediation: 'restart' } }]);
  const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  for (const [what, headers] of [
    ['no token', {}],
    ['wrong bearer', { authorization: 'Bearer nope-nope-nope-nope' }],
    ['token as scheme', { authorization: WEBHOOK_TOKEN }],
    ['wrong basic', { authorization: basic('alertmanager', 'nope') }],
  ] as Array<[string, Record<string, string>]>) {
    const res = await post(h.app, payload, headers);
    t.equal(res.statusCode, 401, what);
    t.equal(res.json().error, 'unauthorized', what);
  }
  await h.engine.idle();
  t.same(await restartCountOf(c.name), before, 'nothing happened');
  t.equal(h.store.pending().length, 0);
  t.equal(
    h.lines.some((l) => l.includes(WEBHOOK_TOKEN)),
    false,
    'the token never reaches a log',
  );

  const ok = await post(
    h.app,
    amPayload([{ labels: { alertname: 'X', container: 'no-such-container-x' } }]),
    {
      authorization: basic('alertmanager', WEBHOOK_TOKEN),
    },
  );
  t.equal(ok.statusCode, 200, 'basic auth with the token as password');
});

t.test('without a configured token the webhook refuses and says what to set', async (t) => {
  const h = await testApp(t, { env: { WEBHOOK_TOKEN: '' } });
  const res = await post(h.app, amPayload([{ labels: { alertname: 'X', container: 'x' } }]));
  t.equal(res.statusCode, 503);
  t.match(res.json().message, /WEBHOOK_TOKEN/);
});

t.test('bad input: a 4xx naming the problem, nothing happens', async (t) => {
  const h = await testApp(t, { env: { WEBHOOK_BODY_LIMIT: '4096' } });
  const json = { ...bearer(), 'content-type': 'application/json' };
  const cases: Array<[string, string, number, RegExp]> = [
    ['malformed JSON', '{"alerts": [', 400, /JSON/],
    ['not an object', '[]', 400, /body/],
    ['alerts missing', '{"version":"4"}', 400, /alerts/],
    ['alert without labels', '{"alerts":[{"status":"firing"}]}', 400, /labels/],
    ['bad status', '{"alerts":[{"status":"exploded","labels":{}}]}', 400, /status/],
    ['label not a string', '{"alerts":[{"status":"firing","labels":{"a":1}}]}', 400, /labels/],
    ['too large', JSON.stringify({ alerts: [], pad: 'x'.repeat(5000) }), 413, /large|limit/i],
  ];
  for (const [what, body, code, re] of cases) {
    const res = await h.app.inject({
      method: 'POST',
      url: '/webhooks/alertmanager',
      payload: body,
      headers: json,
    });
    t.equal(res.statusCode, code, what);
    t.match(res.json().message, re, what);
  }
  const form = await h.app.inject({
    method: 'POST',
    url: '/webhooks/alertmanager',
    payload: 'a=b',
    headers: { ...bearer(), 'content-type': 'application/x-www-form-urlencoded' },
  });
  t.equal(form.statusCode, 415, 'wrong content type');
  t.equal(h.store.pending().length, 0);
  t.equal(h.store.listRemediations().length, 0);
  // Unknown fields (newer Alertmanager releases) are accepted.
  const extra = await post(
    h.app,
    amPayload([{ labels: { alertname: 'X', container: 'nope-x' } }], {
      routeLabels: {},
      notification_reason: 'x',
    }),
  );
  t.equal(extra.statusCode, 200);
});

t.test('unlabelled, unknown, other-host and action-less alerts: 2xx, explained, no action', async (t) => {
  const h = await testApp(t, { env: { NODE_NAME: 'here' } });
  const plain = await createTestContainer(t);
  const before = await restartCountOf(plain.name);
  const res = await post(
    h.app,
    amPayload([
      { labels: { alertname: 'A', container: plain.name, remediation: 'restart' } },
      { labels: { alertname: 'B', container: 'does-not-exist-here', remediation: 'restart' } },
      { labels: { alertname: 'C', container: plain.name, remediation: 'reboot' } },
      { labels: { alertname: 'D', container: plain.name, remediation: 'restart', host: 'elsewhere' } },
      { labels: { alertname: 'E', container: plain.name } },
    ]),
  );
  t.equal(res.statusCode, 200);
  await h.engine.idle();
  const reasons = Object.fromEntries(
    h
      .audit()
      .filter((l) => l.event === 'decision')
      .map((l) => [l.alertname, l.reason]),
  );
  t.same(reasons, {
    A: 'not_in_scope',
    B: 'target_not_found',
    C: 'unknown_action',
    D: 'other_host',
    E: 'no_action',
  });
  t.same(await restartCountOf(plain.name), before, 'the unlabelled container is untouched');
  t.equal(await h.metric('autoheal_decisions_total', { reason: 'not_in_scope' }), 1);
});

t.test(
  'a state write failure answers 503 (so Alertmanager retries) and the retry is not a duplicate',
  async (t) => {
    const disk = refusingDisk();
    const h = await testApp(t, { journalWrite: disk.write });
    const payload = amPayload([
      { labels: { alertname: 'X', container: 'nope-y', remediation: 'restart' }, fingerprint: 'sw1' },
    ]);
    disk.refusing = true;
    const res = await post(h.app, payload);
    t.equal(res.statusCode, 503);
    t.equal(res.json().error, 'state_unavailable');
    disk.refusing = false;
    const retry = await post(h.app, payload);
    t.equal(retry.statusCode, 200);
    t.same(retry.json(), { status: 'accepted', accepted: 1, duplicates: 0 });
  },
);

t.test('a resolved alert closes its incident', async (t) => {
  const h = await testApp(t, {
    env: { MAX_RESTART_ATTEMPTS: '3', VERIFY_TIMEOUT: '2', RESTART_COOLDOWN: '30' },
  });
  const c = await createTestContainer(t, {
    labels: { 'autoheal.enable': 'true' },
    recoverOnRestart: false,
    startBroken: true,
  });
  await waitForHealth(c.name, 'unhealthy');
  const labels = { alertname: 'Down', container: c.name, remediation: 'restart' };
  await post(h.app, amPayload([{ labels, fingerprint: 'r1' }]));
  await h.engine.idle();
  const rec = await waitFor('a pending retry', async () => h.store.record(c.name)?.pendingRetry);
  t.ok(rec.at > Date.now(), 'a retry is scheduled after the failed restart');
  await post(h.app, amPayload([{ labels, fingerprint: 'r1', status: 'resolved' }]));
  await h.engine.idle();
  t.equal(h.store.record(c.name)?.pendingRetry, undefined, 'the retry is cancelled');
  t.equal(h.store.listIncidents({ container: c.name })[0]?.status, 'resolved');
});
