// recreate on the real engine: the new container has the old one's definition under the same name;
// a replacement that cannot be created or is not healthy leaves the original running under its name;
// a kill -9 of the service while the replacement is verified is finished or rolled back on start-up.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import t, { type Test } from 'tap';
import { asideName, recreateAction } from '../src/actions/recreate.js';
import { ADMIN_TOKEN, RecordingSink, testApp } from './fixtures/app.js';
import {
  byName,
  createTestContainer,
  describeTimeline,
  docker,
  ensureTestImage,
  exec,
  followEngineEvents,
  type Mark,
  type SeenEvent,
  TEST_IMAGE,
  uniqueName,
  waitFor,
  waitForHealth,
} from './fixtures/docker.js';
import { TEST_LABEL } from './fixtures/labels.js';
import { type RunningService, startService } from './fixtures/service.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };

/** A bind-mounted directory the container and the test both see; removed in teardown. */
function stateDir(t: Teardown): string {
  const dir = mkdtempSync(join(tmpdir(), 'autoheal-recreate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * The first container of a name writes its hostname (its own id's prefix) to /state/owner; a
 * replacement gets another hostname, so it knows it is one and breaks itself (`replacement: 'broken'`)
 * or stays starting until /state/go appears (`'waits'`). The original stays healthy however often it
 * is started again.
 */
const replacementScript = (replacement: 'healthy' | 'broken' | 'waits') =>
  [
    "trap 'exit 0' INT TERM",
    '[ -f /state/owner ] || hostname > /state/owner',
    'if [ "$(cat /state/owner)" != "$(hostname)" ]; then',
    replacement === 'healthy' ? ':' : 'touch /tmp/broken',
    replacement === 'waits' ? 'while [ ! -f /state/go ]; do sleep 1; done; rm -f /tmp/broken' : ':',
    'fi',
    'sleep 2147483 & wait',
  ].join('\n');

/** A watched container with a rich definition; whatever holds its name (and its aside) at the end is removed. */
async function createRich(
  t: Teardown,
  o: { dir: string; replacement: 'healthy' | 'broken' | 'waits'; image?: string; startPeriodMs?: number },
): Promise<{ name: string; id: string }> {
  await ensureTestImage();
  const name = uniqueName('recreate');
  t.teardown(async () => {
    for (const n of [name, asideName(name)]) {
      // A replacement holds the anonymous volume by its name, which `v` leaves: removed by name too.
      const mounts = (await byName(n))?.Mounts ?? [];
      await docker
        .getContainer(n)
        .remove({ force: true, v: true })
        .catch(() => undefined);
      for (const m of mounts.filter((x) => x.Type === 'volume' && x.Name)) {
        await docker
          .getVolume(String(m.Name))
          .remove()
          .catch(() => undefined);
      }
    }
  });
  const c = await docker.createContainer({
    name,
    Image: o.image ?? TEST_IMAGE,
    Entrypoint: ['sh', '-c'],
    Cmd: [replacementScript(o.replacement)],
    Env: ['GREETING=hello', 'EMPTY='],
    Labels: { [TEST_LABEL]: 'true', 'autoheal.enable': 'true', 'com.example.role': 'web' },
    User: '0:0',
    WorkingDir: '/state',
    // An anonymous volume: the replacement must get the same one, not an empty new one.
    Volumes: { '/data': {} },
    StopSignal: 'SIGINT',
    StopTimeout: 2,
    Healthcheck: {
      Test: ['CMD-SHELL', 'test ! -f /tmp/broken || { echo "broken replacement"; exit 1; }'],
      Interval: 250_000_000,
      Timeout: 2_000_000_000,
      Retries: 1,
      StartPeriod: (o.startPeriodMs ?? 0) * 1_000_000,
    },
    HostConfig: {
      NetworkMode: 'none',
      RestartPolicy: { Name: 'unless-stopped' },
      Binds: [`${o.dir}:/state`],
      Memory: 64 * 1024 * 1024,
    },
  });
  await c.start();
  await waitForHealth(name, 'healthy');
  return { name, id: c.id };
}

/** What must survive a recreate, from an inspect. */
const definitionOf = (c: Docker.ContainerInspectInfo) => ({
  image: c.Config.Image,
  cmd: c.Config.Cmd,
  entrypoint: c.Config.Entrypoint,
  env: c.Config.Env,
  labels: c.Config.Labels,
  user: c.Config.User,
  workingDir: c.Config.WorkingDir,
  stopSignal: (c.Config as { StopSignal?: string }).StopSignal,
  stopTimeout: (c.Config as { StopTimeout?: number }).StopTimeout,
  healthcheck: c.Config.Healthcheck,
  restartPolicy: c.HostConfig.RestartPolicy,
  networkMode: c.HostConfig.NetworkMode,
  memory: c.HostConfig.Memory,
  // The engine lists mounts in no fixed order.
  mounts: c.Mounts.map((m) => ({
    type: m.Type,
    source: m.Source,
    destination: m.Destination,
    rw: m.RW,
  })).sort((a, b) => a.destination.localeCompare(b.destination)),
});

type App = Awaited<ReturnType<typeof testApp>>;

/** Asks the in-process admin API for a recreate and waits for the remediation to end. */
async function recreateThrough(t: Test, h: App, name: string, reason?: string) {
  const res = await h.app.inject({
    method: 'POST',
    url: '/api/v1/remediations',
    headers: admin,
    payload: { target: name, action: 'recreate', reason },
  });
  t.equal(res.statusCode, 202, res.body);
  return h.settled(String(JSON.parse(res.body).id), 40_000);
}

/** The test's containers' engine events from now on, for its comment. */
const followTest = (t: Test) => followEngineEvents(t, { label: [`${TEST_LABEL}=true`] });

/**
 * Prints (never asserts) the engine's account of one recreate: the events of the original (by its id)
 * and of whatever else held its name or its aside name (the replacement), relative to the first, with
 * the test's own marks among them.
 */
function printTimeline(t: Test, seen: SeenEvent[], c: { name: string; id: string }, marks: Mark[] = []) {
  const who = (e: SeenEvent) =>
    e.id === c.id
      ? 'original'
      : [c.name, asideName(c.name)].includes(e.name)
        ? `replacement[${e.id.slice(0, 6)}]`
        : undefined;
  t.comment(`engine events: ${describeTimeline(seen, who, marks)}`);
}

/** When each escalation about the container was raised, as marks for the timeline. */
const escalationMarks = (sink: RecordingSink, name: string): Mark[] =>
  sink.raised.filter((e) => e.container === name).map((e) => ({ at: e.at, what: `escalation ${e.kind}` }));

/** The original container has its name again and runs, and nothing waits aside. */
async function originalIsBack(t: Test, c: { name: string; id: string }): Promise<void> {
  const now = await byName(c.name);
  t.equal(now?.Id, c.id, 'the original has its name again');
  t.equal(now?.State.Running, true, 'and runs');
  t.notOk(await byName(asideName(c.name)), 'nothing left aside');
}

t.test(
  'recreate through the admin API keeps the definition under the same name, with a new id',
  async (t) => {
    const h = await testApp(t, { env: { VERIFY_TIMEOUT: '30' } });
    const dir = stateDir(t);
    const c = await createRich(t, { dir, replacement: 'healthy' });
    const before = await docker.getContainer(c.id).inspect();

    const done = await recreateThrough(t, h, c.name, 'wedged');
    t.equal(done.state, 'succeeded', JSON.stringify(done));

    const after = await byName(c.name);
    t.ok(after, 'a container has the name');
    t.not(after?.Id, c.id, 'a new container');
    t.same(after && definitionOf(after), definitionOf(before), 'the same definition');
    t.not(after?.Config.Hostname, before.Config.Hostname, 'a hostname of its own, not the old id');
    t.equal(after?.State.Health?.Status, 'healthy');
    t.notOk(
      await docker
        .getContainer(c.id)
        .inspect()
        .catch(() => undefined),
      'the old container is gone',
    );
    t.notOk(await byName(asideName(c.name)), 'nothing left aside');
    const result = h.audit().find((l) => l.event === 'remediation' && l.container === c.name);
    t.match(result, { action: 'recreate', result: 'succeeded' });
    t.match(String(result?.detail), /removed the old container/);
    await h.engine.idle();
    t.equal(
      h.audit().filter((l) => l.event === 'action' && l.container === c.name).length,
      1,
      'one action: the stop of the old container was not taken for a crash',
    );
  },
);

t.test(
  "a container in another one's namespace is re-created in a new owner's (params.networkMode)",
  async (t) => {
    const h = await testApp(t);
    const owner = await createTestContainer(t, { healthCheck: false });
    const next = await createTestContainer(t, { healthCheck: false });
    const name = uniqueName('client');
    t.teardown(() =>
      docker
        .getContainer(name)
        .remove({ force: true })
        .catch(() => undefined),
    );
    const client = await docker.createContainer({
      name,
      Image: TEST_IMAGE,
      Cmd: ['sh', '-c', "trap 'exit 0' TERM; sleep 2147483 & wait"],
      Labels: { [TEST_LABEL]: 'true' },
      HostConfig: { NetworkMode: `container:${owner.id}` },
    });
    await client.start();
    const details = await h.docker.inspect(client.id);
    t.equal(details?.networkMode, `container:${owner.id}`, 'inspect reports the network mode');
    if (!details) return;
    const ctx = { docker: h.docker, config: h.config, log: h.log, now: Date.now, params: {} };
    const out = await recreateAction.run(
      { ...ctx, params: { networkMode: `container:${next.id}` } },
      { kind: 'container', container: details, stopTimeoutSec: 2 },
    );
    t.ok(out.ok, out.detail);
    t.equal(await out.settle?.(true), `removed the old container ${client.id.slice(0, 12)}`);
    const now = await byName(name);
    t.equal(now?.HostConfig.NetworkMode, `container:${next.id}`, "in the new owner's namespace");
    t.equal(now?.State.Running, true);
    await exec(name, ['true']);

    const refused = await recreateAction.run(
      { ...ctx, params: { networkMode: 'host' } },
      { kind: 'container', container: (await h.docker.inspect(name)) ?? details, stopTimeoutSec: 2 },
    );
    t.match(refused, { ok: false, detail: /not container:/ }, 'no other network mode is taken');
    t.equal((await byName(name))?.State.Running, true, 'and nothing changed');
  },
);

t.test(
  'a replacement that is not healthy: the original runs again under its name, one escalation',
  async (t) => {
    const sink = new RecordingSink();
    const h = await testApp(t, { escalations: sink, env: { VERIFY_TIMEOUT: '30' } });
    const dir = stateDir(t);
    const c = await createRich(t, { dir, replacement: 'broken' });
    const seen = await followTest(t);
    const asked = Date.now();

    const done = await recreateThrough(t, h, c.name);
    t.equal(done.state, 'failed', JSON.stringify(done));

    await originalIsBack(t, c);
    await waitForHealth(c.name, 'healthy');
    printTimeline(t, seen, c, [{ at: asked, what: 'recreate asked' }, ...escalationMarks(sink, c.name)]);
    const containers = await docker.listContainers({ all: true, filters: { label: [TEST_LABEL] } });
    t.equal(
      containers.filter(
        (x) => x.Labels['com.example.role'] === 'web' && x.Names.some((n) => n.includes(c.name)),
      ).length,
      1,
      'the replacement was removed',
    );
    const detail = String(h.audit().find((l) => l.event === 'remediation' && l.container === c.name)?.detail);
    t.match(detail, /health check still failing/);
    t.match(detail, /put back: removed the new container/);
    t.equal(sink.raised.filter((e) => e.container === c.name).length, 1, 'one escalation');
  },
);

t.test('a replacement that cannot be created (its image tag is gone): the original runs again', async (t) => {
  const sink = new RecordingSink();
  const h = await testApp(t, { escalations: sink, env: { VERIFY_TIMEOUT: '30' } });
  const dir = stateDir(t);
  const repo = uniqueName('img');
  const tag = `${repo}:recreate`;
  await docker.getImage(TEST_IMAGE).tag({ repo, tag: 'recreate' });
  t.teardown(() =>
    docker
      .getImage(tag)
      .remove()
      .catch(() => undefined),
  );
  const c = await createRich(t, { dir, replacement: 'healthy', image: tag });
  // The container keeps its image by id; only the tag its definition names is gone.
  await docker.getImage(tag).remove();
  const seen = await followTest(t);
  const asked = Date.now();

  const done = await recreateThrough(t, h, c.name);
  t.equal(done.state, 'failed', JSON.stringify(done));
  await originalIsBack(t, c);
  printTimeline(t, seen, c, [{ at: asked, what: 'recreate asked' }, ...escalationMarks(sink, c.name)]);
  t.match(String(done.detail), /no such image/);
  t.equal(sink.raised.filter((e) => e.container === c.name).length, 1, 'one escalation');
});

t.test('resume() finishes or undoes what a crash left, found from the containers alone', async (t) => {
  const h = await testApp(t);
  const ctx = { docker: h.docker, config: h.config, log: h.log, now: Date.now, params: {} };
  const resume = async (name: string) => {
    if (!recreateAction.resume) throw new Error('recreate has no resume()');
    return recreateAction.resume(ctx, name);
  };
  const stopAside = async (c: { id: string; name: string }) => {
    await docker.getContainer(c.id).stop({ t: 2 });
    await docker.getContainer(c.id).rename({ name: asideName(c.name) });
  };

  const aside = await createRich(t, { dir: stateDir(t), replacement: 'healthy' });
  await stopAside(aside);
  const back = await resume(aside.name);
  t.match(back.detail, /aside without a replacement: renamed back and started/);
  t.notOk(back.settle, 'nothing left to settle');
  await originalIsBack(t, aside);

  const stopped = await createRich(t, { dir: stateDir(t), replacement: 'healthy' });
  await docker.getContainer(stopped.id).stop({ t: 2 });
  t.match((await resume(stopped.name)).detail, /stopped by the interrupted recreate: started/);
  await originalIsBack(t, stopped);

  // The crash fell between the replacement's create and its start.
  const both = await createRich(t, { dir: stateDir(t), replacement: 'healthy' });
  const definition = await h.docker.definition(both.id);
  await stopAside(both);
  const created = definition && (await h.docker.create(both.name, definition));
  if (!created || !('id' in created)) throw new Error(`no replacement: ${JSON.stringify(created)}`);
  const found = await resume(both.name);
  t.equal(found.verifyId, created.id, 'the replacement is the one to verify');
  t.equal((await byName(both.name))?.State.Running, true, 'and was started');
  t.match(await found.settle?.(false), /put back: removed the new container/);
  await originalIsBack(t, both);
});

/** The remediation's result line in a service's audit log, once it is there. */
const resultIn = (svc: RunningService, id: string) =>
  waitFor(
    'the resumed result',
    async () => svc.audit().find((l) => l.event === 'remediation' && l.remediationId === id),
    60_000,
  );

/** Starts a recreate in a service process and SIGKILLs it while the replacement is being verified. */
async function killDuringVerification(t: Teardown, env: Record<string, string>) {
  const dir = stateDir(t);
  const first = await startService(t, env);
  const c = await createRich(t, { dir, replacement: 'waits', startPeriodMs: 120_000 });
  const seen = await followEngineEvents(t, { label: [`${TEST_LABEL}=true`] });
  const marks: Mark[] = [{ at: Date.now(), what: 'recreate asked' }];
  const res = await fetch(`${first.url}/api/v1/remediations`, {
    method: 'POST',
    headers: admin,
    body: JSON.stringify({ target: c.name, action: 'recreate' }),
  });
  if (res.status !== 202) throw new Error(`POST remediations: ${res.status} ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  // Between "old renamed aside" and "new verified": the replacement runs, still starting.
  const replacement = await waitFor('the replacement to run while the old one waits aside', async () => {
    const [now, aside] = await Promise.all([byName(c.name), byName(asideName(c.name))]);
    return aside && now && now.Id !== c.id && now.State.Running ? now.Id : undefined;
  });
  await first.kill('SIGKILL');
  marks.push({ at: Date.now(), what: 'service killed (-9)' });
  return { dir, c, id, first, replacement, seen, marks };
}

/** The audit line's own time as a mark. */
const auditMark = (line: Record<string, unknown>, what: string): Mark => ({
  at: Date.parse(String(line.time)),
  what,
});

t.test('kill -9 while the replacement is verified: on start-up the recreate is completed', async (t) => {
  const env = { VERIFY_TIMEOUT: '60', WATCHER_HEAL: 'false' };
  const { dir, c, id, first, replacement, seen, marks } = await killDuringVerification(t, env);
  writeFileSync(join(dir, 'go'), '');
  marks.push({ at: Date.now(), what: 'replacement let become healthy' });
  const second = await startService(t, env, first.dir);
  marks.push({ at: Date.now(), what: 'service started again' });
  const result = await resultIn(second, id);
  t.equal(result.result, 'succeeded', JSON.stringify(result));
  t.equal((await byName(c.name))?.Id, replacement, 'the replacement has the name');
  t.notOk(await byName(asideName(c.name)), 'the old container was removed');
  printTimeline(t, seen, c, [...marks, auditMark(result, `result ${result.result}`)]);
  await second.kill('SIGTERM');
});

t.test('kill -9 while the replacement is verified: on start-up a failing one is rolled back', async (t) => {
  const env = { VERIFY_TIMEOUT: '60', WATCHER_HEAL: 'false' };
  const { c, id, first, replacement, seen, marks } = await killDuringVerification(t, env);
  // Never healthy: the restarted service's verification times out and puts the old one back.
  const second = await startService(t, { ...env, VERIFY_TIMEOUT: '3' }, first.dir);
  marks.push({ at: Date.now(), what: 'service started again' });
  const result = await resultIn(second, id);
  t.not(result.result, 'succeeded', JSON.stringify(result));
  await originalIsBack(t, c);
  printTimeline(t, seen, c, [...marks, auditMark(result, `result ${result.result}`)]);
  t.notOk(
    await docker
      .getContainer(replacement)
      .inspect()
      .catch(() => undefined),
    'the replacement was removed',
  );
  await second.kill('SIGTERM');
});
