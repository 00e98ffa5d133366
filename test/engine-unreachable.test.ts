// An alert that arrives while the Docker engine is unreachable (DOCKER_HOST names a socket nobody
// listens on yet) is answered 200, kept pending in the inbox, and decided once the engine answers:
// the container is restarted exactly once. The "engine" that comes up is a unix-socket proxy to the
// real one, so no engine other tests use is ever stopped.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import {
  createTestContainer,
  DOCKER_HOST,
  followRestarts,
  waitFor,
  waitForHealth,
} from './fixtures/docker.js';
import { watcherApp } from './fixtures/watcher-app.js';

/** Starts forwarding `path` to the real engine's socket; returns a function that stops it. */
async function engineAt(path: string): Promise<() => Promise<void>> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(new URL(DOCKER_HOST).pathname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
}

t.test(
  'an alert accepted while the engine is unreachable is decided when it is back: one restart',
  async (t) => {
    const dir = mkdtempSync('/tmp/ahp-');
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const socket = join(dir, 'docker.sock');
    const h = await watcherApp(t, {
      env: { DOCKER_HOST: `unix://${socket}` },
      connect: false,
      watcher: { backoffInitialMs: 200, backoffMaxMs: 500 },
    });
    const c = await createTestContainer(t, { labels: h.labels });
    const restarts = await followRestarts(t, c.name);
    await waitForHealth(c.name, 'healthy');
    t.notOk(h.watcher.connected, 'the engine is unreachable');

    const res = await h.postAlerts([
      {
        labels: { alertname: 'AppDown', container: c.name, remediation: 'restart' },
        fingerprint: 'unreach1',
      },
    ]);
    t.equal(res.statusCode, 200, 'accepted: Alertmanager will not send it again');
    await waitFor('the signal to be kept pending', async () =>
      h.lines.some((l) => l.includes('"event":"signal_deferred"')),
    );
    t.equal(await h.metric('autoheal_signals_pending'), 1, 'autoheal_signals_pending counts it');
    t.equal(h.store.pending().length, 1, 'still in the inbox');
    t.equal(h.auditFor(c.name, 'decision').length, 0, 'not decided without the engine');
    const again = await h.postAlerts([
      {
        labels: { alertname: 'AppDown', container: c.name, remediation: 'restart' },
        fingerprint: 'unreach1',
      },
    ]);
    t.equal(again.statusCode, 200);

    const stop = await engineAt(socket);
    t.teardown(stop);
    await waitFor('the watcher to reach the engine', async () => h.watcher.connected, 15_000);
    const done = await waitFor(
      'the remediation',
      async () => h.auditFor(c.name, 'remediation').find((l) => l.result === 'succeeded'),
      30_000,
    );
    t.ok(done, 'healed once the engine answered');
    await h.engine.idle();
    await sleep(50);
    t.equal(h.auditFor(c.name, 'action').length, 1, 'one action');
    t.equal(restarts.count(), 1, 'the engine restarted it exactly once');
    t.equal(await h.metric('autoheal_signals_pending'), 0);
    t.equal(h.store.pending().length, 0, 'the inbox is empty');
  },
);
