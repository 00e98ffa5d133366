// The engine goes away and comes back (a private second dockerd, so the main one other tests use is never
// stopped): the service keeps running, /readyz says 503 meanwhile, the watcher reconnects with back-off,
// and a container that was damaged while the engine was away is healed once it is back.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { TEST_IMAGE, uniqueName, waitFor } from './fixtures/docker.js';
import { TEST_LABEL } from './fixtures/labels.js';
import { startSecondDockerd } from './fixtures/second-dockerd.js';
import { watcherApp } from './fixtures/watcher-app.js';

t.test('engine stopped and started again: survive, reconnect, heal what broke meanwhile', async (t) => {
  const d2 = await startSecondDockerd(t);
  const h = await watcherApp(t, {
    env: { DOCKER_HOST: d2.host, WATCHDOG_INTERVAL: '2' },
    watcher: { backoffInitialMs: 200, backoffMaxMs: 1000 },
  });
  const name = uniqueName('reconnect');
  // A marker written while the engine is away turns into a broken health check at the next start;
  // our restart after that finds no marker and comes up healthy.
  const prelude =
    'if [ -f /tmp/keep-broken ]; then rm -f /tmp/keep-broken; touch /tmp/broken; else rm -f /tmp/broken; fi';
  const c = await d2.docker.createContainer({
    name,
    Image: TEST_IMAGE,
    Cmd: ['sh', '-c', `trap 'exit 0' TERM; ${prelude}; sleep 2147483 & wait`],
    Labels: { [TEST_LABEL]: 'true', ...h.labels },
    StopTimeout: 2,
    Healthcheck: {
      Test: ['CMD-SHELL', 'test ! -f /tmp/broken'],
      Interval: 250_000_000,
      Timeout: 2_000_000_000,
      Retries: 1,
    },
    HostConfig: { NetworkMode: 'none', RestartPolicy: { Name: 'always' } },
  });
  await c.start();
  const health = async () => {
    const i = await c.inspect();
    return i.State.Health?.Status;
  };
  await waitFor('healthy on the second engine', async () => (await health()) === 'healthy');
  await waitFor('the watcher to see it', async () => h.watcher.watchedCount === 1);
  const upper = ((await c.inspect()).GraphDriver.Data as unknown as { UpperDir: string }).UpperDir;
  const connectsBefore = h.watcher.stats.connects;

  await d2.stop();
  await waitFor('the watcher to notice', async () => !h.watcher.connected);
  const away = await h.app.inject({ method: 'GET', url: '/readyz' });
  t.equal(away.statusCode, 503, '/readyz says 503 while the engine is away');
  t.equal(await h.metric('autoheal_docker_connected'), 0);
  const alive = await h.app.inject({ method: 'GET', url: '/healthz' });
  t.equal(alive.statusCode, 200, 'the service keeps running');

  // Broken while the engine is away: written straight into the container's writable layer.
  mkdirSync(join(upper, 'tmp'), { recursive: true });
  writeFileSync(join(upper, 'tmp', 'keep-broken'), '');
  await d2.start();

  await waitFor('the watcher to reconnect', async () => h.watcher.connected, 30_000);
  t.ok(h.watcher.stats.connects > connectsBefore, 'reconnected');
  const done = await waitFor(
    'the remediation',
    async () => h.auditFor(name, 'remediation').find((l) => l.result === 'succeeded'),
    30_000,
  );
  t.ok(done, 'healed after the engine came back');
  await waitFor('healthy again', async () => (await health()) === 'healthy');
  const acted = h.auditFor(name, 'decision').find((l) => l.verdict === 'act');
  t.match(acted, { reason: 'ok', action: 'restart' }, 'through the one policy');
  t.comment(`found by ${acted?.source}`);
  const ready = await h.app.inject({ method: 'GET', url: '/readyz' });
  t.equal(ready.statusCode, 200, '/readyz ready again');
  t.equal(await h.metric('autoheal_docker_connected'), 1);
  t.ok(
    h.lines.some((l) => l.includes('"event":"docker_unreachable"')) &&
      h.lines.some((l) => l.includes('"event":"docker_connected"')),
    'the outage and the reconnect are logged',
  );
});
