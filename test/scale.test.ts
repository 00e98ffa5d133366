// auto_scaler on the real engine, with a real Compose project (docker-compose 1.29, network_mode none,
// the locally built test image): a webhook alert adds a replica the way `docker-compose up --scale`
// would (the next container-number, the service's definition), the limits hold under repeated alerts,
// the resolved alerts step the service back down one replica per stabilisation window (never while one
// still fires), and `docker-compose ps` agrees with what the service reports. A new replica that does
// not come up healthy is removed again and escalated; an operator's step outside the limits is refused
// with its reason. The engine's own events make the timeline (printed, never asserted as timings).
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { stringify } from 'yaml';
import { ADMIN_TOKEN, type RecordingSink, testApp } from './fixtures/app.js';
import {
  docker,
  ensureTestImage,
  followEngineEvents,
  TEST_IMAGE,
  uniqueName,
  waitFor,
} from './fixtures/docker.js';
import { TEST_LABEL } from './fixtures/labels.js';
import { type RunningService, startService } from './fixtures/service.js';
import { downProject } from './fixtures/compose-project.js';

const run = promisify(execFile);
const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
const WINDOW_S = 3;

interface Project {
  readonly project: string;
  readonly dir: string;
  compose(...args: string[]): Promise<{ stdout: string; stderr: string }>;
  /** The service's containers as the engine lists them, by name, with state and health. */
  replicas(): Promise<Array<{ name: string; state: string; status: string }>>;
}

/**
 * The health check of the crash test: only the first replica is healthy before /shared/go exists
 * (`$$` is Compose's escape of a `$`).
 */
const GATED = [
  'test ! -f /tmp/broken || { echo "health: /tmp/broken present"; exit 1; }',
  '[ "$$(cat /shared/first 2>/dev/null)" = "$$(hostname)" ] || [ -f /shared/go ] || { echo "new replica: waiting for /shared/go"; exit 1; }',
].join('; ');

/**
 * A project with one service, `web`, scaled between 1 and 3. A replica started while the shared
 * directory holds `fail-new` comes up unhealthy (the ones already running stay healthy). Gated: a
 * replica after the first stays `starting` until the shared directory holds `go`.
 */
async function upProject(t: Test, o: { gated?: boolean } = {}): Promise<Project> {
  await ensureTestImage();
  const project = uniqueName('scale').replace(/-/g, '');
  const dir = mkdtempSync(join(tmpdir(), 'autoheal-scale-'));
  const file = join(dir, 'docker-compose.yml');
  writeFileSync(
    file,
    stringify({
      version: '2.4',
      services: {
        web: {
          image: TEST_IMAGE,
          network_mode: 'none',
          volumes: [`${dir}:/shared`],
          command: [
            'sh',
            '-c',
            "trap 'exit 0' TERM; [ -f /shared/ignore-term ] && trap '' TERM; [ -f /shared/first ] || hostname > /shared/first; if [ -f /shared/fail-new ]; then touch /tmp/broken; fi; sleep 2147483 & wait",
          ],
          // A replica started while /shared/ignore-term exists ignores SIGTERM: its stop takes this long.
          stop_grace_period: o.gated ? '20s' : '2s',
          labels: {
            [TEST_LABEL]: 'true',
            'autoheal.enable': 'true',
            'autoheal.scale.min': '1',
            'autoheal.scale.max': '3',
          },
          healthcheck: {
            test: [
              'CMD-SHELL',
              o.gated ? GATED : 'test ! -f /tmp/broken || { echo "health: /tmp/broken present"; exit 1; }',
            ],
            interval: '250ms',
            timeout: '2s',
            retries: 1,
            // Gated: a failing check keeps a new replica `starting`, not unhealthy, until the kill.
            ...(o.gated ? { start_period: '120s' } : {}),
          },
        },
      },
    }),
  );
  const compose = (...args: string[]) => run('docker-compose', ['-p', project, '-f', file, ...args]);
  t.teardown(() => downProject(project, dir, compose));
  await compose('up', '-d');
  const p: Project = {
    project,
    dir,
    compose,
    async replicas() {
      const list = await docker.listContainers({
        all: true,
        filters: { label: [`com.docker.compose.project=${project}`, 'com.docker.compose.service=web'] },
      });
      return list
        .map((c) => ({ name: (c.Names[0] ?? '').replace(/^\//, ''), state: c.State, status: c.Status }))
        .sort((a, b) => a.name.localeCompare(b.name));
    },
  };
  await healthyCount(p, 1);
  return p;
}

/** Waits until the service has exactly n containers, all running and healthy. */
const healthyCount = (p: Project, n: number, timeoutMs = 60_000) =>
  waitFor(
    `${n} healthy replicas of ${p.project}/web`,
    async () => {
      const r = await p.replicas();
      return r.length === n && r.every((c) => c.state === 'running' && /\(healthy\)/.test(c.status))
        ? r
        : undefined;
    },
    timeoutMs,
  );

/** A remediation as a running service reports it, once it has finished. */
const finished = (svc: RunningService, id: string) =>
  waitFor(
    `remediation ${id} to finish`,
    async () => {
      const r = await fetch(`${svc.url}/api/v1/remediations/${id}`, { headers: admin });
      const body = (await r.json()) as { state: string; detail?: string };
      return ['queued', 'running'].includes(body.state) ? undefined : body;
    },
    90_000,
    200,
  );

/** What `docker-compose ps` says of the service: the names of its containers that are Up. */
async function composePs(p: Project): Promise<string[]> {
  const { stdout } = await p.compose('ps', 'web');
  return stdout
    .split('\n')
    .slice(2)
    .filter((l) => / Up /.test(l))
    .map((l) => l.split(/\s+/)[0] ?? '')
    .sort();
}

/** The engine's events for the project's containers from now on, as "+ms action name". */
async function engineEvents(t: Test, project: string) {
  const since = Date.now();
  const seen = await followEngineEvents(t, {
    label: [`com.docker.compose.project=${project}`],
    event: ['create', 'start', 'health_status', 'kill', 'stop', 'die', 'rename', 'destroy'],
  });
  const lines = () => seen.map((e) => `+${Math.round(e.at - since)}ms ${e.action} ${e.name}`);
  return { lines, at: (re: RegExp) => seen.find((e) => re.test(`${e.action} ${e.name}`))?.at };
}

t.test(
  'alerts scale a Compose service up within its limits, and its resolution brings it calmly down',
  async (t) => {
    const p = await upProject(t);
    const h = await testApp(t, {
      env: { SCALE_DOWN_STABILIZATION: String(WINDOW_S), RESTART_COOLDOWN: '1', VERIFY_TIMEOUT: '30' },
    });
    const key = `service:${p.project}/web`;
    const events = await engineEvents(t, p.project);
    const labels = (n: number) => ({
      alertname: 'ComposeServiceCpuSaturated',
      remediation: 'scale_up',
      container_label_com_docker_compose_project: p.project,
      container_label_com_docker_compose_service: 'web',
      instance: `cadvisor-${n}`,
    });
    const alert = (n: number, status: 'firing' | 'resolved' = 'firing') => ({
      labels: labels(n),
      status,
      fingerprint: `${p.project}-fp${n}`,
      startsAt: '2026-12-04T00:00:00Z',
    });

    // A firing alert: one replica more, healthy.
    const firedAt = Date.now();
    t.equal((await h.postAlerts([alert(1)])).statusCode, 200);
    await h.engine.idle();
    const two = await healthyCount(p, 2);
    t.same(
      two.map((c) => c.name),
      [`${p.project}_web_1`, `${p.project}_web_2`],
      'the next container-number, named as Compose names it',
    );
    const healthyAt = events.at(new RegExp(`health_status: healthy ${p.project}_web_2`));
    t.ok(healthyAt, 'the engine saw the new replica healthy');
    t.comment(
      `firing alert → new replica healthy (engine's timestamp): ${Math.round((healthyAt ?? 0) - firedAt)} ms`,
    );
    const second = await docker.getContainer(`${p.project}_web_2`).inspect();
    t.equal(second.Config.Labels['com.docker.compose.container-number'], '2');
    t.equal(second.Config.Labels['com.docker.compose.service'], 'web');
    t.equal(second.HostConfig.NetworkMode, 'none', 'from the service definition');

    // Two more alerts for the same service (other fingerprints): up to the max, then refused there.
    await new Promise((r) => setTimeout(r, 1100)); // the per-service cooldown (RESTART_COOLDOWN=1)
    await h.postAlerts([alert(2)]);
    await h.engine.idle();
    await healthyCount(p, 3);
    await new Promise((r) => setTimeout(r, 1100));
    await h.postAlerts([alert(3)]);
    await h.engine.idle();
    t.equal((await p.replicas()).length, 3, 'never above autoheal.scale.max=3');
    const refused = h.audit().find((l) => l.event === 'decision' && l.reason === 'scale_limit');
    t.match(refused, { container: key, detail: /3 replicas, at its maximum \(autoheal.scale.max=3\)/ });
    t.same(
      await composePs(p),
      [1, 2, 3].map((n) => `${p.project}_web_${n}`),
      'docker-compose ps agrees',
    );
    t.equal(await h.metric('autoheal_replicas', { service: key }), 3, 'autoheal_replicas');
    t.equal(await h.metric('autoheal_scale_events_total', { direction: 'up', result: 'succeeded' }), 2);
    t.equal(await h.metric('autoheal_scale_events_total', { direction: 'up', result: 'refused' }), 1);

    // Two of the three resolve: the third still fires, so nothing steps down, even after the window.
    await h.postAlerts([alert(1, 'resolved'), alert(2, 'resolved')]);
    await h.engine.idle();
    await new Promise((r) => setTimeout(r, (WINDOW_S + 2) * 1000));
    t.equal((await p.replicas()).length, 3, 'held up while another scale-up alert fires');

    // The last resolves: one replica per window, highest number first, back to the baseline of 1.
    const resolvedAt = Date.now();
    await h.postAlerts([alert(3, 'resolved')]);
    await healthyCount(p, 2, (WINDOW_S + 10) * 1000);
    const firstStep = Date.now();
    t.ok(firstStep - resolvedAt >= WINDOW_S * 1000 - 200, 'not before the stabilisation window');
    t.same(
      (await p.replicas()).map((c) => c.name),
      [`${p.project}_web_1`, `${p.project}_web_2`],
      'the highest number went first',
    );
    await healthyCount(p, 1, (WINDOW_S + 10) * 1000);
    await h.engine.idle();
    await new Promise((r) => setTimeout(r, (WINDOW_S + 2) * 1000));
    await h.engine.idle();
    t.same(await composePs(p), [`${p.project}_web_1`], 'docker-compose ps agrees: back to one');
    t.equal((await p.replicas()).length, 1, 'never below the baseline');
    t.same(h.store.scaleLedger(), {}, 'the ledger forgets the service once it is back');
    t.equal(await h.metric('autoheal_scale_events_total', { direction: 'down', result: 'succeeded' }), 2);
    const downs = h.audit().filter((l) => l.event === 'remediation' && l.action === 'scale_down');
    t.equal(downs.length, 2, 'two steps down');
    t.match(downs[0], { container: key, result: 'succeeded', detail: /3 → 2 replicas: stopped and removed/ });
    t.comment(
      `the engine's events, from the first alert (the last alert resolved at +${resolvedAt - firedAt}ms):\n${events.lines().join('\n')}`,
    );
  },
);

t.test('a new replica that does not come up healthy is removed again and escalated', async (t) => {
  const p = await upProject(t);
  const h = await testApp(t, { env: { VERIFY_TIMEOUT: '5', RESTART_COOLDOWN: '1' } });
  const key = `service:${p.project}/web`;
  const request = async (payload: Record<string, unknown>) => {
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/remediations', headers: admin, payload });
    t.equal(res.statusCode, 202, res.body);
    return h.settled(String(JSON.parse(res.body).id), 60_000);
  };

  // Outside the limits: refused with its reason, nothing touched.
  const outside = await request({
    action: 'scale_up',
    target: `service:${p.project}/web`,
    step: 5,
    reason: 'too many',
  });
  t.match(outside, {
    state: 'skipped',
    skipReason: 'scale_limit',
    detail: /\+5 would make 6 replicas.*at most \+2/,
  });
  const below = await request({
    action: 'scale_down',
    target: `service:${p.project}/web`,
    reason: 'too few',
  });
  t.match(below, { state: 'skipped', skipReason: 'scale_limit', detail: /1 replicas, at its minimum/ });
  t.equal((await p.replicas()).length, 1);
  const dry = await request({
    action: 'scale_up',
    target: `service:${p.project}/web`,
    dryRun: true,
    reason: 'dry',
  });
  t.match(dry, { state: 'dry_run' });
  t.equal((await p.replicas()).length, 1, 'a dry run touches nothing');

  // The next replica comes up unhealthy: removed again, the remediation failed, a human told.
  writeFileSync(join(p.dir, 'fail-new'), '');
  const failed = await request({ action: 'scale_up', target: `${p.project}_web_1`, reason: 'load' });
  t.match(failed, {
    state: 'failed',
    detail: new RegExp(`${p.project}_web_2 .*health check still failing|not healthy after`),
  });
  t.match(String(failed.detail), /removed again/);
  const left = await p.replicas();
  t.same(
    left.map((c) => c.name),
    [`${p.project}_web_1`],
    'only the healthy replica is left',
  );
  t.ok(
    (h.escalations as RecordingSink).raised.some(
      (e) => e.kind === 'verification_failed' && /removed again/.test(e.detail ?? ''),
    ),
    'escalated',
  );
  t.same(await composePs(p), [`${p.project}_web_1`]);
  t.equal(await h.metric('autoheal_scale_events_total', { direction: 'up', result: 'failed' }), 1);
  t.equal(await h.metric('autoheal_scale_events_total', { direction: 'up', result: 'refused' }), 1);
  t.equal(h.store.record(key)?.lastResult, 'failed');
});

t.test('a step is refused with a clear error before anything is queued', async (t) => {
  const h = await testApp(t);
  const post = (payload: Record<string, unknown>) =>
    h.app.inject({ method: 'POST', url: '/api/v1/remediations', headers: admin, payload });
  const notScale = await post({ action: 'restart', target: 'web', step: 2 });
  t.equal(notScale.statusCode, 400);
  t.match(JSON.parse(notScale.body), {
    error: 'bad_request',
    message: /step applies to scale_up and scale_down/,
  });
  const zero = await post({ action: 'scale_up', target: 'service:web', step: 0 });
  t.equal(zero.statusCode, 400, 'step 0');
  const project = await post({ action: 'scale_up', target: 'project:shop' });
  t.equal(project.statusCode, 400);
  t.match(JSON.parse(project.body), { error: 'bad_target', message: /acts on Compose services/ });
});

t.test(
  'a kill -9 in the middle of a scale-up: the restarted service verifies the new replica, never adds another',
  async (t) => {
    let second: RunningService | undefined;
    t.teardown(() => second?.kill('SIGKILL'));
    const p = await upProject(t, { gated: true });
    const env = {
      WATCH_SCOPE: 'project',
      COMPOSE_PROJECT: p.project,
      VERIFY_TIMEOUT: '60',
      VERIFY_GRACE: '1',
    };
    const first = await startService(t, env);
    const events = await followEngineEvents(t, { label: [`com.docker.compose.project=${p.project}`] });
    const res = await fetch(`${first.url}/api/v1/remediations`, {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({ target: `service:${p.project}/web`, action: 'scale_up', reason: 'load' }),
    });
    t.equal(res.status, 202);
    const { id } = (await res.json()) as { id: string };
    const newName = `${p.project}_web_2`;
    await waitFor(
      'the new replica started',
      async () => events.some((e) => e.action === 'start' && e.name === newName),
      60_000,
    );
    await first.kill('SIGKILL');
    t.equal(
      (await docker.getContainer(newName).inspect()).State.Health?.Status,
      'starting',
      'killed mid-verification',
    );

    second = await startService(t, env, first.dir);
    writeFileSync(join(p.dir, 'go'), '');
    const done = await finished(second, id);
    t.match(done, {
      state: 'succeeded',
      detail: /interrupted by a restart of the service, then verified: .*_web_2 healthy/,
    });
    t.equal(events.filter((e) => e.action === 'create').length, 1, 'one replica created across both lives');
    t.same(await composePs(p), [`${p.project}_web_1`, newName], 'docker-compose ps agrees');
  },
);

t.test(
  'a kill -9 in the middle of a scale-down: the restarted service finishes it, removes nothing else',
  async (t) => {
    let second: RunningService | undefined;
    t.teardown(() => second?.kill('SIGKILL'));
    const p = await upProject(t, { gated: true });
    // A second replica that ignores SIGTERM: its graceful stop lasts the whole stop_grace_period.
    writeFileSync(join(p.dir, 'ignore-term'), '');
    writeFileSync(join(p.dir, 'go'), '');
    await p.compose('up', '-d', '--scale', 'web=2');
    await healthyCount(p, 2);
    const env = { WATCH_SCOPE: 'project', COMPOSE_PROJECT: p.project, VERIFY_TIMEOUT: '60' };
    const first = await startService(t, env);
    const events = await followEngineEvents(t, { label: [`com.docker.compose.project=${p.project}`] });
    const res = await fetch(`${first.url}/api/v1/remediations`, {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({ target: `service:${p.project}/web`, action: 'scale_down', reason: 'quiet' }),
    });
    t.equal(res.status, 202);
    const { id } = (await res.json()) as { id: string };
    const aside = `${p.project}_web_2-autoheal-replaced`;
    await waitFor(
      'the stop of the renamed replica',
      async () => events.some((e) => e.action === 'kill' && e.name === aside),
      30_000,
    );
    await first.kill('SIGKILL');

    second = await startService(t, env, first.dir);
    const done = await finished(second, id);
    t.match(done, {
      state: 'succeeded',
      detail: /interrupted by a restart of the service, then verified: removed .*_web_2-autoheal-replaced/,
    });
    t.same(await composePs(p), [`${p.project}_web_1`], 'docker-compose ps agrees: one replica');
    t.same(
      (await p.replicas()).map((c) => c.name),
      [`${p.project}_web_1`],
      'nothing aside is left',
    );
    t.equal(events.filter((e) => e.action === 'destroy').length, 1, 'one replica removed across both lives');
    t.notOk(
      events.some((e) => e.action === 'kill' && e.name === `${p.project}_web_1`),
      'the first replica untouched',
    );
  },
);
