// The admin API against the real Docker engine: a manual restart is verified and reported; a pause holds
// an unhealthy container untouched (alerts and forced requests alike) until it is resumed; reset lifts
// given_up; scope and protection hold even with force; status and incidents tell the story.
import t from 'tap';
import { adminApp, adminAuth, breakIt, fixIt, WEBHOOK_TOKEN } from './fixtures/admin-app.js';
import { amPayload } from './fixtures/app.js';
import {
  createTestContainer,
  docker as engine,
  healthOf,
  restartCountOf,
  waitForHealth,
} from './fixtures/docker.js';

type App = Awaited<ReturnType<typeof adminApp>>;
const json = (body: string) => JSON.parse(body) as Record<string, unknown>;

async function request(a: App, payload: object, requester = 'alice') {
  const res = await a.app.inject({
    method: 'POST',
    url: '/api/v1/remediations',
    headers: { ...adminAuth(), 'x-requested-by': requester },
    payload,
  });
  if (res.statusCode !== 202) throw new Error(`POST remediations: ${res.statusCode} ${res.body}`);
  return String(json(res.body).id);
}

async function getRemediation(a: App, id: string) {
  const res = await a.app.inject({ method: 'GET', url: `/api/v1/remediations/${id}`, headers: adminAuth() });
  return json(res.body);
}

async function containerStatus(a: App, name: string) {
  const res = await a.app.inject({ method: 'GET', url: '/api/v1/containers', headers: adminAuth() });
  const list = json(res.body).containers as Array<Record<string, unknown>>;
  return list.find((c) => c.name === name);
}

t.test('a manual restart of an unhealthy container is verified and reported', async (t) => {
  const a = await adminApp(t);
  const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' } });
  await waitForHealth(c.name, 'healthy');
  await breakIt(c.name);
  await waitForHealth(c.name, 'unhealthy');
  const before = await restartCountOf(c.name);

  const id = await request(a, { target: c.name, action: 'restart', reason: 'stuck after the deploy' });
  const done = await a.settled(id);
  t.equal(done.state, 'succeeded');
  t.equal(await healthOf(c.name), 'healthy', 'healthy again');
  t.not((await restartCountOf(c.name)).startedAt, before.startedAt, 'it was really restarted');

  const r = await getRemediation(a, id);
  t.match(r, {
    state: 'succeeded',
    done: true,
    verification: 'succeeded',
    container: c.name,
    action: 'restart',
    source: 'manual',
    requestedBy: 'alice',
    reason: 'stuck after the deploy',
  });
  t.match(r.detail, /healthy/);
  t.type(r.durationMs, 'number');

  const audit = a.audit();
  const action = audit.find((l) => l.event === 'action' && l.remediationId === id);
  t.match(action, {
    container: c.name,
    requestedBy: 'alice',
    reason: 'stuck after the deploy',
    source: 'manual',
  });
  const result = audit.find((l) => l.event === 'remediation' && l.remediationId === id);
  t.match(result, { result: 'succeeded', container: c.name });
  t.equal(await a.metric('autoheal_remediations_total', { action: 'restart', result: 'succeeded' }), 1);

  const status = await containerStatus(a, c.name);
  t.match(status, {
    watched: true,
    health: 'healthy',
    attempts: 1,
    lastAction: 'restart',
    lastResult: 'succeeded',
    givenUp: false,
    pausedUntil: null,
  });
  t.ok((status?.cooldownRemainingSeconds as number) >= 0);

  const inc = await a.app.inject({
    method: 'GET',
    url: `/api/v1/incidents?since=1h&container=${c.name}`,
    headers: adminAuth(),
  });
  const incidents = json(inc.body).incidents as Array<Record<string, unknown>>;
  t.equal(incidents.length, 1, 'one incident');
  t.match(incidents[0], { container: c.name, status: 'recovered' });
  const types = ((incidents[0]?.events ?? []) as Array<{ type: string }>).map((e) => e.type);
  t.ok(types.includes('verification'), 'the incident holds the verification');
  const none = await a.app.inject({
    method: 'GET',
    url: `/api/v1/incidents?since=${new Date(Date.now() + 60_000).toISOString()}&container=${c.name}`,
    headers: adminAuth(),
  });
  t.same(json(none.body).incidents, [], 'since filters closed incidents out');
});

t.test('pause holds an unhealthy container untouched until it is resumed', async (t) => {
  const a = await adminApp(t);
  const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' } });
  await waitForHealth(c.name, 'healthy');

  const p = await a.app.inject({
    method: 'POST',
    url: `/api/v1/containers/${c.name}/pause`,
    headers: { ...adminAuth(), 'x-requested-by': 'bob' },
    payload: { for: '1h', reason: 'investigating a memory leak' },
  });
  t.equal(p.statusCode, 200);
  const until = Date.parse(String(json(p.body).pausedUntil));
  t.ok(Math.abs(until - (Date.now() + 3_600_000)) < 10_000, 'paused for an hour');
  t.match(
    a.audit().find((l) => l.event === 'pause'),
    { container: c.name, requestedBy: 'bob', reason: 'investigating a memory leak' },
  );

  await breakIt(c.name);
  await waitForHealth(c.name, 'unhealthy');
  const before = await restartCountOf(c.name);

  // An alert, a plain request and a forced one: none may touch a paused container.
  const hook = await a.app.inject({
    method: 'POST',
    url: '/webhooks/alertmanager',
    headers: { authorization: `Bearer ${WEBHOOK_TOKEN}` },
    payload: amPayload([
      { labels: { alertname: 'ContainerUnhealthy', container: c.name, remediation: 'restart' } },
    ]),
  });
  t.equal(hook.statusCode, 200);
  const plain = await request(a, { target: c.name, action: 'restart' });
  const forced = await request(a, { target: c.name, action: 'stop_start', force: true });
  for (const id of [plain, forced]) {
    const r = await a.settled(id);
    t.equal(r.state, 'skipped');
    t.equal(r.skipReason, 'paused');
  }
  await a.engine.idle();
  t.same(await restartCountOf(c.name), before, 'not restarted, not stopped');
  t.equal(await healthOf(c.name), 'unhealthy', 'left as it was');
  const paused = a.audit().filter((l) => l.event === 'decision' && l.reason === 'paused');
  t.equal(paused.length, 3, 'every refusal is in the audit log under its reason');
  t.equal(await a.metric('autoheal_decisions_total', { reason: 'paused' }), 3);
  t.match(await containerStatus(a, c.name), {
    pausedUntil: new Date(until).toISOString(),
    health: 'unhealthy',
  });

  const resume = await a.app.inject({
    method: 'DELETE',
    url: `/api/v1/containers/${c.name}/pause`,
    headers: adminAuth(),
  });
  t.equal(resume.statusCode, 200);
  t.same(json(resume.body), { container: c.name, pausedUntil: null });
  t.match(await containerStatus(a, c.name), { pausedUntil: null });

  const id = await request(a, { target: c.name, action: 'restart', reason: 'resumed' });
  t.equal((await a.settled(id)).state, 'succeeded', 'healed once resumed');
  t.equal(await healthOf(c.name), 'healthy');
});

t.test('the pause label is reported and survives an API resume', async (t) => {
  const a = await adminApp(t);
  const until = new Date(Date.now() + 2 * 3_600_000).toISOString();
  const c = await createTestContainer(t, {
    labels: { 'autoheal.enable': 'true', 'autoheal.paused_until': until },
  });
  t.match(await containerStatus(a, c.name), { pausedUntil: until });
  const resume = await a.app.inject({
    method: 'DELETE',
    url: `/api/v1/containers/${c.name}/pause`,
    headers: adminAuth(),
  });
  t.match(json(resume.body), { pausedUntil: until, detail: /autoheal\.paused_until label/ });
});

t.test('reset lifts given_up', async (t) => {
  const a = await adminApp(t, { env: { MAX_RESTART_ATTEMPTS: '1', VERIFY_TIMEOUT: '5' } });
  // Broken until fixed by hand: a restart does not clear the marker.
  const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' }, recoverOnRestart: false });
  await waitForHealth(c.name, 'healthy');
  await breakIt(c.name);
  await waitForHealth(c.name, 'unhealthy');

  const first = await request(a, { target: c.name, action: 'restart' });
  t.equal((await a.settled(first)).state, 'failed', 'the restart did not heal it');
  t.match(await containerStatus(a, c.name), { givenUp: true, attempts: 1, maxAttempts: 1 });
  t.equal(a.escalations.raised.filter((e) => e.kind === 'given_up').length, 1, 'a human was told');

  const refused = await request(a, { target: c.name, action: 'restart' });
  t.match(await a.settled(refused), { state: 'skipped', skipReason: 'given_up' });

  const reset = await a.app.inject({
    method: 'POST',
    url: `/api/v1/containers/${c.name}/reset`,
    headers: { ...adminAuth(), 'x-requested-by': 'carol' },
    payload: { reason: 'fixed the config' },
  });
  t.equal(reset.statusCode, 200);
  t.same(json(reset.body), { container: c.name, attempts: 0, givenUp: false });
  t.match(
    a.audit().find((l) => l.event === 'reset'),
    {
      container: c.name,
      wasGivenUp: true,
      requestedBy: 'carol',
      reason: 'fixed the config',
    },
  );
  t.match(await containerStatus(a, c.name), { givenUp: false, attempts: 0, cooldownRemainingSeconds: 0 });
  const inc = a.store.listIncidents({ container: c.name });
  t.equal(inc[0]?.status, 'reset', 'the given-up incident is closed as reset');

  await fixIt(c.name);
  const again = await request(a, { target: c.name, action: 'restart' });
  t.equal((await a.settled(again)).state, 'succeeded', 'healing works again after the reset');
});

t.test('force never overrides scope or protection', async (t) => {
  const a = await adminApp(t);
  const outside = await createTestContainer(t, {});
  const protectedOne = await createTestContainer(t, {
    labels: { 'autoheal.enable': 'true', 'autoheal.protect': 'true' },
  });
  const before = [await restartCountOf(outside.name), await restartCountOf(protectedOne.name)];
  const r1 = await a.settled(await request(a, { target: outside.name, action: 'restart', force: true }));
  const r2 = await a.settled(await request(a, { target: protectedOne.name, action: 'restart', force: true }));
  t.match(r1, { state: 'skipped', skipReason: 'not_in_scope' });
  t.match(r2, { state: 'skipped', skipReason: 'protected' });
  t.same([await restartCountOf(outside.name), await restartCountOf(protectedOne.name)], before, 'untouched');

  t.notOk(await containerStatus(a, outside.name), 'an unwatched container is not listed');
  const all = await a.app.inject({ method: 'GET', url: '/api/v1/containers?all=true', headers: adminAuth() });
  const listed = (json(all.body).containers as Array<Record<string, unknown>>).find(
    (c) => c.name === outside.name,
  );
  t.match(listed, { watched: false, scopeDetail: /autoheal\.enable=true/ });
  t.match(await containerStatus(a, protectedOne.name), { protected: true });
});

t.test('force skips the cooldown of a just-healed container', async (t) => {
  const a = await adminApp(t, { env: { RESTART_COOLDOWN: '600' } });
  const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' } });
  await waitForHealth(c.name, 'healthy');
  t.equal((await a.settled(await request(a, { target: c.name, action: 'restart' }))).state, 'succeeded');
  const status = await containerStatus(a, c.name);
  // Well inside the 600 s cooldown whatever the machine's load: it is reported, not measured.
  const remaining = status?.cooldownRemainingSeconds as number;
  t.ok(remaining > 300 && remaining <= 600, `the cooldown is reported (${remaining} s left)`);
  const cooled = await a.settled(await request(a, { target: c.name, action: 'restart' }));
  t.match(cooled, { state: 'skipped', skipReason: 'cooldown_active' });
  const forced = await a.settled(await request(a, { target: c.name, action: 'restart', force: true }));
  t.equal(forced.state, 'succeeded', 'force skips the cooldown');
});

t.test('a short hex name is a name: it never stands for the container whose id begins with it', async (t) => {
  const a = await adminApp(t);
  const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' } });
  // The shortest prefix of its id that no other container's id (or name) begins with, below 12.
  const all = await engine.listContainers({ all: true });
  let prefix = '';
  for (let n = 2; n < 11 && !prefix; n++) {
    const p = c.id.slice(0, n);
    if (!all.some((o) => o.Id !== c.id && (o.Id.startsWith(p) || o.Names.includes(`/${p}`)))) prefix = p;
  }
  t.ok(prefix, `prefix ${prefix} of ${c.id}`);
  const before = await restartCountOf(c.name);

  const send = (method: 'POST' | 'DELETE', url: string, payload?: object) =>
    a.app.inject({ method, url, headers: adminAuth(), ...(payload ? { payload } : {}) });
  const answers = {
    restart: await send('POST', '/api/v1/remediations', { target: prefix, action: 'restart', force: true }),
    pause: await send('POST', `/api/v1/containers/${prefix}/pause`, { for: '1h' }),
    resume: await send('DELETE', `/api/v1/containers/${prefix}/pause`),
    reset: await send('POST', `/api/v1/containers/${prefix}/reset`, {}),
  };
  for (const [what, res] of Object.entries(answers)) {
    t.equal(res.statusCode, 404, `${what}: ${res.body}`);
    t.match(json(res.body), {
      error: 'target_not_found',
      message: `no container named "${prefix}" (an id needs at least 12 hex characters)`,
      target: prefix,
    });
  }
  await a.engine.idle();
  t.same(await restartCountOf(c.name), before, 'not restarted');
  t.same(a.store.listRemediations(), [], 'nothing was queued');
  t.equal(a.store.record(c.name)?.pausedUntil, undefined, 'not paused');
  t.equal((await containerStatus(a, c.name))?.pausedUntil, null);

  // Twelve characters or more are an id prefix, as the docker CLI prints it.
  const byId = await send('POST', `/api/v1/containers/${c.id.slice(0, 12)}/pause`, { for: '1m' });
  t.equal(byId.statusCode, 200);
  t.equal(json(byId.body).container, c.name);
});
