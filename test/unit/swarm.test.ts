// Swarm without Docker: which task failures are news, when Swarm's own update is told, the service as
// the policy sees it, task containers out of scope, and alert labels that name a Swarm service.
import pino from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import { checkScope } from '../../src/core/scope.js';
import { swarmPass, taskEvidence } from '../../src/core/swarm-rules.js';
import { targetFromLabels, targetOfRecord } from '../../src/core/targets.js';
import type { SwarmService, SwarmTask } from '../../src/docker/client.js';
import { serviceView } from '../../src/engine/swarm-path.js';
import { SwarmWatcher } from '../../src/inputs/swarm-watcher.js';
import { createMetrics } from '../../src/metrics.js';
import { FakeDocker } from '../fixtures/fake-docker.js';
import { NOW } from '../fixtures/views.js';

const svc = (o: Partial<SwarmService> = {}): SwarmService => ({
  id: 's1',
  name: 'web',
  labels: { 'autoheal.enable': 'true' },
  version: 7,
  image: 'app:1',
  replicas: 1,
  hasHealthCheck: true,
  forceUpdate: 0,
  hasPreviousSpec: false,
  ...o,
});
const task = (id: string, state: string, o: Partial<SwarmTask> = {}): SwarmTask => ({
  id,
  serviceId: 's1',
  slot: 1,
  state,
  desiredState: state === 'running' ? 'running' : 'shutdown',
  message: state,
  at: NOW - 1000,
  image: 'app:1',
  forceUpdate: 0,
  ...o,
});

t.test('swarmPass: each failed task is news once; old ones at first sight are history', async (t) => {
  const tasks = [
    task('a', 'failed', { error: 'task: non-zero exit (3)', exitCode: 3 }),
    task('b', 'running'),
  ];
  t.same(
    swarmPass({ service: svc(), tasks, seen: new Set(), reported: undefined, first: true }).failures,
    [],
  );
  const next = swarmPass({ service: svc(), tasks, seen: new Set(), reported: undefined, first: false });
  t.same(
    next.failures.map((x) => x.id),
    ['a'],
  );
  t.same(
    swarmPass({ service: svc(), tasks, seen: new Set(['a']), reported: undefined, first: false }).failures,
    [],
  );
  t.equal(taskEvidence(next.failures), 'task 1 failed (exit 3): task: non-zero exit (3)');
  const updating = svc({ updateState: 'updating' });
  t.same(
    swarmPass({ service: updating, tasks, seen: new Set(), reported: undefined, first: false }).failures,
    [],
    "during Swarm's own update, its tasks' failures are the update's",
  );
});

t.test(
  'swarmPass: an update Swarm halted is told once; one halted before we looked is history',
  async (t) => {
    const paused = svc({
      updateState: 'paused',
      updateMessage: 'update paused due to failure',
      updateStartedAt: NOW,
    });
    const first = swarmPass({
      service: paused,
      tasks: [],
      seen: new Set(),
      reported: undefined,
      first: true,
    });
    t.equal(first.halted, undefined);
    t.equal(first.reported, `${NOW}:paused`, 'kept as already reported');
    const fresh = swarmPass({
      service: paused,
      tasks: [],
      seen: new Set(),
      reported: undefined,
      first: false,
    });
    t.match(fresh.halted, { state: 'paused', message: 'update paused due to failure' });
    t.equal(
      swarmPass({ service: paused, tasks: [], seen: new Set(), reported: fresh.reported, first: false })
        .halted,
      undefined,
      'not twice',
    );
    const completed = svc({ updateState: 'completed', updateStartedAt: NOW });
    t.equal(
      swarmPass({ service: completed, tasks: [], seen: new Set(), reported: undefined, first: false }).halted,
      undefined,
    );
  },
);

t.test('serviceView: the service as the policy sees it, under swarm:NAME', async (t) => {
  t.match(serviceView(svc(), [task('b', 'running')], NOW), {
    name: 'swarm:web',
    state: 'running',
    health: 'healthy',
  });
  t.match(serviceView(svc(), [task('a', 'failed'), task('b', 'running')], NOW), { health: 'unhealthy' });
  t.match(serviceView(svc(), [task('a', 'failed', { at: NOW - 10 * 60_000 }), task('b', 'running')], NOW), {
    health: 'healthy',
  });
  t.match(serviceView(svc(), [task('c', 'starting', { desiredState: 'running' })], NOW), {
    health: 'unhealthy',
  });
});

t.test("a Swarm task's container is never in scope: healed through its service", async (t) => {
  const c = {
    id: 'c1',
    name: 'web.1.abc',
    labels: {
      'autoheal.enable': 'true',
      'com.docker.swarm.task.id': 'x',
      'com.docker.swarm.service.name': 'web',
    },
    state: 'running',
    health: 'unhealthy' as const,
  };
  t.match(checkScope(c, { scope: 'all', composeProject: undefined, selfContainerId: undefined }), {
    ok: false,
    reason: 'not_in_scope',
    detail: /healed through its service \(swarm:web\)/,
  });
});

t.test('alert labels naming a Swarm service win over the task container name', async (t) => {
  t.same(targetFromLabels({ swarm_service: 'web' }), { kind: 'swarm', service: 'web' });
  t.same(targetFromLabels({ name: 'web.1.abc', container_label_com_docker_swarm_service_name: 'web' }), {
    kind: 'swarm',
    service: 'web',
  });
  t.same(targetFromLabels({ name: 'db' }), { kind: 'container', name: 'db' });
  t.same(targetOfRecord('swarm:web'), { kind: 'swarm', service: 'web' });
  t.same(targetOfRecord('db'), { kind: 'container', name: 'db' });
});

t.test(
  'the Swarm watcher: one task listing per pass, and the replicas of services that set a scale limit',
  async (t) => {
    const docker = new FakeDocker({ recordCalls: true });
    docker.swarm = 'manager';
    docker.services.push(
      svc({
        id: 's1',
        name: 'web',
        replicas: 3,
        labels: { 'autoheal.enable': 'true', 'autoheal.scale.max': '5' },
      }),
      svc({ id: 's2', name: 'db', replicas: 1 }),
    );
    docker.tasks.push(task('a', 'running'), task('b', 'running', { serviceId: 's2' }));
    let listings = 0;
    const listTasks = docker.listTasks.bind(docker);
    docker.listTasks = (id?: string) => {
      listings++;
      return listTasks(id);
    };
    const metrics = createMetrics(new Registry(), { defaultMetrics: false });
    const seen: string[] = [];
    const watcher = new SwarmWatcher({
      config: { watchdogIntervalMs: 60_000, watcherHeal: true },
      docker,
      engine: {
        ingest: () => ({ accepted: [], duplicates: 0 }),
        notifyOnly: () => undefined,
        observe: (v) => {
          seen.push(v.name);
        },
        policyContext: { scope: 'all', composeProject: undefined, selfContainerId: undefined } as never,
      },
      log: pino({ level: 'silent' }),
      clock: { now: () => NOW },
      metrics,
    });
    await watcher.pass();
    t.equal(listings, 1, 'one listing for both services');
    t.same(seen.sort(), ['swarm:db', 'swarm:web']);
    const replicas = (await metrics.replicas.get()).values;
    t.same(
      replicas.map((v) => [v.labels.service, v.value]),
      [['swarm:web', 3]],
      'only the service that sets a scale limit',
    );
  },
);
