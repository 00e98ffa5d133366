// update on the real engine and a real registry: a good v2 pushed under the container's tag is pulled
// and the container re-created on it and verified; a broken v2 (its health check fails) leaves the
// container on v1, healthy, under its name, with the remediation failed and one escalation that names
// both digests.
import t, { type Test } from 'tap';
import pino from 'pino';
import { asideName } from '../src/actions/recreate.js';
import { updateAction } from '../src/actions/update.js';
import { checkUpdate } from '../src/registry/check.js';
import { ADMIN_TOKEN, RecordingSink, testApp } from './fixtures/app.js';
import {
  byName,
  docker,
  followEngineEvents,
  imageExists,
  removeAtEnd,
  uniqueName,
  waitForHealth,
} from './fixtures/docker.js';
import { TEST_LABEL } from './fixtures/labels.js';
import { publish, startRegistry } from './fixtures/registry.js';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };

/**
 * The engine's own account of what happened to a container and its aside copy, from now on: each
 * event as "+ms action name id image", for the test log (the evidence of an update's steps).
 */
async function engineEvents(t: Test, name: string): Promise<() => string[]> {
  const names = new Set([name, asideName(name)]);
  const since = Date.now();
  const seen = await followEngineEvents(t, {
    event: ['create', 'start', 'kill', 'die', 'stop', 'rename', 'destroy'],
  });
  return () =>
    seen
      .filter((e) => names.has(e.name) || names.has(e.attributes.oldName?.replace(/^\//, '') ?? ''))
      .map(
        (e) =>
          `+${Math.round(e.at - since)}ms ${e.action} ${e.name} ${e.id.slice(0, 12)} ${e.attributes.image ?? ''}`,
      );
}

/** A watched container on `image` whose health check fails while /tmp/broken exists (a broken v2 has it). */
async function createOn(
  t: Test,
  image: string,
  labels: Record<string, string> = { 'autoheal.update': 'apply' },
): Promise<{ name: string; id: string }> {
  const name = uniqueName('update');
  removeAtEnd(t, name);
  const c = await docker.createContainer({
    name,
    Image: image,
    Cmd: ['sh', '-c', "trap 'exit 0' TERM; sleep 2147483 & wait"],
    Labels: { [TEST_LABEL]: 'true', 'autoheal.enable': 'true', ...labels },
    StopTimeout: 2,
    Healthcheck: {
      Test: ['CMD-SHELL', 'test ! -f /tmp/broken || { echo "health: /tmp/broken present"; exit 1; }'],
      Interval: 250_000_000,
      Timeout: 2_000_000_000,
      Retries: 1,
    },
    HostConfig: { NetworkMode: 'none' },
  });
  await c.start();
  await waitForHealth(name, 'healthy');
  return { name, id: c.id };
}

async function updateThrough(t: Test, h: Awaited<ReturnType<typeof testApp>>, name: string) {
  const res = await h.app.inject({
    method: 'POST',
    url: '/api/v1/remediations',
    headers: admin,
    payload: { target: name, action: 'update', reason: 'new image' },
  });
  t.equal(res.statusCode, 202, res.body);
  return h.settled(String(JSON.parse(res.body).id), 60_000);
}

t.test('a good v2 under the same tag: the container is re-created on it and verified', async (t) => {
  const h = await testApp(t, { env: { VERIFY_TIMEOUT: '30' } });
  const registry = await startRegistry(t);
  const ref = `${registry.host}/ah/${uniqueName('app')}:1`;
  const v1 = await publish(t, ref, { version: '1' });
  const c = await createOn(t, ref);
  const v2 = await publish(t, ref, { version: '2' });

  const details = await h.docker.inspect(c.id);
  if (!details) throw new Error('the container is gone');
  const check = await checkUpdate(h.docker, details);
  t.match(check, { status: 'available', localDigest: v1.digest, remoteDigest: v2.digest });
  const availableAt = Date.now();

  const events = await engineEvents(t, c.name);
  const done = await updateThrough(t, h, c.name);
  const verifiedAt = Date.now();
  t.equal(done.state, 'succeeded', JSON.stringify(done));
  t.comment(`from "update available" to "verified on v2": ${verifiedAt - availableAt} ms`);

  const now = await byName(c.name);
  t.not(now?.Id, c.id, 'a new container under the name');
  t.equal(now?.Image, v2.id, 'it runs v2');
  t.equal(now?.Config.Image, ref, 'and still names the tag');
  t.equal(now?.State.Health?.Status, 'healthy');
  t.notOk(await byName(c.id), 'the v1 container is gone');
  t.notOk(await byName(asideName(c.name)), 'nothing left aside');
  const result = h.audit().find((l) => l.event === 'remediation' && l.container === c.name);
  t.match(result, { action: 'update', result: 'succeeded' });
  t.match(String(result?.detail), `${v1.digest} → ${v2.digest}`);
  const after = await h.docker.inspect(c.name);
  t.match(after && (await checkUpdate(h.docker, after)), { status: 'up_to_date', localDigest: v2.digest });
  t.notOk(await imageExists(v1.id), 'the v1 image, untagged and unused now, is released');
  t.match(String(result?.detail), `released the previous image ${v1.id.slice(7, 19)}`);
  t.equal(await h.metric('autoheal_updates_total', { result: 'updated' }), 1);
  t.comment(`the engine's events:\n${events().join('\n')}`);
  t.match(
    events().join('\n'),
    /rename .*\n.*create .*\n.*start .*\n.*destroy /,
    'rename aside, create, start, remove',
  );
});

t.test('a broken v2: the container ends on v1, healthy, the update failed, one escalation', async (t) => {
  const sink = new RecordingSink();
  const h = await testApp(t, { escalations: sink, env: { VERIFY_TIMEOUT: '8' } });
  const registry = await startRegistry(t);
  const ref = `${registry.host}/ah/${uniqueName('app')}:1`;
  const v1 = await publish(t, ref, { version: '1' });
  const c = await createOn(t, ref);
  const v2 = await publish(t, ref, { version: '2', broken: true });
  const startedAt = Date.now();
  const events = await engineEvents(t, c.name);

  const done = await updateThrough(t, h, c.name);
  t.equal(done.state, 'failed', JSON.stringify(done));
  t.comment(`from "update available" to "rolled back to v1": ${Date.now() - startedAt} ms`);

  const now = await byName(c.name);
  t.equal(now?.Id, c.id, 'the v1 container has its name again');
  t.equal(now?.Image, v1.id, 'on the v1 image');
  await waitForHealth(c.name, 'healthy');
  t.notOk(await byName(asideName(c.name)), 'nothing left aside');
  const detail = String(done.detail);
  t.match(detail, `${v1.digest} → ${v2.digest}`, 'both digests');
  t.match(detail, /put back: removed the new container/);
  const raised = sink.raised.filter((e) => e.container === c.name);
  t.equal(raised.length, 1, 'one escalation');
  const escalated = JSON.stringify(raised[0]);
  t.match(escalated, v1.digest, 'the escalation names the v1 digest');
  t.match(escalated, v2.digest, 'and the v2 digest');
  t.match(escalated, 'health: /tmp/broken present', 'and the failed health output');
  t.comment(`the engine's events:\n${events().join('\n')}`);
});

/**
 * A check run looks at every watched container on the engine, and other test files run theirs at the
 * same time: each test that runs one watches only its own Compose project.
 */
const own = () => {
  const project = uniqueName('proj');
  return {
    project,
    env: { WATCH_SCOPE: 'project', COMPOSE_PROJECT: project },
    labels: { 'com.docker.compose.project': project },
  };
};

const run = async (h: Awaited<ReturnType<typeof testApp>>, body: Record<string, unknown> = {}) => {
  const res = await h.app.inject({ method: 'POST', url: '/api/v1/updates', headers: admin, payload: body });
  t.equal(res.statusCode, 200, res.body);
  return JSON.parse(res.body) as {
    requested: Array<{ target: string; remediationId: string }>;
    notified: string[];
    containers: Array<{ container: string; status: string; mode: string; detail: string }>;
  };
};

t.test(
  'opt-in: no autoheal.update label and AUTOPATCH=off is a skip; AUTOPATCH=apply opts it in',
  async (t) => {
    const registry = await startRegistry(t);
    const ref = `${registry.host}/ah/${uniqueName('app')}:1`;
    await publish(t, ref, { version: '1' });
    const scope = own();
    const c = await createOn(t, ref, scope.labels);
    const v2 = await publish(t, ref, { version: '2' });

    const off = await testApp(t, { env: scope.env });
    const refused = await updateThrough(t, off, c.name);
    t.match(refused, { state: 'skipped', skipReason: 'not_opted_in' });
    t.match(String(refused.detail), 'AUTOPATCH=off');
    t.equal((await byName(c.name))?.Id, c.id, 'not touched');
    const listed = await run(off);
    t.match(
      listed.containers.find((x) => x.container === c.name),
      { status: 'available', mode: 'off' },
    );
    t.same(listed.requested, [], 'a check run requests nothing for it');

    const on = await testApp(t, { env: { ...scope.env, AUTOPATCH: 'apply', VERIFY_TIMEOUT: '30' } });
    const applied = await run(on);
    const mine = applied.requested.find((r) => r.target === c.name);
    t.ok(mine, 'the check run requests its update');
    const done = await on.settled(String(mine?.remediationId), 60_000);
    t.equal(done.state, 'succeeded', JSON.stringify(done));
    t.equal((await byName(c.name))?.Image, v2.id, 'on v2');
  },
);

t.test('notify: one message lists the updates, nothing is touched', async (t) => {
  const sink = new RecordingSink();
  const scope = own();
  const h = await testApp(t, { escalations: sink, env: scope.env });
  const registry = await startRegistry(t);
  const refs = [`${registry.host}/ah/${uniqueName('a')}:1`, `${registry.host}/ah/${uniqueName('b')}:1`];
  const made: Array<{ name: string; id: string }> = [];
  for (const ref of refs) {
    await publish(t, ref, { version: '1' });
    made.push(await createOn(t, ref, { ...scope.labels, 'autoheal.update': 'notify' }));
    await publish(t, ref, { version: '2' });
  }
  const out = await run(h);
  t.same(out.requested, [], 'no update requested');
  t.same([...out.notified].sort(), made.map((c) => c.name).sort());
  const messages = sink.raised.filter((e) => e.kind === 'updates_available');
  t.equal(messages.length, 1, 'one message for the run');
  for (const c of made) t.match(String(messages[0]?.detail), c.name);
  for (const c of made) t.equal((await byName(c.name))?.Id, c.id, `${c.name} untouched`);
  t.equal(await h.metric('autoheal_updates_total', { result: 'available' }), 2);
  // An operator may still apply a notify container's update by hand.
  const done = await updateThrough(t, h, made[0]?.name ?? '');
  t.equal(done.state, 'succeeded', JSON.stringify(done));
});

t.test('replicas of one Compose service go one at a time: a broken v2 stops at the first', async (t) => {
  const sink = new RecordingSink();
  const { project, env } = own();
  const h = await testApp(t, { escalations: sink, env: { ...env, VERIFY_TIMEOUT: '8' } });
  const registry = await startRegistry(t);
  const ref = `${registry.host}/ah/${uniqueName('app')}:1`;
  const v1 = await publish(t, ref, { version: '1' });
  const replicas = [];
  for (const n of ['1', '2']) {
    replicas.push(
      await createOn(t, ref, {
        'autoheal.update': 'apply',
        'com.docker.compose.project': project,
        'com.docker.compose.service': 'web',
        'com.docker.compose.container-number': n,
      }),
    );
  }
  const v2 = await publish(t, ref, { version: '2', broken: true });
  const out = await run(h);
  t.same(
    out.requested.map((r) => r.target),
    [`service:${project}/web`],
    'one request for the service',
  );
  const done = await h.settled(String(out.requested[0]?.remediationId), 60_000);
  t.equal(done.state, 'failed', JSON.stringify(done));
  const [first, second] = replicas;
  t.match(done.results?.[first?.name ?? ''], { state: 'failed' });
  t.match(done.results?.[second?.name ?? ''], { state: 'skipped' });
  const held = h.audit().find((l) => l.event === 'decision' && l.container === second?.name);
  t.match(held, { reason: 'held_back' });
  for (const c of replicas) {
    const now = await byName(c.name);
    t.equal(now?.Id, c.id, `${c.name} is its original container`);
    t.equal(now?.Image, v1.id, `${c.name} on v1`);
  }
  t.equal(sink.raised.filter((e) => e.kind === 'verification_failed').length, 1, 'one escalation');
  t.match(JSON.stringify(sink.raised), v2.digest);
  t.equal(await h.metric('autoheal_updates_total', { result: 'rolled_back' }), 1);
  // The next check run does not try the same broken image again.
  const again = await run(h);
  t.same(again.requested, [], 'the rolled-back image is not requested again');
  t.ok(
    again.containers.find((x) => x.container === first?.name)?.detail.includes('rolled back at'),
    'and the list says why',
  );
});

t.test('a registry that is down: a clear error, nothing touched', async (t) => {
  const scope = own();
  const h = await testApp(t, { env: scope.env });
  const registry = await startRegistry(t);
  const ref = `${registry.host}/ah/${uniqueName('app')}:1`;
  await publish(t, ref, { version: '1' });
  const c = await createOn(t, ref, { ...scope.labels, 'autoheal.update': 'apply' });
  await registry.stop();

  const list = await h.app.inject({ method: 'GET', url: '/api/v1/updates', headers: admin });
  t.equal(list.statusCode, 200, list.body);
  const mine = (
    JSON.parse(list.body).containers as Array<{ container: string; status: string; detail: string }>
  ).find((x) => x.container === c.name);
  t.equal(mine?.status, 'unknown');
  t.match(mine?.detail, registry.host, 'the detail names the registry');
  const done = await updateThrough(t, h, c.name);
  t.equal(done.state, 'failed');
  t.match(String(done.detail), /nothing changed/);
  t.equal((await byName(c.name))?.Id, c.id, 'the container is untouched');
  t.equal(await h.metric('autoheal_updates_total', { result: 'failed' }), 1);
  const anonymous = await h.app.inject({ method: 'POST', url: '/api/v1/updates', payload: {} });
  t.equal(anonymous.statusCode, 401, 'a check run needs the admin token');
});

t.test(
  'resume() after a crash before the re-create: the update did not take effect, and says so',
  async (t) => {
    const h = await testApp(t);
    const registry = await startRegistry(t);
    const ref = `${registry.host}/ah/${uniqueName('app')}:1`;
    await publish(t, ref, { version: '1' });
    const c = await createOn(t, ref);
    await publish(t, ref, { version: '2' });
    const ctx = {
      docker: h.docker,
      config: h.config,
      log: pino({ level: 'silent' }),
      now: Date.now,
      params: {},
    };
    // The crash came during the pull: nothing was stopped, renamed or created.
    const left = await updateAction.resume?.(ctx, c.name);
    t.match(left, { undone: true, detail: /the update did not take effect/ });
    t.equal((await byName(c.name))?.Id, c.id, 'nothing started again');

    // Once it runs the current image, an interruption after the update is the update done.
    const done = await updateThrough(t, h, c.name);
    t.equal(done.state, 'succeeded');
    const after = await updateAction.resume?.(ctx, c.name);
    t.notOk(after?.undone, String(after?.detail));
    t.match(after?.detail, 'runs the current image');
  },
);
