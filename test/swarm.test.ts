// Swarm services on a real single-node swarm (a private second dockerd): restart is a force update,
// rollback goes back to the previous spec, both verified against the swarm's own task list; a service
// whose tasks fail forever is given up after the cap with one escalation naming the tasks' errors;
// and the task containers are never restarted directly by the container watcher.
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import t from 'tap';
import { SwarmWatcher } from '../src/inputs/swarm-watcher.js';
import { ADMIN_TOKEN, RecordingSink, testApp } from './fixtures/app.js';
import { TEST_IMAGE, uniqueName, waitFor } from './fixtures/docker.js';
import { startSwarm } from './fixtures/swarm.js';
import { watcherApp } from './fixtures/watcher-app.js';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
const swarm = await startSwarm(t);

/** A replicated service of the test image on host networking; its health check fails while /tmp/broken exists. */
async function createService(
  name: string,
  o: { cmd?: string[]; replicas?: number; image?: string; labels?: Record<string, string> } = {},
): Promise<string> {
  const created = (await swarm.docker.createService({
    Name: name,
    Labels: { 'autoheal.enable': 'true', ...o.labels },
    TaskTemplate: {
      ContainerSpec: {
        Image: o.image ?? TEST_IMAGE,
        Command: o.cmd ?? ['sh', '-c', "trap 'exit 0' TERM; sleep 2147483 & wait"],
        Healthcheck: {
          Test: ['CMD-SHELL', 'test ! -f /tmp/broken'],
          Interval: 500_000_000,
          Timeout: 2_000_000_000,
          Retries: 1,
        },
        StopGracePeriod: 2_000_000_000,
      },
      Networks: [{ Target: 'host' }],
      RestartPolicy: { Condition: 'any', Delay: 1_000_000_000 },
    },
    Mode: { Replicated: { Replicas: o.replicas ?? 1 } },
  } as Docker.CreateServiceOptions)) as { id?: string; ID?: string };
  const id = created.id ?? created.ID ?? '';
  t.teardown(() =>
    swarm.docker
      .getService(id)
      .remove()
      .catch(() => undefined),
  );
  return id;
}

const running = async (service: string) =>
  (await swarm.tasks(service)).filter((x) => x.DesiredState === 'running' && x.Status?.State === 'running');

/** The swarm's own task history of a service, one line per task: the evidence of what happened. */
const history = async (service: string) =>
  (await swarm.tasks(service))
    .map(
      (x) =>
        `slot ${x.Slot} ${x.Status?.State} (desired ${x.DesiredState}) force=${x.Spec?.ForceUpdate ?? 0} ${x.Spec?.ContainerSpec?.Image ?? ''} ${x.Status?.Err ?? ''}`,
    )
    .join('\n');

/** The Swarm watcher of an app, started, stopped at the test's end. */
function swarmWatcher(t: { teardown(fn: () => unknown): void }, h: Awaited<ReturnType<typeof testApp>>) {
  const watcher = new SwarmWatcher({
    config: h.config,
    docker: h.docker,
    engine: h.engine,
    log: h.log,
    clock: { now: Date.now },
  });
  watcher.start();
  t.teardown(() => watcher.stop());
  return watcher;
}

const request = async (h: Awaited<ReturnType<typeof testApp>>, target: string, action: string) => {
  const res = await h.app.inject({
    method: 'POST',
    url: '/api/v1/remediations',
    headers: admin,
    payload: { target, action, reason: 'swarm test' },
  });
  t.equal(res.statusCode, 202, res.body);
  return h.settled(String(JSON.parse(res.body).id), 120_000);
};

t.test(
  'restart swarm:NAME is a force update, verified by the tasks running healthy at the new spec',
  async (t) => {
    const h = await testApp(t, {
      env: { DOCKER_HOST: swarm.host, WATCH_SCOPE: 'all', VERIFY_TIMEOUT: '90' },
    });
    const name = uniqueName('svc');
    const id = await createService(name, { replicas: 2 });
    await waitFor('two tasks running', async () => (await running(id)).length === 2, 60_000);
    const before = (await running(id)).map((x) => x.ID);

    const startedAt = Date.now();
    const done = await request(h, `swarm:${name}`, 'restart');
    t.equal(done.state, 'succeeded', JSON.stringify(done));
    t.comment(
      `restart swarm:${name}: ${Date.now() - startedAt} ms to two tasks running healthy at the new spec`,
    );
    t.match(String(done.detail), /ForceUpdate 0 → 1.*2 of 2 tasks running, healthy at the new spec/);
    const after = await running(id);
    t.equal(after.length, 2, 'two tasks run');
    for (const x of after) {
      t.equal(x.Spec?.ForceUpdate, 1, 'each at the new spec');
      t.notOk(before.includes(x.ID), 'a new task');
    }
    t.comment(`the swarm's task history:\n${await history(id)}`);
    t.match(
      h.audit().find((l) => l.event === 'remediation'),
      { container: `swarm:${name}`, action: 'restart', result: 'succeeded' },
    );
  },
);

t.test('rollback swarm:NAME returns the service to its previous image', async (t) => {
  const h = await testApp(t, { env: { DOCKER_HOST: swarm.host, WATCH_SCOPE: 'all', VERIFY_TIMEOUT: '90' } });
  const name = uniqueName('svc');
  const id = await createService(name);
  await waitFor('a task running', async () => (await running(id)).length === 1, 60_000);
  const v2 = `${TEST_IMAGE.replace(/:.*$/, '')}:v2-${name}`;
  await swarm.cli(['tag', TEST_IMAGE, v2]);
  await swarm.cli(['service', 'update', '--detach', '--no-resolve-image', '--image', v2, name]);
  await waitFor(
    'the task on v2',
    async () => (await running(id)).some((x) => x.Spec?.ContainerSpec?.Image === v2),
    60_000,
  );
  const done = await request(h, `swarm:${name}`, 'rollback');
  t.equal(done.state, 'succeeded', JSON.stringify(done));
  const spec = (await swarm.docker.getService(id).inspect()) as {
    Spec: { TaskTemplate: { ContainerSpec: { Image: string } } };
  };
  t.equal(spec.Spec.TaskTemplate.ContainerSpec.Image, TEST_IMAGE, 'the spec is the previous one');
  const now = await running(id);
  t.same(
    now.map((x) => x.Spec?.ContainerSpec?.Image),
    [TEST_IMAGE],
    'its task runs the previous image',
  );
  t.comment(`the swarm's task history:\n${await history(id)}`);
  // A service with no previous spec has nothing to go back to: refused, nothing done.
  const fresh = uniqueName('svc');
  await createService(fresh);
  const refused = await request(h, `swarm:${fresh}`, 'rollback');
  t.equal(refused.state, 'failed');
  t.match(String(refused.detail), /has no previous spec/);
});

t.test(
  'tasks that fail forever: given up after the cap, one escalation with their errors; task containers never restarted directly',
  async (t) => {
    const sink = new RecordingSink();
    const h = await watcherApp(t, {
      escalations: sink,
      env: {
        DOCKER_HOST: swarm.host,
        WATCH_SCOPE: 'all',
        WATCHDOG_INTERVAL: '1',
        MAX_RESTART_ATTEMPTS: '2',
        RESTART_COOLDOWN: '1',
        BACKOFF_MAX: '1',
        VERIFY_TIMEOUT: '6',
      },
    });
    const watcher = swarmWatcher(t, h);
    const name = uniqueName('svc');
    const id = await createService(name, { cmd: ['sh', '-c', 'echo "cannot open /data/db" >&2; exit 3'] });

    const gaveUp = await waitFor(
      'the service to be given up',
      async () => sink.raised.find((e) => e.kind === 'given_up'),
      120_000,
    );
    t.match(gaveUp, { container: `swarm:${name}` });
    t.match(JSON.stringify(gaveUp), /exit 3|non-zero exit/, "the escalation names the tasks' errors");
    t.equal(h.store.record(`swarm:${name}`)?.givenUp, true);
    t.ok(watcher.stats.changes > 0, "the engine's change stream started passes too");
    const actions = () => h.audit().filter((l) => l.event === 'action' && l.container === `swarm:${name}`);
    t.equal(actions().length, 2, 'two attempts, the cap');
    // Swarm goes on restarting it; we do not, and we do not escalate again.
    const passes = watcher.stats.passes;
    await waitFor('five more passes', async () => watcher.stats.passes >= passes + 5, 30_000);
    await sleep(500);
    t.equal(actions().length, 2, 'no action after the give-up');
    t.equal(sink.raised.filter((e) => e.kind === 'given_up').length, 1, 'one escalation');
    t.same(
      h.audit().filter((l) => l.event === 'action' && String(l.container).startsWith(`${name}.`)),
      [],
      'no task container restarted directly',
    );
    const svc = (await swarm.docker.getService(id).inspect()) as {
      Spec: { TaskTemplate: { ForceUpdate?: number } };
    };
    t.equal(svc.Spec.TaskTemplate.ForceUpdate, 2, 'the swarm saw exactly our two force updates');
    const failed = (await swarm.tasks(id)).filter((x) => x.Status?.State === 'failed');
    t.ok(failed.length >= 3, `the swarm's own record: ${failed.length} failed tasks`);
    t.comment(`the swarm's task history:\n${await history(id)}`);
  },
);

t.test('an update Swarm pauses by itself is told to the humans once', async (t) => {
  const sink = new RecordingSink();
  const h = await testApp(t, {
    escalations: sink,
    env: { DOCKER_HOST: swarm.host, WATCH_SCOPE: 'all', WATCHDOG_INTERVAL: '1' },
  });
  const watcher = swarmWatcher(t, h);
  const name = uniqueName('svc');
  const id = await createService(name);
  await waitFor('a task running', async () => (await running(id)).length === 1, 60_000);
  await waitFor('the watcher to know it', async () => watcher.stats.passes >= 2, 30_000);
  // A broken new spec: its task exits at once, and the update is set to pause on a failure.
  await swarm.cli([
    'service',
    'update',
    '--detach',
    '--entrypoint',
    'false',
    '--update-failure-action',
    'pause',
    '--update-monitor',
    '3s',
    '--update-max-failure-ratio',
    '0',
    name,
  ]);
  const told = await waitFor(
    'the escalation',
    async () => sink.raised.find((e) => e.kind === 'swarm_update'),
    90_000,
  );
  t.match(String(told.detail), new RegExp(`Swarm paused the update of swarm:${name}`));
  const passes = watcher.stats.passes;
  await waitFor('three more passes', async () => watcher.stats.passes >= passes + 3, 30_000);
  t.equal(sink.raised.filter((e) => e.kind === 'swarm_update').length, 1, 'once per update');
  t.comment(`the swarm's task history:\n${await history(id)}`);
});

t.test('a task turning unhealthy: healed by an alert on its service, against Swarm left alone', async (t) => {
  const h = await testApp(t, { env: { DOCKER_HOST: swarm.host, WATCH_SCOPE: 'all', VERIFY_TIMEOUT: '90' } });
  const exec = async (containerId: string) => {
    const e = await swarm.docker.getContainer(containerId).exec({ Cmd: ['touch', '/tmp/broken'] });
    await e.start({});
  };
  const containerOf = async (service: string) =>
    String(
      (
        (await swarm.docker.listTasks({
          filters: { service: [service], 'desired-state': ['running'] },
        })) as Array<{
          Status?: { ContainerStatus?: { ContainerID?: string } };
        }>
      )[0]?.Status?.ContainerStatus?.ContainerID ?? '',
    );
  const healthyAgain = async (service: string, broken: string) => {
    await waitFor(
      'a new task running healthy',
      async () => {
        const tasks = await running(service);
        if (tasks.length !== 1) return false;
        const c = await containerOf(service);
        if (!c || c === broken) return false;
        const info = await swarm.docker
          .getContainer(c)
          .inspect()
          .catch(() => undefined);
        return info?.State?.Health?.Status === 'healthy';
      },
      90_000,
    );
  };

  // Swarm left alone: the health check in the spec; Swarm replaces the unhealthy task by itself.
  const alone = uniqueName('svc');
  const aloneId = await createService(alone);
  await waitFor('healthy', async () => (await running(aloneId)).length === 1, 60_000);
  await sleep(1500);
  const c1 = await containerOf(aloneId);
  const t1 = Date.now();
  await exec(c1);
  await healthyAgain(aloneId, c1);
  const swarmMs = Date.now() - t1;

  // Ours: the alert for the task's service (cAdvisor's label) arrives as the task turns unhealthy.
  const ours = uniqueName('svc');
  const oursId = await createService(ours);
  await waitFor('healthy', async () => (await running(oursId)).length === 1, 60_000);
  await sleep(1500);
  const c2 = await containerOf(oursId);
  const t2 = Date.now();
  await exec(c2);
  const res = await h.postAlerts([
    {
      labels: {
        alertname: 'ContainerUnhealthy',
        container_label_com_docker_swarm_service_name: ours,
        name: `${ours}.1.xyz`,
        remediation: 'restart',
      },
      fingerprint: `fp-${ours}`,
    },
  ]);
  t.equal(res.statusCode, 200, res.body);
  await healthyAgain(oursId, c2);
  const oursMs = Date.now() - t2;
  const done = await waitFor(
    'the remediation',
    async () => h.audit().find((l) => l.event === 'remediation' && l.container === `swarm:${ours}`),
    60_000,
  );
  t.match(done, { action: 'restart' }, 'the alert acted on the service, not on the task container');
  t.comment(
    `a task turning unhealthy → its service's tasks running healthy again: Swarm left alone ${swarmMs} ms; through an alert on the service ${oursMs} ms`,
  );
  t.comment(`the swarm's task history (ours):\n${await history(oursId)}`);
});

t.test(
  'an engine that is not a Swarm manager: a clear 400, nothing queued; an unknown service: 404',
  async (t) => {
    const plain = await testApp(t);
    const res = await plain.app.inject({
      method: 'POST',
      url: '/api/v1/remediations',
      headers: admin,
      payload: { target: 'swarm:web', action: 'restart' },
    });
    t.equal(res.statusCode, 400, res.body);
    t.match(JSON.parse(res.body), { error: 'bad_target', message: /not part of a Swarm/ });
    t.same(plain.store.listRemediations(), []);
    const h = await testApp(t, { env: { DOCKER_HOST: swarm.host } });
    const missing = await h.app.inject({
      method: 'POST',
      url: '/api/v1/remediations',
      headers: admin,
      payload: { target: 'swarm:nope', action: 'restart' },
    });
    t.equal(missing.statusCode, 404, missing.body);
    const wrong = await h.app.inject({
      method: 'POST',
      url: '/api/v1/remediations',
      headers: admin,
      payload: { target: 'swarm:nope', action: 'stop_start' },
    });
    t.equal(wrong.statusCode, 400, 'stop_start does not act on Swarm services');
  },
);

t.test(
  'scale_up and scale_down on a Swarm service: Replicas within its limits, back down once the alerts resolve',
  async (t) => {
    const h = await testApp(t, {
      env: {
        DOCKER_HOST: swarm.host,
        WATCH_SCOPE: 'all',
        VERIFY_TIMEOUT: '90',
        RESTART_COOLDOWN: '1',
        SCALE_DOWN_STABILIZATION: '2',
      },
    });
    const name = uniqueName('scaled');
    const id = await createService(name, { replicas: 1, labels: { 'autoheal.scale.max': '2' } });
    await waitFor('one task running', async () => (await running(id)).length === 1, 60_000);
    const replicas = async () =>
      (
        (await swarm.docker.getService(id).inspect()) as {
          Spec: { Mode: { Replicated: { Replicas: number } } };
        }
      ).Spec.Mode.Replicated.Replicas;
    const alert = (n: number, status: 'firing' | 'resolved' = 'firing') => ({
      labels: { alertname: 'ServiceBusy', remediation: 'scale_up', swarm_service: name },
      status,
      fingerprint: `${name}-fp${n}`,
      startsAt: '2026-12-04T00:00:00Z',
    });

    const firedAt = Date.now();
    await h.postAlerts([alert(1)]);
    await h.engine.idle();
    t.equal(await replicas(), 2, 'one more replica');
    t.equal((await running(id)).length, 2, 'two tasks running');
    t.comment(`firing alert → two tasks running healthy (verified): ${Date.now() - firedAt} ms`);
    const up = h.audit().find((l) => l.event === 'remediation' && l.action === 'scale_up');
    t.match(up, {
      container: `swarm:${name}`,
      result: 'succeeded',
      detail: /1 → 2 replicas; 2 of 2 tasks running/,
    });
    t.equal(await h.metric('autoheal_replicas', { service: `swarm:${name}` }), 2);

    await new Promise((r) => setTimeout(r, 1100));
    await h.postAlerts([alert(2)]);
    await h.engine.idle();
    t.equal(await replicas(), 2, 'never above autoheal.scale.max=2');
    t.match(
      h.audit().find((l) => l.event === 'decision' && l.reason === 'scale_limit'),
      { container: `swarm:${name}`, detail: /2 replicas, at its maximum \(autoheal.scale.max=2\)/ },
    );

    await h.postAlerts([alert(1, 'resolved')]);
    await new Promise((r) => setTimeout(r, 4000));
    t.equal(await replicas(), 2, 'held up while the second alert fires');
    await h.postAlerts([alert(2, 'resolved')]);
    await waitFor('back to one replica', async () => (await replicas()) === 1, 30_000);
    await waitFor('one task running', async () => (await running(id)).length === 1, 60_000);
    await h.engine.idle();
    t.same(h.store.scaleLedger(), {}, 'forgotten once back at its baseline');
    t.match(
      h.audit().find((l) => l.event === 'remediation' && l.action === 'scale_down'),
      { container: `swarm:${name}`, result: 'succeeded', detail: /2 → 1 replicas/ },
    );
    const below = await h.app.inject({
      method: 'POST',
      url: '/api/v1/remediations',
      headers: admin,
      payload: { target: `swarm:${name}`, action: 'scale_down', reason: 'test' },
    });
    const refused = await h.settled(String(JSON.parse(below.body).id), 30_000);
    t.match(refused, {
      state: 'skipped',
      skipReason: 'scale_limit',
      detail: /at its minimum \(SCALE_MIN=1\)/,
    });
    t.comment(`the swarm's task history:\n${await history(id)}`);
  },
);
