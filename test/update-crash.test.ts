// update and a kill -9 of the service mid-update, on the real engine and a real registry: the service
// is SIGKILLed while the replacement on v2 is being verified (the v1 container waits aside); a second
// service on the same DATA_DIR finishes the update (a good v2) or rolls it back (a broken v2), and
// exactly one container has the original name. The update is never started again: one pull, one
// create under the name, from both services together.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { asideName } from '../src/core/names.js';
import { ADMIN_TOKEN } from './fixtures/app.js';
import {
  byName,
  docker,
  imageExists,
  removeAtEnd,
  uniqueName,
  waitFor,
  waitForHealth,
} from './fixtures/docker.js';
import { TEST_LABEL } from './fixtures/labels.js';
import { publish, startRegistry } from './fixtures/registry.js';
import { type RunningService, startService } from './fixtures/service.js';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };

interface EngineEvent {
  readonly Type?: string;
  readonly Action?: string;
  readonly status?: string;
  readonly id?: string;
  readonly Actor?: { readonly ID?: string; readonly Attributes?: Record<string, string> };
}

/**
 * The engine's events matching `filters`, followed live from now on (a `since` query would miss
 * some: the engine keeps only its last 256). The stream ends in teardown.
 */
async function recordEvents(
  t: Test,
  filters: Record<string, string[]>,
): Promise<() => ReadonlyArray<EngineEvent>> {
  const stream = (await docker.getEvents({ filters })) as NodeJS.ReadableStream & { destroy?: () => void };
  const seen: EngineEvent[] = [];
  let buf = '';
  stream.on('data', (chunk) => {
    buf += String(chunk);
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) if (l.trim()) seen.push(JSON.parse(l) as EngineEvent);
  });
  stream.on('error', () => undefined);
  t.teardown(() => stream.destroy?.());
  return () => seen;
}

const actionOf = (e: EngineEvent) => e.Action ?? e.status;

/**
 * A watched container on `image`, opted in to updates, sharing `dir` as /state. Its health check
 * fails while /tmp/broken exists (a broken v2 has it); and the first container of the name writes its
 * hostname to /state/owner, so a replacement (another hostname) stays "starting" until /state/go
 * exists: the kill lands while it is verified, whatever the machine's load. The start period keeps a
 * failing check from making it unhealthy, which would end the verification before the kill.
 */
async function createGated(t: Test, image: string, dir: string): Promise<{ name: string; id: string }> {
  const name = uniqueName('update-crash');
  removeAtEnd(t, name);
  const c = await docker.createContainer({
    name,
    Image: image,
    Cmd: [
      'sh',
      '-c',
      "trap 'exit 0' TERM; [ -f /state/owner ] || hostname > /state/owner; sleep 2147483 & wait",
    ],
    Labels: { [TEST_LABEL]: 'true', 'autoheal.enable': 'true', 'autoheal.update': 'apply' },
    StopTimeout: 2,
    Healthcheck: {
      Test: [
        'CMD-SHELL',
        [
          'test ! -f /tmp/broken || { echo "health: /tmp/broken present"; exit 1; }',
          '[ "$(cat /state/owner 2>/dev/null)" = "$(hostname)" ] || [ -f /state/go ] || { echo "replacement: waiting for /state/go"; exit 1; }',
        ].join('; '),
      ],
      Interval: 250_000_000,
      Timeout: 2_000_000_000,
      Retries: 1,
      StartPeriod: 120_000_000_000,
    },
    HostConfig: { NetworkMode: 'none', Binds: [`${dir}:/state`] },
  });
  await c.start();
  await waitForHealth(name, 'healthy', 60_000);
  return { name, id: c.id };
}

/** The remediation as the service reports it, once it has finished. */
const finished = (svc: RunningService, id: string) =>
  waitFor(
    `remediation ${id} to finish`,
    async () => {
      const res = await fetch(`${svc.url}/api/v1/remediations/${id}`, { headers: admin });
      if (!res.ok) return undefined;
      const r = (await res.json()) as { state: string; detail?: string };
      return ['queued', 'running'].includes(r.state) ? undefined : r;
    },
    60_000,
    200,
  );

/** The remediation's result line in a service's audit log, once it is there. */
const resultIn = (svc: RunningService, id: string) =>
  waitFor(
    'the resumed result',
    async () => svc.audit().find((l) => l.event === 'remediation' && l.remediationId === id),
    60_000,
  );

/** The statuses of the container's incidents, as the service reports them. */
async function incidentsOf(svc: RunningService, name: string): Promise<string[]> {
  const res = await fetch(`${svc.url}/api/v1/incidents?container=${name}`, { headers: admin });
  if (!res.ok) throw new Error(`GET incidents: ${res.status} ${await res.text()}`);
  const { incidents } = (await res.json()) as { incidents: Array<{ status: string }> };
  return incidents.map((i) => i.status);
}

/** Exactly the containers, running or not, that have this name (a listing matches names as substrings). */
async function holdersOf(name: string): Promise<string[]> {
  const list = await docker.listContainers({ all: true, filters: { name: [name] } });
  return list.filter((c) => c.Names.includes(`/${name}`)).map((c) => c.Id);
}

/**
 * v1 published and a container on it, v2 (good or broken) published under the same tag, an update
 * requested from a service process, and that process SIGKILLed once the replacement has been
 * started under the name while the v1 container waits aside, that is while the replacement is
 * verified (it cannot pass before /state/go exists). Returns what the restarted service is checked on.
 */
async function killMidUpdate(t: Test, o: { broken: boolean; env: Record<string, string> }) {
  // The services first: teardowns run in the order they were added, so they end before the
  // containers and images are removed.
  let second: RunningService | undefined;
  t.teardown(() => second?.kill('SIGKILL'));
  const first = await startService(t, o.env);
  const dir = mkdtempSync(join(tmpdir(), 'autoheal-update-crash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const registry = await startRegistry(t);
  const repo = `${registry.host}/ah/${uniqueName('app')}`;
  const ref = `${repo}:1`;
  const v1 = await publish(t, ref, { version: '1' });
  const c = await createGated(t, ref, dir);
  const v2 = await publish(t, ref, { version: '2', broken: o.broken });

  const named = await recordEvents(t, { type: ['container'], container: [c.name] });
  const pulls = await recordEvents(t, { type: ['image'], event: ['pull'] });
  const startedAt = Date.now();
  const res = await fetch(`${first.url}/api/v1/remediations`, {
    method: 'POST',
    headers: admin,
    body: JSON.stringify({ target: c.name, action: 'update', reason: 'new image' }),
  });
  if (res.status !== 202) throw new Error(`POST remediations: ${res.status} ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };

  // The engine's start of another container under the name, and the v1 container aside: verification.
  const replacement = await waitFor(
    'the replacement to be started while the v1 container waits aside',
    async () => {
      const started = named().find(
        (e) =>
          actionOf(e) === 'start' && e.Actor?.Attributes?.name === c.name && (e.Actor?.ID ?? e.id) !== c.id,
      );
      if (!started) return undefined;
      const aside = await byName(asideName(c.name));
      return aside?.Id === c.id ? String(started.Actor?.ID ?? started.id) : undefined;
    },
    60_000,
  );
  await first.kill('SIGKILL');
  const now = await byName(c.name);
  t.equal(now?.Id, replacement, 'killed while the replacement holds the name');
  t.equal(now?.Image, v2.id, 'on v2');
  t.equal(now?.State.Health?.Status, 'starting', 'not verified yet');
  t.equal((await byName(asideName(c.name)))?.State.Running, false, 'the v1 container waits aside, stopped');
  t.notOk(
    first.audit().some((l) => l.event === 'remediation' && l.remediationId === id),
    'the first service recorded no result',
  );

  const pullsOf = () => pulls().filter((e) => String(e.Actor?.ID ?? e.id).startsWith(repo)).length;
  const createsOf = () =>
    named().filter((e) => actionOf(e) === 'create' && e.Actor?.Attributes?.name === c.name).length;
  const restart = async (env: Record<string, string>) => {
    second = await startService(t, env, first.dir);
    return second;
  };
  return { c, id, v1, v2, dir, replacement, startedAt, pullsOf, createsOf, restart };
}

t.test('kill -9 of the service mid-update (good v2): on start-up the update is finished', async (t) => {
  const env = { VERIFY_TIMEOUT: '60', WATCHER_HEAL: 'false' };
  const u = await killMidUpdate(t, { broken: false, env });
  // The replacement may pass its health check from now on; only the restarted service verifies it.
  writeFileSync(join(u.dir, 'go'), '');
  const second = await u.restart(env);

  const result = await resultIn(second, u.id);
  t.match(result, { action: 'update', result: 'succeeded', container: u.c.name }, 'the restart recorded it');
  t.match(String(result.detail), /interrupted by a restart of the service/);
  t.match(String(result.detail), /removed the old container/);
  const done = await finished(second, u.id);
  t.equal(done.state, 'succeeded', 'the remediation succeeded');
  t.same(await incidentsOf(second, u.c.name), ['recovered'], 'its incident is closed: recovered');

  t.same(await holdersOf(u.c.name), [u.replacement], 'exactly one container has the name: the replacement');
  const now = await byName(u.c.name);
  t.equal(now?.Image, u.v2.id, 'it runs v2');
  t.equal(now?.State.Health?.Status, 'healthy', 'and is healthy');
  t.notOk(await byName(asideName(u.c.name)), 'nothing left aside');
  t.notOk(await byName(u.c.id), 'the v1 container is gone');
  t.notOk(await imageExists(u.v1.id), 'the v1 image, untagged and unused now, is released');

  t.equal(u.pullsOf(), 1, 'one pull: the update was not started again');
  t.equal(u.createsOf(), 1, 'one create under the name');
  t.comment(`request to finished update across the kill: ${Date.now() - u.startedAt} ms`);
  await second.kill('SIGTERM');
});

t.test('kill -9 of the service mid-update (broken v2): on start-up it is rolled back', async (t) => {
  const env = { VERIFY_TIMEOUT: '60', WATCHER_HEAL: 'false' };
  const u = await killMidUpdate(t, { broken: true, env });
  // Never healthy: the restarted service's verification times out and puts the v1 container back.
  const second = await u.restart({ ...env, VERIFY_TIMEOUT: '5' });

  const result = await resultIn(second, u.id);
  t.match(result, { action: 'update', container: u.c.name }, 'the restart recorded it');
  t.not(result.result, 'succeeded', `not succeeded: ${String(result.detail)}`);
  t.match(String(result.detail), /interrupted by a restart of the service/);
  t.match(String(result.detail), /put back: removed the new container/);
  t.match(String(result.detail), /rolled back to/);
  const done = await finished(second, u.id);
  t.not(done.state, 'succeeded', `the remediation ended ${done.state}`);
  t.same(await incidentsOf(second, u.c.name), ['given_up'], 'its incident is closed: given up (one shot)');

  t.same(await holdersOf(u.c.name), [u.c.id], 'exactly one container has the name: the v1 one');
  const now = await byName(u.c.name);
  t.equal(now?.Image, u.v1.id, 'on the v1 image');
  t.equal(now?.State.Running, true, 'and runs');
  await waitForHealth(u.c.name, 'healthy', 60_000);
  t.notOk(await byName(asideName(u.c.name)), 'nothing left aside');
  t.notOk(await byName(u.replacement), 'the replacement was removed');

  t.equal(u.pullsOf(), 1, 'one pull: the update was not started again');
  t.equal(u.createsOf(), 1, 'one create under the name');
  t.comment(`request to rolled-back update across the kill: ${Date.now() - u.startedAt} ms`);
  await second.kill('SIGTERM');
});
