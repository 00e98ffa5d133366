// GET /api/v1/services on the real engine, with a real Compose project (docker-compose 1.29) watched by
// project scope: its services (replicas, scale limits where labelled, the service's own record after a
// scale step) and the project as a stack (its containers, its last restart_stack), nothing outside the
// scope, and no Swarm on an engine that is not a manager. Refused without the token; an engine that
// does not answer is a clean 503.
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { adminApp, adminAuth } from './fixtures/admin-app.js';
import { upComposeProject } from './fixtures/compose-project.js';
import { createTestContainer, waitFor } from './fixtures/docker.js';

interface Counts {
  total: number;
  running: number;
  healthy: number;
}
interface ServiceList {
  services: Array<{
    key: string;
    project: string;
    service: string;
    replicas: Counts;
    scale?: { min: number; max: number; minFrom: string; maxFrom: string };
    containers: string[];
    attempts: number;
    maxAttempts: number;
    cooldownRemainingSeconds: number;
    pausedUntil: string | null;
    lastAction?: string;
    lastResult?: string;
    lastActionAt?: string;
  }>;
  stacks: Array<{
    project: string;
    containers: Counts;
    services: string[];
    lastRestart?: { id: string; state: string; at: string };
  }>;
  swarm: { manager: boolean; services: unknown[] };
}

const WAIT_MS = 90_000;

t.test('without the admin token the list is refused', async (t) => {
  const { app } = await adminApp(t);
  for (const headers of [{}, adminAuth('not-the-admin-token-at-all')]) {
    const res = await app.inject({ method: 'GET', url: '/api/v1/services', headers });
    t.equal(res.statusCode, 401);
    t.equal(JSON.parse(res.body).error, 'unauthorized');
  }
});

t.test('an engine that does not answer is a 503 that says so', async (t) => {
  const dir = mkdtempSync('/tmp/ahs-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { app } = await adminApp(t, { env: { DOCKER_HOST: `unix://${join(dir, 'docker.sock')}` } });
  const res = await app.inject({ method: 'GET', url: '/api/v1/services', headers: adminAuth() });
  t.equal(res.statusCode, 503);
  const body = JSON.parse(res.body);
  t.equal(body.error, 'docker_unavailable');
  t.match(body.message, /the docker engine did not answer/);
});

t.test('a watched Compose project: its services, its stack, a scale step and a restart_stack', async (t) => {
  const p = await upComposeProject(t, 'svcapi', {
    web: { 'autoheal.scale.min': '1', 'autoheal.scale.max': '3' },
    db: {},
  });
  const a = await adminApp(t, {
    env: { WATCH_SCOPE: 'project', COMPOSE_PROJECT: p.project, VERIFY_TIMEOUT: '30' },
  });
  // Another project's container, outside the scope: not listed.
  await createTestContainer(t, {
    labels: { 'com.docker.compose.project': `${p.project}x`, 'com.docker.compose.service': 'web' },
  });
  const list = async (): Promise<ServiceList> => {
    const res = await a.app.inject({ method: 'GET', url: '/api/v1/services', headers: adminAuth() });
    t.equal(res.statusCode, 200, res.body.slice(0, 300));
    return JSON.parse(res.body) as ServiceList;
  };

  const first = await list();
  t.same(
    first.services.map((s) => s.key),
    [`service:${p.project}/db`, `service:${p.project}/web`],
    'the two services of the project, and only those',
  );
  const web = first.services.find((s) => s.service === 'web');
  t.match(web, {
    project: p.project,
    replicas: { total: 1, running: 1, healthy: 1 },
    scale: { min: 1, max: 3, minFrom: 'autoheal.scale.min=1', maxFrom: 'autoheal.scale.max=3' },
    containers: [p.names.web],
    attempts: 0,
    cooldownRemainingSeconds: 0,
    pausedUntil: null,
  });
  t.equal(first.services.find((s) => s.service === 'db')?.scale, undefined, 'no limits unless labelled');
  t.same(first.stacks.length, 1);
  t.match(first.stacks[0], {
    project: p.project,
    containers: { total: 2, running: 2, healthy: 2 },
    services: ['db', 'web'],
  });
  t.equal(first.stacks[0]?.lastRestart, undefined, 'never restarted');
  t.same(first.swarm, { manager: false, services: [] }, 'this engine is not a Swarm manager');

  const post = async (payload: object) => {
    const res = await a.app.inject({
      method: 'POST',
      url: '/api/v1/remediations',
      headers: adminAuth(),
      payload: { ...payload, reason: 'services api test' },
    });
    t.equal(res.statusCode, 202, res.body);
    return a.settled(String(JSON.parse(res.body).id), WAIT_MS);
  };

  const up = await post({ action: 'scale_up', target: `service:${p.project}/web` });
  t.equal(up.state, 'succeeded', String(up.detail));
  const scaled = await waitFor(
    'two healthy replicas of web',
    async () => {
      const s = (await list()).services.find((x) => x.service === 'web');
      return s?.replicas.healthy === 2 ? s : undefined;
    },
    WAIT_MS,
  );
  t.match(scaled, { replicas: { total: 2, running: 2 }, lastAction: 'scale_up', lastResult: 'succeeded' });
  t.ok(scaled.lastActionAt, 'when');
  t.equal(scaled.containers.length, 2);

  const restarted = await post({ action: 'restart_stack', target: `project:${p.project}` });
  t.equal(restarted.state, 'succeeded', String(restarted.detail));
  const stack = (await list()).stacks[0];
  t.match(stack?.lastRestart, { id: restarted.id, state: 'succeeded' });
  t.match(stack?.containers, { total: 3 });
});
