// The remediation engine on the real Docker engine: attempts with growing gaps then given up with one
// escalation, stop_start, a Compose service fanned out, and cleanup that respects scope and protection.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { RecordingSink, testApp } from './fixtures/app.js';
import {
  breakContainer,
  createTestContainer,
  docker,
  restartCountOf,
  TEST_IMAGE,
  waitFor,
  waitForHealth,
} from './fixtures/docker.js';

const run = promisify(execFile);

t.test(
  'a container that never recovers: exactly MAX_RESTART_ATTEMPTS restarts with growing gaps, then given up once',
  async (t) => {
    const sink = new RecordingSink();
    const h = await testApp(t, {
      escalations: sink,
      env: { MAX_RESTART_ATTEMPTS: '3', RESTART_COOLDOWN: '1', BACKOFF_MAX: '60', VERIFY_TIMEOUT: '5' },
    });
    const c = await createTestContainer(t, {
      labels: { 'autoheal.enable': 'true' },
      recoverOnRestart: false,
      startBroken: true,
    });
    await waitForHealth(c.name, 'unhealthy');
    const labels = {
      alertname: 'ContainerUnhealthy',
      container: c.name,
      remediation: 'restart',
      severity: 'warning',
    };
    const res = await h.postAlerts([{ labels }]);
    t.equal(res.statusCode, 200);

    await waitFor('given up', async () => h.store.record(c.name)?.givenUp, 40_000);
    // Alertmanager keeps re-sending while the alert fires: no further action.
    await h.postAlerts([{ labels, startsAt: '2026-11-28T01:00:00Z' }]);
    await h.engine.idle();

    const actions = h.audit().filter((l) => l.event === 'action' && l.container === c.name);
    t.equal(actions.length, 3, 'three restarts');
    const times = actions.map((l) => Date.parse(String(l.time)));
    const gaps = times.slice(1).map((x, i) => x - (times[i] ?? 0));
    t.ok((gaps[1] ?? 0) > (gaps[0] ?? 0), `gaps grow: ${gaps.join(' ms, ')} ms`);
    t.same(
      actions.map((l) => l.attempt),
      [1, 2, 3],
    );
    t.equal(new Set(actions.map((l) => l.incidentId)).size, 1, 'one incident throughout');
    t.equal(
      h.audit().filter((l) => l.event === 'remediation' && l.container === c.name && l.result === 'failed')
        .length,
      3,
    );

    const givenUp = sink.raised.filter((e) => e.kind === 'given_up');
    t.equal(givenUp.length, 1, 'one escalation');
    t.equal(givenUp[0]?.container, c.name);
    t.equal(givenUp[0]?.attempts.length, 3, 'the escalation lists the attempts');
    t.match(
      givenUp[0]?.lastHealthOutput ?? '',
      /present/,
      `with the last health-check output: ${JSON.stringify(givenUp[0])}`,
    );
    t.equal(await h.metric('autoheal_given_up_containers'), 1);
    t.equal(await h.metric('autoheal_escalations_total', { kind: 'given_up' }), 1);
    t.ok((await h.metric('autoheal_decisions_total', { reason: 'given_up' })) >= 1);
    t.equal(h.store.listIncidents({ container: c.name })[0]?.status, 'given_up');

    // An operator reset lifts it.
    h.engine.reset(c.name);
    t.equal(h.store.record(c.name)?.givenUp, false);
    t.equal(await h.metric('autoheal_given_up_containers'), 0);
  },
);

t.test('stop_start stops and starts the container and verifies it', async (t) => {
  const h = await testApp(t);
  const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' } });
  await waitForHealth(c.name, 'healthy');
  await breakContainer(c.name);
  await waitForHealth(c.name, 'unhealthy');
  const before = await restartCountOf(c.name);
  await h.postAlerts([{ labels: { alertname: 'X', container: c.name, remediation: 'stop_start' } }]);
  await h.engine.idle();
  const result = h.audit().find((l) => l.event === 'remediation' && l.container === c.name);
  t.match(result, { action: 'stop_start', result: 'succeeded' });
  t.match(String(result?.detail), /stopped, then started/);
  t.not((await restartCountOf(c.name)).startedAt, before.startedAt);
});

t.test(
  'a Compose service label names every container of the service, each under its own policy',
  async (t) => {
    const h = await testApp(t);
    const project = `p${Date.now().toString(36)}`;
    const labels = (n: number) => ({
      'autoheal.enable': 'true',
      'com.docker.compose.project': project,
      'com.docker.compose.service': 'web',
      'com.docker.compose.container-number': String(n),
    });
    const a = await createTestContainer(t, { labels: labels(1) });
    const b = await createTestContainer(t, { labels: labels(2) });
    const other = await createTestContainer(t, {
      labels: { ...labels(1), 'com.docker.compose.project': `${project}x` },
    });
    await Promise.all([a, b, other].map((c) => waitForHealth(c.name, 'healthy')));
    const before = await restartCountOf(other.name);
    await h.postAlerts([
      {
        labels: {
          alertname: 'X',
          container_label_com_docker_compose_service: 'web',
          container_label_com_docker_compose_project: project,
          remediation: 'restart',
        },
      },
    ]);
    await h.engine.idle();
    const done = h
      .audit()
      .filter((l) => l.event === 'remediation')
      .map((l) => l.container);
    t.same(done.sort(), [a.name, b.name].sort());
    t.same(await restartCountOf(other.name), before, 'the other project is untouched');
    t.ok(h.store.record(a.name) && h.store.record(b.name), 'separate records');
  },
);

t.test('DRY_RUN decides and counts but touches nothing', async (t) => {
  const h = await testApp(t, { env: { DRY_RUN: 'true' } });
  const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' } });
  await waitForHealth(c.name, 'healthy');
  const before = await restartCountOf(c.name);
  await h.postAlerts([{ labels: { alertname: 'X', container: c.name, remediation: 'restart' } }]);
  await h.engine.idle();
  t.same(await restartCountOf(c.name), before);
  t.equal(await h.metric('autoheal_decisions_total', { reason: 'dry_run' }), 1);
  t.equal(await h.metric('autoheal_remediations_total', { action: 'restart', result: 'dry_run' }), 1);
  t.equal(h.store.record(c.name), undefined, 'no state changed');
});

t.test(
  'cleanup removes a stopped in-scope container and a dangling image; keeps volumes, protected and unlabelled ones',
  async (t) => {
    const sink = new RecordingSink();
    const h = await testApp(t, { escalations: sink, env: { CLEANUP_PRUNE_UNTIL: '0s' } });
    // A stopped container that wrote 200 kB to its writable layer, so the reclaimed bytes are visible.
    // autoheal.on_unhealthy=none: the watchers of other test files running at the same time (label
    // scope) must not restart it while this test's cleanup is about to remove it.
    const stopped = await createTestContainer(t, {
      labels: { 'autoheal.enable': 'true', 'autoheal.on_unhealthy': 'none' },
      cmd: ['sh', '-c', 'head -c 200000 /dev/zero > /tmp/blob'],
      healthCheck: false,
    });
    await waitFor(
      'the writer to exit',
      async () => (await docker.getContainer(stopped.name).inspect()).State.Status === 'exited',
    );
    const protectedC = await createTestContainer(t, {
      labels: { 'autoheal.enable': 'true', 'autoheal.protect': 'true' },
      start: false,
    });
    const unlabelled = await createTestContainer(t, { start: false });
    const volume = `ah-vol-${Date.now().toString(36)}`;
    await docker.createVolume({ Name: volume, Labels: { 'autoheal.test': 'true' } });
    t.teardown(() =>
      docker
        .getVolume(volume)
        .remove()
        .catch(() => undefined),
    );
    // A dangling image: build a tag twice; the first build loses its tag.
    const tag = `ah-dangling-${Date.now().toString(36)}:latest`;
    const build = async (n: number) => {
      const { stdout } = await run('bash', [
        '-c',
        `printf 'FROM ${TEST_IMAGE}\\nLABEL autoheal.test=true n=${n}\\n' | DOCKER_BUILDKIT=0 docker build -q -t ${tag} -`,
      ]);
      return stdout.trim();
    };
    const first = await build(1);
    await build(2);
    t.teardown(() =>
      docker
        .getImage(tag)
        .remove({ force: true })
        .catch(() => undefined),
    );
    t.ok((await docker.getImage(first).inspect()).RepoTags?.length === 0, 'first image is dangling');
    // The engine compares `until` at whole seconds: an image from this very second is not "older than 0s".
    await new Promise((r) => setTimeout(r, 1100));

    const res = await h.postAlerts([
      { labels: { alertname: 'DiskAlmostFull', remediation: 'cleanup', severity: 'critical' } },
    ]);
    t.equal(res.statusCode, 200);
    await h.engine.idle();

    const exists = async (name: string) =>
      docker
        .getContainer(name)
        .inspect()
        .then(
          () => true,
          () => false,
        );
    t.equal(await exists(stopped.name), false, 'stopped in-scope container removed');
    t.equal(await exists(protectedC.name), true, 'protected container kept');
    t.equal(await exists(unlabelled.name), true, 'container outside the scope kept');
    t.equal(
      await docker
        .getImage(first)
        .inspect()
        .then(
          () => true,
          () => false,
        ),
      false,
      'dangling image removed',
    );
    t.equal(
      await docker
        .getVolume(volume)
        .inspect()
        .then(
          () => true,
          () => false,
        ),
      true,
      'volume kept',
    );
    const line = h.audit().find((l) => l.event === 'remediation' && l.action === 'cleanup');
    t.match(line, { result: 'succeeded' }, JSON.stringify(line));
    t.ok(Number(line?.reclaimedBytes) > 0, `bytes reclaimed reported: ${line?.reclaimedBytes}`);
    t.ok((await h.metric('autoheal_cleanup_reclaimed_bytes_total')) > 0);
    const alert = sink.raised.find((e) => e.kind === 'alert');
    t.match(
      alert,
      { alertname: 'DiskAlmostFull', severity: 'critical' },
      'critical alerts go to the humans with what was done',
    );
    t.equal(alert?.reclaimedBytes, line?.reclaimedBytes);
  },
);

t.test('cleanup truncates an oversized json-file log of a watched container only', async (t) => {
  const h = await testApp(t, { env: { CLEANUP_LOG_MAX_BYTES: '4096', CLEANUP_PRUNE_UNTIL: '24h' } });
  const chatty = [
    'sh',
    '-c',
    "trap 'exit 0' TERM; yes 'autoheal log line' | head -c 60000; sleep 2147483 & wait",
  ];
  const watched = await createTestContainer(t, {
    labels: { 'autoheal.enable': 'true' },
    cmd: chatty,
    healthCheck: false,
  });
  const other = await createTestContainer(t, { cmd: chatty, healthCheck: false });
  const { stat } = await import('node:fs/promises');
  const logPath = async (name: string) => (await docker.getContainer(name).inspect()).LogPath;
  await waitFor('logs written', async () => (await stat(await logPath(watched.name))).size > 60_000);
  await waitFor('logs written', async () => (await stat(await logPath(other.name))).size > 60_000);
  await h.postAlerts([{ labels: { alertname: 'DiskAlmostFull', remediation: 'cleanup' } }]);
  await h.engine.idle();
  t.equal((await stat(await logPath(watched.name))).size, 0, 'watched container log truncated');
  t.ok((await stat(await logPath(other.name))).size > 60_000, 'unwatched container log untouched');
  const line = h.audit().find((l) => l.event === 'remediation' && l.action === 'cleanup');
  t.same(line?.truncatedLogs, [watched.name]);
  t.ok(Number(line?.reclaimedBytes) > 60_000);
});

t.test(
  'the circuit breaker: past N automatic actions in the window, the next is paused and one escalation sent',
  async (t) => {
    const sink = new RecordingSink();
    const h = await testApp(t, {
      escalations: sink,
      env: { CIRCUIT_MAX_ACTIONS: '2', CIRCUIT_WINDOW: '300' },
    });
    const containers = await Promise.all(
      [1, 2, 3, 4].map(() => createTestContainer(t, { labels: { 'autoheal.enable': 'true' } })),
    );
    await Promise.all(containers.map((c) => waitForHealth(c.name, 'healthy')));
    for (const c of containers) {
      await breakContainer(c.name);
      await waitForHealth(c.name, 'unhealthy');
      await h.postAlerts([{ labels: { alertname: 'X', container: c.name, remediation: 'restart' } }]);
      await h.engine.idle();
    }
    const acted = h
      .audit()
      .filter((l) => l.event === 'action')
      .map((l) => l.container);
    t.same(
      acted,
      containers.slice(0, 3).map((c) => c.name),
      'the action that opens the breaker still runs',
    );
    t.equal(await h.metric('autoheal_decisions_total', { reason: 'circuit_open' }), 1);
    t.equal(await h.metric('autoheal_circuit_open'), 1);
    t.equal(sink.raised.filter((e) => e.kind === 'circuit_open').length, 1, 'one escalation');
    // An operator can still act by hand while the breaker is open.
    const id = h.engine.request({
      id: 'manual-1',
      source: 'manual',
      status: 'firing',
      receivedAt: Date.now(),
      condition: 'requested',
      target: { kind: 'container', name: containers[3]?.name ?? '' },
      action: 'restart',
      params: {},
      labels: {},
      annotations: {},
      requestedBy: 'test',
    });
    await h.engine.idle();
    t.equal(h.store.remediation(id)?.state, 'succeeded');
  },
);

t.test(
  'a manual request for a service reports every container, and its state is the worst of them',
  async (t) => {
    const h = await testApp(t, { env: { VERIFY_TIMEOUT: '5', MAX_RESTART_ATTEMPTS: '3' } });
    const project = `fan${Date.now().toString(36)}`;
    const labels = {
      'autoheal.enable': 'true',
      'com.docker.compose.project': project,
      'com.docker.compose.service': 'api',
    };
    const good = await createTestContainer(t, { labels });
    const bad = await createTestContainer(t, { labels, recoverOnRestart: false, startBroken: true });
    await waitForHealth(good.name, 'healthy');
    await waitForHealth(bad.name, 'unhealthy');
    const id = h.engine.request({
      id: 'fan-1',
      source: 'manual',
      status: 'firing',
      receivedAt: Date.now(),
      condition: 'requested',
      target: { kind: 'service', service: 'api', project },
      action: 'restart',
      params: {},
      labels: {},
      annotations: {},
      requestedBy: 'test',
    });
    await h.engine.idle();
    const r = h.store.remediation(id);
    t.equal(r?.state, 'failed', 'one container failed: the request failed');
    t.same(Object.keys(r?.results ?? {}).sort(), [good.name, bad.name].sort());
    t.equal(r?.results?.[good.name]?.state, 'succeeded');
    t.equal(r?.results?.[bad.name]?.state, 'failed');
  },
);

t.test(
  'the Docker call outlives the stop timeout (autoheal.stop.timeout longer than DOCKER_TIMEOUT)',
  async (t) => {
    // The client's own timeout (3 s) is shorter than the stop timeout (6 s), and leaves the engine
    // 3 s for the kill and the start after it, a margin a busy machine needs.
    const h = await testApp(t, { env: { DOCKER_TIMEOUT: '3' } });
    // PID 1 ignores TERM, so the engine waits the whole stop timeout before it kills.
    const c = await createTestContainer(t, {
      labels: { 'autoheal.enable': 'true', 'autoheal.stop.timeout': '6' },
      cmd: ['sh', '-c', "trap '' TERM; rm -f /tmp/broken; sleep 2147483 & wait; sleep 2147483"],
    });
    await waitForHealth(c.name, 'healthy');
    await breakContainer(c.name);
    await waitForHealth(c.name, 'unhealthy');
    await h.postAlerts([{ labels: { alertname: 'X', container: c.name, remediation: 'restart' } }]);
    await h.engine.idle();
    const line = h.audit().find((l) => l.event === 'remediation' && l.container === c.name);
    t.match(line, { result: 'succeeded' }, JSON.stringify(line));
    t.match(String(line?.detail), /stop timeout 6s/);
    t.ok(
      Number(line?.durationMs) >= 6000,
      `waited the stop timeout (${line?.durationMs} ms), not the 3 s client timeout`,
    );
  },
);

t.test(
  'MAX_RESTART_ATTEMPTS=1: a second restart of a container the first one healed is skipped; nobody is paged',
  async (t) => {
    const sink = new RecordingSink();
    const h = await testApp(t, { escalations: sink, env: { MAX_RESTART_ATTEMPTS: '1' } });
    const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' } });
    await waitForHealth(c.name, 'healthy');
    await breakContainer(c.name);
    await waitForHealth(c.name, 'unhealthy');
    const ask = (id: string) =>
      h.engine.request({
        id,
        source: 'manual',
        status: 'firing',
        receivedAt: Date.now(),
        condition: 'requested',
        target: { kind: 'container', name: c.name },
        action: 'restart',
        params: {},
        labels: {},
        annotations: {},
        requestedBy: 'test',
      });
    t.equal((await h.settled(ask('max1-a'))).state, 'succeeded');
    await waitForHealth(c.name, 'healthy');
    const before = await restartCountOf(c.name);
    const second = await h.settled(ask('max1-b'));
    t.match(second, { state: 'skipped', skipReason: 'max_attempts' });
    t.same(await restartCountOf(c.name), before, 'not restarted');
    t.equal(h.store.record(c.name)?.givenUp, false, 'a healthy container is not given up');
    t.same(
      sink.raised.map((e) => e.kind),
      [],
      'no escalation and no "recovered" message',
    );
    t.equal(await h.metric('autoheal_given_up_containers'), 0);
  },
);
