// The health watcher against the real Docker engine: heals from the engine's own events, respects
// operators (docker stop, start period), de-duplicates against alerts, and keeps its gauges bounded.
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { amPayload, bearer, type RecordingSink } from './fixtures/app.js';
import {
  breakContainer,
  createTestContainer,
  docker,
  exec,
  healthOf,
  restartCountOf,
  waitFor,
  waitForHealth,
} from './fixtures/docker.js';
import { watcherApp } from './fixtures/watcher-app.js';

const startedAt = async (name: string) => (await restartCountOf(name)).startedAt;

t.test(
  'an unhealthy watched container is restarted from the event, with no alert, and is healthy again',
  async (t) => {
    const h = await watcherApp(t);
    const c = await createTestContainer(t, { labels: h.labels });
    await waitForHealth(c.name, 'healthy');
    const before = await startedAt(c.name);
    await breakContainer(c.name);
    await waitFor('a restart', async () => (await startedAt(c.name)) !== before, 20_000);
    await waitForHealth(c.name, 'healthy');
    const done = await waitFor('the verified remediation', async () => h.auditFor(c.name, 'remediation')[0]);
    t.equal(done.result, 'succeeded');
    t.equal(done.source, 'docker_event', 'the event stream, not an alert or the poll, found it');
    t.equal(h.auditFor(c.name, 'action').length, 1, 'one action');
    const decision = h.auditFor(c.name, 'decision').find((l) => l.verdict === 'act');
    t.match(decision, { source: 'docker_event', reason: 'ok', action: 'restart' });
    const incidents = h.store.listIncidents({ container: c.name });
    t.equal(incidents.length, 1, 'one incident');
    t.equal(incidents[0]?.status, 'recovered');
    t.same(
      (h.escalations as RecordingSink).raised.map((e) => e.kind),
      [],
      'healed without any alert',
    );
    t.equal(await h.metric('autoheal_container_healthy', { container: c.name }), 1);
  },
);

t.test('docker stop is respected; a container that exits by itself is healed', async (t) => {
  const h = await watcherApp(t, { env: { WATCHDOG_INTERVAL: '1' } });
  const stopped = await createTestContainer(t, { labels: h.labels });
  const crashed = await createTestContainer(t, { labels: h.labels });
  await waitForHealth(stopped.name, 'healthy');
  await waitForHealth(crashed.name, 'healthy');

  await docker.getContainer(stopped.name).stop({ t: 2 });
  const crashedStart = await startedAt(crashed.name);
  // PID 1 traps TERM and exits 0: the engine reports a die with no kill or stop before it.
  // The exec itself dies with the container (exit 137): that is the point.
  await exec(crashed.name, ['kill', '1']).catch(() => undefined);

  await waitFor('the crashed container to run again', async () => {
    const info = await docker.getContainer(crashed.name).inspect();
    return info.State.Running && info.State.StartedAt !== crashedStart;
  });
  await waitForHealth(crashed.name, 'healthy');
  const healed = await waitFor('the remediation', async () => h.auditFor(crashed.name, 'remediation')[0]);
  t.equal(healed.result, 'succeeded');
  t.match(h.auditFor(crashed.name, 'decision')[0], { source: 'docker_event', reason: 'ok' });

  // Two reconcile passes later the stopped one is still stopped and nothing was tried on it.
  const passes = h.watcher.stats.reconciles;
  await waitFor('two reconcile passes', async () => h.watcher.stats.reconciles >= passes + 2, 10_000);
  const info = await docker.getContainer(stopped.name).inspect();
  t.equal(info.State.Running, false, 'not restarted');
  t.equal(h.auditFor(stopped.name, 'action').length, 0, 'no action on the stopped container');
  t.equal(h.store.record(stopped.name)?.stoppedByOperator, true, 'recorded as stopped by an operator');
  t.equal(await h.metric('autoheal_container_up', { container: stopped.name }), 0);

  // Started again by the operator: watched and healed again.
  await docker.getContainer(stopped.name).start();
  await waitFor(
    'the operator mark to clear',
    async () => h.store.record(stopped.name)?.stoppedByOperator === false,
  );
});

t.test('a container inside its start period is not restarted', async (t) => {
  const h = await watcherApp(t);
  const c = await createTestContainer(t, { labels: { ...h.labels, 'autoheal.start_period': '60' } });
  await waitForHealth(c.name, 'healthy');
  const before = await restartCountOf(c.name);
  await breakContainer(c.name);
  await waitForHealth(c.name, 'unhealthy');
  const d = await waitFor('the decision', async () => h.auditFor(c.name, 'decision')[0]);
  t.match(d, { source: 'docker_event', verdict: 'skip', reason: 'start_period' });
  await sleep(1500);
  t.same(await restartCountOf(c.name), before, 'not restarted');
  t.equal(await healthOf(c.name), 'unhealthy');
  t.equal(h.auditFor(c.name, 'action').length, 0);
});

t.test('the event and then an alert for the same failure lead to one action', async (t) => {
  const h = await watcherApp(t, { env: { RESTART_COOLDOWN: '60' } });
  const c = await createTestContainer(t, { labels: h.labels });
  await waitForHealth(c.name, 'healthy');
  await breakContainer(c.name);
  await waitFor('the watcher to act', async () => h.auditFor(c.name, 'action')[0]);
  // Alertmanager's alert for the same failure arrives after its group_wait, during or after the fix.
  const res = await h.app.inject({
    method: 'POST',
    url: '/webhooks/alertmanager',
    headers: bearer(),
    payload: amPayload([
      {
        labels: {
          alertname: 'ContainerUnhealthy',
          container: c.name,
          remediation: 'restart',
          severity: 'warning',
        },
      },
    ]),
  });
  t.equal(res.statusCode, 200);
  await waitFor('the verified remediation', async () => h.auditFor(c.name, 'remediation')[0]);
  await h.engine.idle();
  t.equal(h.auditFor(c.name, 'action').length, 1, 'one action for both signals');
  const fromAlert = h.auditFor(c.name, 'decision').filter((l) => l.source === 'alertmanager');
  t.equal(fromAlert.length, 1);
  t.match(
    fromAlert[0]?.reason,
    /^(in_progress|cooldown_active)$/,
    'the alert found the action under way or done',
  );
  await waitForHealth(c.name, 'healthy');
});

t.test('WATCHER_HEAL=false: gauges only, never a signal', async (t) => {
  const h = await watcherApp(t, { env: { WATCHER_HEAL: 'false' } });
  const c = await createTestContainer(t, { labels: h.labels });
  await waitForHealth(c.name, 'healthy');
  await waitFor(
    'the healthy gauge',
    async () => (await h.metric('autoheal_container_healthy', { container: c.name })) === 1,
  );
  await breakContainer(c.name);
  await waitForHealth(c.name, 'unhealthy');
  await waitFor(
    'the unhealthy gauge',
    async () => (await h.metric('autoheal_container_healthy', { container: c.name })) === 0,
  );
  await sleep(1000);
  t.equal(h.auditFor(c.name, 'decision').length, 0, 'nothing ingested');
  t.equal(await healthOf(c.name), 'unhealthy', 'left alone');
});

t.test('gauges: watched containers only, series removed when the container goes', async (t) => {
  const h = await watcherApp(t);
  const watched = await createTestContainer(t, { labels: h.labels, healthCheck: false });
  const other = await createTestContainer(t, { healthCheck: false });
  await waitFor(
    'the watched series',
    async () => (await h.metric('autoheal_container_up', { container: watched.name })) === 1,
  );
  const text = await h.metrics.registry.metrics();
  t.match(
    text,
    `autoheal_container_healthy{container="${watched.name}",service="svc",project="${h.project}"} 1`,
    'healthy (no health check, running) with service and project labels',
  );
  t.match(
    text,
    `autoheal_container_restarts{container="${watched.name}",service="svc",project="${h.project}"} 0`,
  );
  t.notMatch(text, other.name, 'no series for a container out of scope');
  t.ok((await h.metric('autoheal_docker_events_total', { action: 'start' })) >= 1, 'events counted');
  t.equal(await h.metric('autoheal_docker_connected'), 1);

  await docker.getContainer(watched.name).remove({ force: true });
  await waitFor('the series to go', async () => !(await h.metrics.registry.metrics()).includes(watched.name));
  t.pass('series removed on destroy');
  t.equal(h.watcher.watchedCount, 0);
});
