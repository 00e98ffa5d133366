// Dependents on the real engine: a client in a vpn's network namespace (`--network container:vpn`) is
// brought back into the vpn's namespace after the vpn is restarted and after it is re-created; a
// Compose-style depends_on with restart: true restarts the dependent after its dependency is healthy;
// a dependent that is protected is reported and left alone.
import { readlinkSync } from 'node:fs';
import type Docker from 'dockerode';
import t, { type Test } from 'tap';
import { asideName } from '../src/core/names.js';
import { adminApp, adminAuth } from './fixtures/admin-app.js';
import {
  createTestContainer,
  describeTimeline,
  docker,
  ensureTestImage,
  exec,
  followEngineEvents,
  type SeenEvent,
  TEST_IMAGE,
  uniqueName,
  waitFor,
  waitForHealth,
} from './fixtures/docker.js';
import { TEST_LABEL } from './fixtures/labels.js';

type App = Awaited<ReturnType<typeof adminApp>>;
const WATCHED = { 'autoheal.enable': 'true' };

async function request(a: App, payload: object): Promise<string> {
  const res = await a.app.inject({
    method: 'POST',
    url: '/api/v1/remediations',
    headers: adminAuth(),
    payload,
  });
  if (res.statusCode !== 202) throw new Error(`POST remediations: ${res.statusCode} ${res.body}`);
  return String((JSON.parse(res.body) as { id: string }).id);
}

const inspect = (name: string): Promise<Docker.ContainerInspectInfo> => docker.getContainer(name).inspect();

/** A container in another's network namespace, watched, with a health check; removed in teardown. */
async function client(t: Test, parent: string, labels: Record<string, string> = {}): Promise<string> {
  await ensureTestImage();
  const name = uniqueName('client');
  const c = await docker.createContainer({
    name,
    Image: TEST_IMAGE,
    Cmd: ['sh', '-c', "trap 'exit 0' TERM; sleep 2147483 & wait"],
    Labels: { [TEST_LABEL]: 'true', ...WATCHED, ...labels },
    StopTimeout: 2,
    Healthcheck: { Test: ['CMD-SHELL', 'true'], Interval: 250_000_000, Timeout: 2_000_000_000, Retries: 1 },
    HostConfig: { NetworkMode: `container:${parent}` },
  });
  t.teardown(() =>
    docker
      .getContainer(name)
      .remove({ force: true })
      .catch(() => undefined),
  );
  await c.start();
  await waitForHealth(name, 'healthy');
  return name;
}

/** The client is in the parent's network namespace as it is now: the same namespace inode, from /proc. */
async function sharesNamespace(t: Test, clientName: string, parentName: string) {
  const [c, p] = await Promise.all([inspect(clientName), inspect(parentName)]);
  t.equal(c.State.Running, true, `${clientName} runs`);
  t.equal(c.HostConfig.NetworkMode, `container:${p.Id}`, 'its network mode names the parent as it is now');
  const ns = (pid: number) => readlinkSync(`/proc/${pid}/ns/net`);
  t.equal(ns(c.State.Pid), ns(p.State.Pid), "it is in the parent's current network namespace");
  await exec(clientName, ['true']);
  t.pass('a command inside it succeeds');
}

/** The test's containers' engine events from now on (health-check execs aside), for its comment. */
const followTest = (t: Test) => followEngineEvents(t, { label: [`${TEST_LABEL}=true`] });

/**
 * Prints (never asserts) the engine's account of the chain: each event of the named containers, by
 * role and a short id (a re-created container is another id), relative to the first. Waits, briefly,
 * for the last container's return to healthy to have arrived on the stream.
 */
async function printTimeline(t: Test, seen: SeenEvent[], roles: Record<string, string>, last: string) {
  await waitFor(
    `${last} healthy on the event stream`,
    async () => {
      const i = seen.findLastIndex((e) => e.name === last && e.action === 'start');
      return seen.slice(i + 1).some((e) => e.name === last && e.action === 'health_status: healthy');
    },
    5000,
  ).catch(() => undefined);
  const who = (e: SeenEvent) => {
    const role = roles[e.name];
    return role && `${role}[${e.id.slice(0, 6)}]`;
  };
  t.comment(`engine events: ${describeTimeline(seen, who)}`);
}

t.test('vpn restarted: the client in its namespace is restarted into the new namespace', async (t) => {
  const a = await adminApp(t);
  const vpn = await createTestContainer(t, { labels: WATCHED });
  await waitForHealth(vpn.name, 'healthy');
  const cl = await client(t, vpn.name);
  const before = (await inspect(cl)).State.StartedAt;
  const seen = await followTest(t);
  const done = await a.settled(await request(a, { target: vpn.name, action: 'restart' }));
  t.equal(done.state, 'succeeded');
  t.match(done.detail, new RegExp(`dependents: ${cl} restart succeeded`));
  t.not((await inspect(cl)).State.StartedAt, before, 'the client was started again');
  await sharesNamespace(t, cl, vpn.name);
  await printTimeline(t, seen, { [vpn.name]: 'vpn', [cl]: 'client' }, cl);
  t.ok(
    a.audit().some((l) => l.event === 'dependent' && l.container === cl && l.result === 'succeeded'),
    'an audit line for the dependent',
  );
});

t.test('vpn re-created: the client is re-created against the new vpn', async (t) => {
  const a = await adminApp(t);
  const vpn = await createTestContainer(t, { labels: WATCHED });
  await waitForHealth(vpn.name, 'healthy');
  const cl = await client(t, vpn.name);
  const oldClient = (await inspect(cl)).Id;
  const seen = await followTest(t);
  const done = await a.settled(await request(a, { target: vpn.name, action: 'recreate' }));
  t.equal(done.state, 'succeeded', String(done.detail));
  t.not((await inspect(vpn.name)).Id, vpn.id, 'the vpn is a new container');
  t.not((await inspect(cl)).Id, oldClient, 'so is the client');
  await sharesNamespace(t, cl, vpn.name);
  await printTimeline(
    t,
    seen,
    { [vpn.name]: 'vpn', [asideName(vpn.name)]: 'vpn', [cl]: 'client', [asideName(cl)]: 'client' },
    cl,
  );
});

t.test('depends_on with restart: true restarts the dependent; a protected one is left alone', async (t) => {
  const a = await adminApp(t);
  const project = `deps${Math.random().toString(16).slice(2, 8)}`;
  const compose = (service: string, extra: Record<string, string> = {}) => ({
    ...WATCHED,
    'com.docker.compose.project': project,
    'com.docker.compose.service': service,
    ...extra,
  });
  const db = await createTestContainer(t, { labels: compose('db') });
  const app = await createTestContainer(t, {
    labels: compose('app', { 'com.docker.compose.depends_on': 'db:service_healthy:true' }),
  });
  const vault = await createTestContainer(t, {
    labels: compose('vault', {
      'com.docker.compose.depends_on': 'db:service_started:true',
      'autoheal.protect': 'true',
    }),
  });
  const cron = await createTestContainer(t, {
    labels: compose('cron', { 'com.docker.compose.depends_on': 'db:service_started:false' }),
  });
  for (const c of [db, app, vault, cron]) await waitForHealth(c.name, 'healthy');
  const started = async (name: string) => (await inspect(name)).State.StartedAt;
  const before = {
    app: await started(app.name),
    vault: await started(vault.name),
    cron: await started(cron.name),
  };
  // Followed live: a `since` query replays only the engine's last 256 events, which other tests' health
  // checks push out within seconds on a busy machine.
  const seen = await followTest(t);
  const done = await a.settled(await request(a, { target: db.name, action: 'restart' }));
  t.equal(done.state, 'succeeded', String(done.detail));
  t.not(await started(app.name), before.app, 'app was restarted');
  t.equal(await started(vault.name), before.vault, 'the protected one was not');
  t.equal(await started(cron.name), before.cron, 'nor the one without restart: true');
  t.match(
    done.detail,
    new RegExp(`${vault.name} restart skipped \\(depends on ${db.name}: left alone: protected`),
  );

  // The engine's own events: db healthy again before app is stopped.
  await printTimeline(t, seen, { [db.name]: 'db', [app.name]: 'app' }, app.name);
  const order = seen
    .filter((e) => [db.name, app.name].includes(e.name) && !e.action.startsWith('exec_'))
    .map((e) => `${e.name === db.name ? 'db' : 'app'} ${e.action}`);
  const dbHealthy = order.lastIndexOf('db health_status: healthy');
  const appKill = order.indexOf('app kill');
  t.ok(dbHealthy >= 0 && appKill > dbHealthy, `db healthy before app is stopped: ${order.join(', ')}`);
});
