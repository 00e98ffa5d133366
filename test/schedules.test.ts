// Scheduled maintenance: SCHEDULES parsing with clear errors (also at the start of the real server), a
// cleanup that runs at its time by an injected clock and is reported like any remediation, never two
// runs of one entry at once, and the real timer path.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { ConfigError } from '../src/config.js';
import { systemClock } from '../src/core/clock.js';
import type { DockerClient } from '../src/docker/client.js';
import { DockerodeClient } from '../src/docker/dockerode-client.js';
import { parseSchedules, Scheduler } from '../src/inputs/schedules.js';
import { adminApp, adminAuth } from './fixtures/admin-app.js';
import { ManualClock } from './fixtures/clock.js';
import { DOCKER_HOST } from './fixtures/docker.js';
import { spawnServer } from './fixtures/spawned.js';

t.test('SCHEDULES parsing', async (t) => {
  t.same(parseSchedules(''), []);
  t.same(parseSchedules(' ; '), []);
  const ok: Array<[string, object[]]> = [
    ['0 3 * * *=cleanup', [{ cron: '0 3 * * *', action: 'cleanup', target: { kind: 'host' } }]],
    ['0 3 * * *=cleanup:host', [{ cron: '0 3 * * *', action: 'cleanup', target: { kind: 'host' } }]],
    [
      '*/30 * * * *=restart:web',
      [{ cron: '*/30 * * * *', action: 'restart', target: { kind: 'container', name: 'web' } }],
    ],
    [
      ' 0 4 * * SUN = stop_start:service:shop/worker ;',
      [
        {
          cron: '0 4 * * SUN',
          action: 'stop_start',
          target: { kind: 'service', service: 'worker', project: 'shop' },
        },
      ],
    ],
    ['0 0 3 * * *=cleanup', [{ cron: '0 0 3 * * *', action: 'cleanup' }]],
    ['@daily=cleanup', [{ cron: '@daily', action: 'cleanup' }]],
    [
      '0 3 * * *=cleanup;15 * * * *=restart:service:web',
      [
        { action: 'cleanup', text: '0 3 * * *=cleanup' },
        {
          action: 'restart',
          target: { kind: 'service', service: 'web' },
          text: '15 * * * *=restart:service:web',
        },
      ],
    ],
  ];
  for (const [text, want] of ok) t.match(parseSchedules(text), want, text);

  const bad: Array<[string, RegExp]> = [
    ['nightly cleanup', /^SCHEDULES: entry 1 "nightly cleanup": expected CRON=action\[:target\]/],
    [
      '61 * * * *=cleanup',
      /^SCHEDULES: entry 1 "61 \* \* \* \*=cleanup": bad cron expression "61 \* \* \* \*"/,
    ],
    ['0 3 * *=cleanup', /bad cron expression "0 3 \* \*"/],
    ['0 3 * * *=reboot:web', /unknown action "reboot": use one of restart, stop_start, cleanup/],
    ['0 3 * * *=none', /unknown action "none"/],
    ['0 3 * * *=restart', /restart needs a target/],
    ['0 3 * * *=restart:host', /restart needs a target/],
    ['0 3 * * *=cleanup:web', /cleanup acts on the whole host/],
    ['0 3 * * *=cleanup; 0 4 * * *=stop_start', /^SCHEDULES: entry 2 "0 4 \* \* \*=stop_start"/],
    // A target that breaks Docker's or Compose's name grammar is a configuration error at start-up.
    ['0 3 * * *=restart:../x', /^SCHEDULES: entry 1 .*"\.\.\/x" is not a container name or id/],
    ['0 3 * * *=restart:service:Shop/web', /"Shop" is not a Compose project name/],
  ];
  for (const [text, re] of bad) {
    t.throws(() => parseSchedules(text), { name: 'ConfigError', message: re }, text);
  }
  t.ok(
    (() => {
      try {
        parseSchedules('x');
      } catch (err) {
        return err instanceof ConfigError;
      }
    })(),
    'a ConfigError, so the server reports it like any bad variable',
  );
});

/** The real engine with prune held at a gate, so a cleanup stays running as long as a test wants. */
function gatedDocker() {
  const real = new DockerodeClient(DOCKER_HOST, 10_000);
  let open!: () => void;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const docker: DockerClient = Object.assign(Object.create(real) as DockerClient, {
    prune: async (...args: Parameters<DockerClient['prune']>) => {
      await gate;
      return real.prune(...args);
    },
  });
  return { docker, open };
}

t.test('a scheduled cleanup runs at its time and is reported like any remediation', async (t) => {
  const a = await adminApp(t);
  const clock = new ManualClock(new Date(2026, 2, 1, 2, 59, 0).getTime());
  const s = new Scheduler(parseSchedules('0 3 * * *=cleanup'), {
    engine: a.engine,
    store: a.store,
    clock,
    log: a.log,
    metrics: a.metrics,
  });
  t.equal(s.status()[0]?.nextRunAt, new Date(2026, 2, 1, 3, 0, 0).getTime(), 'next run at 03:00');

  t.same(s.tick(), [], 'nothing at 02:59');
  clock.set(new Date(2026, 2, 1, 2, 59, 59).getTime());
  t.same(s.tick(), [], 'nothing at 02:59:59');
  t.same(a.store.listRemediations(), []);

  clock.set(new Date(2026, 2, 1, 3, 0, 0).getTime());
  const ids = s.tick();
  t.equal(ids.length, 1, 'runs at 03:00');
  t.same(s.tick(), [], 'and only once for that time');
  const id = ids[0] ?? '';
  const r = await a.settled(id);
  t.match(r, {
    state: 'succeeded',
    action: 'cleanup',
    target: 'host',
    source: 'schedule',
    requestedBy: 'schedule',
    reason: 'scheduled maintenance "0 3 * * *=cleanup"',
  });
  t.match(r.detail, /reclaimed [0-9]+ bytes/);
  t.equal(s.status()[0]?.nextRunAt, new Date(2026, 2, 2, 3, 0, 0).getTime(), 'next run the day after');
  t.equal(s.status()[0]?.lastRemediationId, id);

  const audit = a.audit();
  t.match(
    audit.find((l) => l.event === 'schedule_run'),
    { schedule: '0 3 * * *=cleanup', remediationId: id, action: 'cleanup' },
  );
  t.match(
    audit.find((l) => l.event === 'decision' && l.source === 'schedule'),
    { reason: 'ok', container: 'host' },
  );
  t.match(
    audit.find((l) => l.event === 'remediation' && l.remediationId === id),
    { action: 'cleanup', result: 'succeeded', source: 'schedule' },
  );
  t.equal(await a.metric('autoheal_remediations_total', { action: 'cleanup', result: 'succeeded' }), 1);

  const res = await a.app.inject({ method: 'GET', url: `/api/v1/remediations/${id}`, headers: adminAuth() });
  t.match(JSON.parse(res.body), { state: 'succeeded', source: 'schedule', done: true });

  // A clock that jumps over many runs (the service was down) runs once, not once per missed time.
  clock.set(new Date(2026, 2, 9, 12, 0, 0).getTime());
  t.equal(s.tick().length, 1, 'one catch-up run after a week away');
  await a.engine.idle();
  t.equal(s.status()[0]?.nextRunAt, new Date(2026, 2, 10, 3, 0, 0).getTime());
});

t.test('never two runs of one entry at once', async (t) => {
  const { docker, open } = gatedDocker();
  const a = await adminApp(t, { docker });
  const clock = new ManualClock(new Date(2026, 2, 1, 3, 0, 0).getTime() - 1000);
  const s = new Scheduler(parseSchedules('* * * * *=cleanup'), {
    engine: a.engine,
    store: a.store,
    clock,
    log: a.log,
    metrics: a.metrics,
  });
  clock.advance(1000);
  const [first] = s.tick();
  t.ok(first, 'the first run starts');
  t.equal(a.store.remediation(first ?? '')?.state, 'running', 'and is held at the gate');
  const inProgressBefore = await a.metric('autoheal_decisions_total', { reason: 'in_progress' });

  clock.advance(60_000);
  t.same(s.tick(), [], 'its next time comes while it still runs: skipped');
  clock.advance(60_000);
  t.same(s.tick(), [], 'and again');
  t.equal(a.store.listRemediations().length, 1, 'no second remediation was even requested');
  const skipped = a.audit().filter((l) => l.event === 'schedule_skipped');
  t.equal(skipped.length, 2, 'each skip is logged');
  t.match(skipped[0], { reason: 'in_progress', running: first, schedule: '* * * * *=cleanup' });
  t.equal(
    await a.metric('autoheal_decisions_total', { reason: 'in_progress' }),
    inProgressBefore + 2,
    'and counted',
  );

  // The engine keeps its own guard: a manual cleanup meanwhile is refused, not run alongside.
  const manual = await a.app.inject({
    method: 'POST',
    url: '/api/v1/remediations',
    headers: adminAuth(),
    payload: { action: 'cleanup' },
  });
  const manualId = String(JSON.parse(manual.body).id);
  t.match(await a.settled(manualId), { state: 'skipped', skipReason: 'in_progress' });

  open();
  t.equal((await a.settled(first ?? '')).state, 'succeeded', 'the held run finishes');
  clock.advance(60_000);
  const [second] = s.tick();
  t.ok(second, 'the next time after it finished runs again');
  t.not(second, first);
  t.equal((await a.settled(second ?? '')).state, 'succeeded');
});

t.test('the real timer runs entries at their time and stops with the service', async (t) => {
  const a = await adminApp(t, { env: { DRY_RUN: 'true' } });
  const s = new Scheduler(parseSchedules('* * * * * *=cleanup'), {
    engine: a.engine,
    store: a.store,
    clock: systemClock,
    log: a.log,
    metrics: a.metrics,
  });
  t.teardown(() => s.stop());
  s.start();
  const scheduled = () => a.store.listRemediations().filter((r) => r.source === 'schedule');
  // A bound that only catches a timer that never fires: a loaded machine may delay each tick.
  const deadline = Date.now() + 30_000;
  while (scheduled().length < 2 && Date.now() < deadline) await sleep(100);
  t.ok(scheduled().length >= 2, 'an every-second entry ran on its own');
  s.stop();
  await a.engine.idle();
  const n = scheduled().length;
  await sleep(1500);
  t.equal(scheduled().length, n, 'nothing runs after stop()');
  t.ok(
    scheduled().every((r) => r.state === 'dry_run'),
    'DRY_RUN applies to schedules like to every remediation',
  );
});

const startServer = (env: Record<string, string>) => spawnServer({ DOCKER_HOST, LOG_FILE: '', ...env });

t.test('the server refuses to start with a bad SCHEDULES and says why', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'autoheal-sched-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const s = startServer({ DATA_DIR: dir, SCHEDULES: '0 3 * * *=cleanup; 0 4 * * *=reboot:web' });
  t.equal(await s.exited, 2, 'exit status 2, like any configuration error');
  t.match(
    s.err(),
    /configuration error: SCHEDULES: entry 2 "0 4 \* \* \*=reboot:web": unknown action "reboot"/,
  );
});

t.test('the server starts its schedules and logs their next run', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'autoheal-sched-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const port = String(20_000 + Math.floor(Math.random() * 30_000));
  // No healing and no action: its watcher must not touch the containers of tests running alongside.
  const s = startServer({
    DATA_DIR: dir,
    PORT: port,
    SCHEDULES: '30 2 * * *=cleanup',
    WATCHER_HEAL: 'false',
    DRY_RUN: 'true',
  });
  t.teardown(() => s.child.kill('SIGKILL'));
  // A bound for a stuck start only: tsx compiles the server first, slow on a loaded machine.
  const deadline = Date.now() + 90_000;
  while (!/"event":"schedule"/.test(s.out()) && Date.now() < deadline && s.child.exitCode === null) {
    await sleep(100);
  }
  const line = s
    .out()
    .split('\n')
    .find((l) => l.includes('"event":"schedule"'));
  t.ok(line, `the schedule is announced${line ? '' : `; stderr: ${s.err()}`}`);
  const entry = JSON.parse(line ?? '{}') as { schedule?: string; nextRunAt?: string };
  t.equal(entry.schedule, '30 2 * * *=cleanup');
  const next = new Date(entry.nextRunAt ?? '');
  t.equal(next.getHours(), 2, 'next run at 02:30 local time');
  t.equal(next.getMinutes(), 30);
  s.child.kill('SIGTERM');
  t.equal(await s.exited, 0, 'stops cleanly on SIGTERM');
});
