// update on the real engine and a real registry: a good v2 pushed under the container's tag is pulled
// and the container re-created on it and verified; a broken v2 (its health check fails) leaves the
// container on v1, healthy, under its name, with the remediation failed and one escalation that names
// both digests.
import type Docker from 'dockerode';
import t, { type Test } from 'tap';
import { asideName } from '../src/actions/recreate.js';
import { defaultActions, registryOf } from '../src/actions/registry.js';
import { updateAction } from '../src/actions/update.js';
import { checkUpdate } from '../src/registry/check.js';
import { ADMIN_TOKEN, RecordingSink, testApp } from './fixtures/app.js';
import { docker, uniqueName, waitForHealth } from './fixtures/docker.js';
import { TEST_LABEL } from './fixtures/labels.js';
import { publish, startRegistry } from './fixtures/registry.js';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
const actions = registryOf([...defaultActions().values(), updateAction]);

const byName = (name: string): Promise<Docker.ContainerInspectInfo | undefined> =>
  docker
    .getContainer(name)
    .inspect()
    .catch(() => undefined);

/** A watched container on `image` whose health check fails while /tmp/broken exists (a broken v2 has it). */
async function createOn(t: Test, image: string): Promise<{ name: string; id: string }> {
  const name = uniqueName('update');
  t.teardown(async () => {
    for (const n of [name, asideName(name)]) {
      await docker
        .getContainer(n)
        .remove({ force: true })
        .catch(() => undefined);
    }
  });
  const c = await docker.createContainer({
    name,
    Image: image,
    Cmd: ['sh', '-c', "trap 'exit 0' TERM; sleep 2147483 & wait"],
    Labels: { [TEST_LABEL]: 'true', 'autoheal.enable': 'true' },
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
  const h = await testApp(t, { actions, env: { VERIFY_TIMEOUT: '30' } });
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
});

t.test('a broken v2: the container ends on v1, healthy, the update failed, one escalation', async (t) => {
  const sink = new RecordingSink();
  const h = await testApp(t, { actions, escalations: sink, env: { VERIFY_TIMEOUT: '8' } });
  const registry = await startRegistry(t);
  const ref = `${registry.host}/ah/${uniqueName('app')}:1`;
  const v1 = await publish(t, ref, { version: '1' });
  const c = await createOn(t, ref);
  const v2 = await publish(t, ref, { version: '2', broken: true });
  const startedAt = Date.now();

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
});
