// restart_stack through the service's own doors on the real engine: the admin API with project:NAME and
// an alert whose remediation label asks for it with a project label. The order within the project and
// the health gating are checked against the engine in test/restart-stack.test.ts.
import type Docker from 'dockerode';
import t, { type Test } from 'tap';
import { adminApp, adminAuth } from './fixtures/admin-app.js';
import { createTestContainer, docker, waitFor, waitForHealth } from './fixtures/docker.js';

type App = Awaited<ReturnType<typeof adminApp>>;

/** db ← app ← web as Compose v2 labels them, in a project of its own; all watched. */
async function stack(t: Test) {
  const project = `stack${Math.random().toString(16).slice(2, 8)}`;
  const labels = (service: string, dependsOn?: string) => ({
    'autoheal.enable': 'true',
    'com.docker.compose.project': project,
    'com.docker.compose.service': service,
    ...(dependsOn ? { 'com.docker.compose.depends_on': dependsOn } : {}),
  });
  const db = await createTestContainer(t, { labels: labels('db') });
  const app = await createTestContainer(t, { labels: labels('app', 'db:service_healthy:true') });
  const web = await createTestContainer(t, { labels: labels('web', 'app:service_healthy:true') });
  for (const c of [db, app, web]) await waitForHealth(c.name, 'healthy');
  return { project, names: [db.name, app.name, web.name] };
}

const startedAt = async (name: string) =>
  Date.parse(((await docker.getContainer(name).inspect()) as Docker.ContainerInspectInfo).State.StartedAt);

async function restartedInOrder(t: Test, names: string[], before: number[]) {
  const after = await Promise.all(names.map(startedAt));
  for (const [i, s] of after.entries()) t.ok(s > (before[i] ?? 0), `${names[i]} was restarted`);
  t.ok((after[0] ?? 0) < (after[1] ?? 0) && (after[1] ?? 0) < (after[2] ?? 0), 'db, then app, then web');
}

async function post(a: App, payload: object) {
  const res = await a.app.inject({
    method: 'POST',
    url: '/api/v1/remediations',
    headers: adminAuth(),
    payload,
  });
  return { status: res.statusCode, body: JSON.parse(res.body) as Record<string, unknown> };
}

t.test('POST restart_stack project:NAME restarts the project in order, one incident', async (t) => {
  const a = await adminApp(t);
  const s = await stack(t);
  const before = await Promise.all(s.names.map(startedAt));
  const res = await post(a, { action: 'restart_stack', target: `project:${s.project}` });
  t.equal(res.status, 202);
  t.equal(res.body.target, `project:${s.project}`);
  const done = await a.settled(String(res.body.id), 60_000);
  t.equal(done.state, 'succeeded', String(done.detail));
  await restartedInOrder(t, s.names, before);
  const incidents = a.store.listIncidents({ container: `project:${s.project}` });
  t.equal(incidents.length, 1, 'the chain is one incident');
  t.equal(incidents[0]?.status, 'recovered');
  t.equal(a.audit().filter((l) => l.event === 'step' && l.remediationId === res.body.id).length, 3);
});

t.test('restart_stack of something that is not a project is refused before any engine call', async (t) => {
  const a = await adminApp(t);
  for (const target of ['web', 'service:shop/web', 'host', undefined]) {
    const res = await post(a, { action: 'restart_stack', ...(target === undefined ? {} : { target }) });
    t.equal(res.status, 400, String(target));
    t.equal(res.body.error, 'bad_target', String(target));
  }
  t.equal((await post(a, { action: 'restart_stack', target: 'project:nosuchproject' })).status, 404);
});

t.test('an alert with remediation=restart_stack and a project label restarts that project', async (t) => {
  const a = await adminApp(t);
  const s = await stack(t);
  const before = await Promise.all(s.names.map(startedAt));
  const res = await a.postAlerts([
    { labels: { alertname: 'StackDegraded', remediation: 'restart_stack', project: s.project } },
  ]);
  t.equal(res.statusCode, 200);
  await waitFor(
    'the stack remediation to finish',
    async () =>
      a.audit().find((l) => l.event === 'remediation' && l.target === `project:${s.project}`) ?? undefined,
    60_000,
  );
  await restartedInOrder(t, s.names, before);
});
