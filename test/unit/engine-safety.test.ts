// The engine's promises without a Docker engine (a fake DockerClient, the real durable Store): an
// action interrupted by a crash is verified after the restart and never run again; a signal that met
// an unreachable engine stays pending and is decided once it is back; a healthy container is never
// given up; the given-up gauge, the incident and its timeline never go stale; SELF_CONTAINER_ID given
// as a name keeps protecting the container after a rename.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { decide } from '../../src/core/policy.js';
import { alert, fakeEngine, manual, until, WatchedDocker } from '../fixtures/fake-engine.js';

// 3. Never repeat an action after a crash ------------------------------------------------------------

for (const force of [true, false]) {
  t.test(
    `a ${force ? 'forced' : 'plain'} manual restart interrupted by a crash is verified after the restart, never run again`,
    async (t) => {
      const d1 = new WatchedDocker();
      d1.add('web', { health: 'unhealthy' });
      d1.hang = true;
      const a = await fakeEngine(t, d1);
      a.engine.start();
      const id = a.engine.request(manual('web', { force }));
      await until('the intent', () => a.store.record('web')?.inFlight !== undefined);
      t.same(d1.restarts, ['web'], 'the restart reached the engine');
      // kill -9 now: the disk holds what the service had written at this instant.
      const crashed = mkdtempSync(join(tmpdir(), 'autoheal-crashed-'));
      t.teardown(() => rmSync(crashed, { recursive: true, force: true }));
      cpSync(a.dataDir, crashed, { recursive: true });

      // Started again while the engine is still carrying out that restart; killed again mid-verification.
      const d2 = new WatchedDocker();
      d2.add('web', { state: 'restarting', running: false, health: 'none' });
      const b = await fakeEngine(t, d2, {}, { dir: crashed });
      b.engine.start();
      await until('the resume', () => b.lines.some((l) => l.event === 'resume'));
      await sleep(300);
      t.ok(b.store.record('web')?.inFlight, 'still verifying');
      const crashed2 = mkdtempSync(join(tmpdir(), 'autoheal-crashed-'));
      t.teardown(() => rmSync(crashed2, { recursive: true, force: true }));
      cpSync(crashed, crashed2, { recursive: true });

      // The engine finished the restart; the container is healthy.
      const d3 = new WatchedDocker();
      d3.add('web', { health: 'healthy' });
      const c = await fakeEngine(t, d3, {}, { dir: crashed2 });
      c.engine.start();
      await c.engine.idle();
      await sleep(20);
      t.same([...d2.restarts, ...d3.restarts], [], 'no second restart, after either crash');
      for (const e of [b, c]) {
        t.notOk(
          e.decisions('web').some((l) => l.verdict === 'act'),
          'the replayed request is not decided again',
        );
      }
      t.ok(
        c.lines.some((l) => l.event === 'replay' && l.container === 'web'),
        'the replay of its signal is recognised',
      );
      t.match(c.store.remediation(id), { state: 'succeeded' }, 'the request gets its verified result');
      t.match(c.store.record('web'), { attempts: 1, lastResult: 'succeeded', inFlight: undefined });
      t.equal(c.store.pending().length, 0, 'the inbox is empty');
    },
  );
}

t.test('a crash between the result and the inbox mark replays nothing', async (t) => {
  const d1 = new WatchedDocker();
  d1.add('web', { health: 'unhealthy' });
  const a = await fakeEngine(t, d1);
  a.engine.start();
  const s = alert('web');
  // Accepted, acted on, verified; the service dies before the "done" mark reaches the disk.
  a.store.done = () => undefined;
  a.engine.ingest([s]);
  await until('the result', () => a.store.record('web')?.lastResult === 'succeeded');
  const crashed = mkdtempSync(join(tmpdir(), 'autoheal-crashed-'));
  t.teardown(() => rmSync(crashed, { recursive: true, force: true }));
  cpSync(a.dataDir, crashed, { recursive: true });
  const d2 = new WatchedDocker();
  d2.add('web', { health: 'unhealthy' });
  const b = await fakeEngine(t, d2, { RESTART_COOLDOWN: '0' }, { dir: crashed });
  t.equal(b.store.pending().length, 1, 'the alert is still in the inbox');
  await sleep(1100); // past the 1 s cooldown: only the link to the signal prevents a repeat
  b.engine.start();
  await b.engine.idle();
  t.same(d2.restarts, [], 'the alert is not acted on twice, cooldown or not');
});

// 5. Never lose a signal ------------------------------------------------------------------------------

t.test(
  'an alert accepted while the engine is unreachable stays pending and is decided once it is back',
  async (t) => {
    const d = new WatchedDocker();
    d.add('web');
    d.down = true;
    const a = await fakeEngine(t, d);
    a.engine.start();
    const s = alert('web');
    t.equal(a.engine.ingest([s]).accepted.length, 1, 'accepted (the webhook answers 200)');
    await until('the deferral', () => a.lines.some((l) => l.event === 'signal_deferred'));
    await a.engine.idle();
    t.same(
      a.store.pending().map((p) => p.id),
      [s.id],
      'still in the inbox',
    );
    t.equal(await a.metric('autoheal_signals_pending'), 1, 'counted as pending');
    t.equal(a.decisions('web').length, 0, 'no decision was made without the engine');
    t.equal(a.engine.ingest([s]).duplicates, 1, "Alertmanager's re-send is still a duplicate");

    d.down = false;
    a.engine.retryPending(); // what the watcher does when it reconnects
    await until('the restart', () => d.restarts.length > 0);
    await a.engine.idle();
    await sleep(20); // the inbox mark is written on the next turn
    t.same(d.restarts, ['web'], 'restarted exactly once');
    t.equal(a.decisions('web').filter((l) => l.verdict === 'act').length, 1);
    t.equal(a.store.pending().length, 0, 'processed');
    t.equal(await a.metric('autoheal_signals_pending'), 0);
  },
);

t.test('without a reconnect the pending signal is retried with back-off by itself', async (t) => {
  const d = new WatchedDocker();
  d.add('web');
  d.down = true;
  const a = await fakeEngine(t, d);
  a.engine.start();
  a.engine.ingest([alert('web')]);
  await until('the deferral', () => a.lines.some((l) => l.event === 'signal_deferred'));
  d.down = false;
  await until('the retry to restart it', () => d.restarts.length === 1, 5000);
  await a.engine.idle();
  t.same(d.restarts, ['web']);
});

t.test('a pending firing alert that resolves meanwhile is not acted on', async (t) => {
  const d = new WatchedDocker();
  d.add('web');
  d.down = true;
  const a = await fakeEngine(t, d);
  a.engine.start();
  const firing = alert('web');
  a.engine.ingest([firing]);
  await until('the deferral', () => a.lines.some((l) => l.event === 'signal_deferred'));
  a.engine.ingest([{ ...firing, id: 'resolved-1', status: 'resolved' }]);
  await a.engine.idle();
  d.down = false;
  a.engine.retryPending();
  await a.engine.idle();
  await sleep(20);
  t.same(d.restarts, [], 'nothing restarted');
  t.equal(a.store.pending().length, 0);
  t.equal(await a.metric('autoheal_signals_pending'), 0);
});

// 7. Never page the humans falsely ---------------------------------------------------------------------

t.test(
  'MAX_RESTART_ATTEMPTS=1: a second restart of a healed container is skipped, not given up',
  async (t) => {
    const d = new WatchedDocker();
    d.add('web');
    const a = await fakeEngine(t, d, { MAX_RESTART_ATTEMPTS: '1' });
    a.engine.start();
    a.engine.request(manual('web'));
    await a.engine.idle();
    const second = a.engine.request(manual('web'));
    await a.engine.idle();
    t.same(d.restarts, ['web']);
    t.match(a.store.remediation(second), { state: 'skipped', skipReason: 'max_attempts' });
    t.equal(a.store.record('web')?.givenUp, false, 'not given up');
    t.same(
      a.sink.raised.map((e) => e.kind),
      [],
      'no escalation, no "recovered"',
    );
    t.equal(await a.metric('autoheal_given_up_containers'), 0);
  },
);

t.test(
  'three heals inside STABLE_PERIOD: a healthy container is left alone, a failing one is flapping',
  async (t) => {
    const d = new WatchedDocker();
    const web = d.add('web', { health: 'unhealthy' });
    const a = await fakeEngine(t, d, { RESTART_COOLDOWN: '0' });
    a.engine.start();
    for (let i = 0; i < 3; i++) {
      web.health = 'unhealthy';
      a.engine.ingest([alert('web')]);
      await a.engine.idle();
    }
    t.equal(d.restarts.length, 3, 'three heals');
    // A late alert while it is healthy: skipped, nothing else.
    a.engine.ingest([alert('web')]);
    await a.engine.idle();
    t.equal(a.decisions('web').at(-1)?.reason, 'max_attempts');
    t.equal(a.store.record('web')?.givenUp, false);
    t.same(a.sink.raised, [], 'nobody paged for a healthy container');
    // Failing again: flapping, one escalation, not given up.
    web.health = 'unhealthy';
    a.engine.ingest([alert('web')]);
    a.engine.ingest([alert('web')]);
    await a.engine.idle();
    t.equal(d.restarts.length, 3, 'no fourth restart');
    t.equal(a.decisions('web').at(-1)?.reason, 'flapping');
    t.equal(a.store.record('web')?.givenUp, false, 'not given up');
    t.same(
      a.sink.raised.map((e) => e.kind),
      ['flapping'],
      'one flapping escalation',
    );
    t.equal(await a.metric('autoheal_given_up_containers'), 0);
  },
);

t.test('a container whose last attempt failed and is still failing is given up once', async (t) => {
  const d = new WatchedDocker();
  d.add('web', { health: 'unhealthy', afterRestart: 'unhealthy' });
  const a = await fakeEngine(t, d, { MAX_RESTART_ATTEMPTS: '1' });
  a.engine.start();
  a.engine.request(manual('web'));
  await a.engine.idle();
  t.equal(a.store.record('web')?.givenUp, true);
  t.equal(a.sink.raised.filter((e) => e.kind === 'given_up').length, 1);
});

// 9. Never leave a stale signal -------------------------------------------------------------------------

t.test('the given-up gauge drops to 0 when the container recovers', async (t) => {
  const d = new WatchedDocker();
  const web = d.add('web', { health: 'unhealthy', afterRestart: 'unhealthy' });
  const a = await fakeEngine(t, d, { MAX_RESTART_ATTEMPTS: '1' });
  a.engine.start();
  a.engine.ingest([alert('web')]);
  await a.engine.idle();
  t.equal(await a.metric('autoheal_given_up_containers'), 1);
  web.health = 'healthy';
  a.engine.observe(web);
  t.equal(a.store.record('web')?.givenUp, false);
  t.equal(await a.metric('autoheal_given_up_containers'), 0, 'AutohealGaveUp stops firing');
  t.equal(await a.metric('autoheal_incidents_open'), 0);
});

t.test('a given-up container seen again and again adds nothing to its incident', async (t) => {
  const d = new WatchedDocker();
  d.add('web', { health: 'unhealthy', afterRestart: 'unhealthy' });
  const a = await fakeEngine(t, d, { MAX_RESTART_ATTEMPTS: '1' });
  a.engine.start();
  a.engine.ingest([alert('web')]);
  await a.engine.idle();
  const incidentId = a.store.record('web')?.incidentId ?? '';
  a.engine.ingest([alert('web')]);
  await a.engine.idle();
  const after1 = a.store.incident(incidentId)?.events.length ?? 0;
  for (let i = 0; i < 5; i++) a.engine.ingest([alert('web')]);
  await a.engine.idle();
  t.equal(a.store.incident(incidentId)?.events.length, after1, 'the same given_up skip is recorded once');
});

t.test('the timeline holds the first decision and the action itself', async (t) => {
  const d = new WatchedDocker();
  d.add('web', { health: 'unhealthy' });
  const a = await fakeEngine(t, d);
  a.engine.start();
  a.engine.ingest([alert('web')]);
  await a.engine.idle();
  const [incident] = a.store.listIncidents({ container: 'web' });
  t.same(
    incident?.events.map((e) => [e.type, e.reason ?? e.action ?? e.result]),
    [
      ['signal', undefined],
      ['decision', 'ok'],
      ['action', 'restart'],
      ['verification', 'restart'],
      ['note', 'recovered'],
    ],
  );
});

t.test('after an interrupted action, recovery closes the incident (already_healthy)', async (t) => {
  const d1 = new WatchedDocker();
  d1.add('web', { health: 'unhealthy' });
  d1.hang = true;
  const a = await fakeEngine(t, d1);
  a.engine.start();
  a.engine.ingest([alert('web')]);
  await until('the intent', () => a.store.record('web')?.inFlight !== undefined);
  const crashed = mkdtempSync(join(tmpdir(), 'autoheal-crashed-'));
  t.teardown(() => rmSync(crashed, { recursive: true, force: true }));
  cpSync(a.dataDir, crashed, { recursive: true });
  // After the restart of the service the container is still broken, then recovers by itself before
  // the retry.
  const d2 = new WatchedDocker();
  const web = d2.add('web', { health: 'unhealthy' });
  const b = await fakeEngine(t, d2, { RESTART_COOLDOWN: '1' }, { dir: crashed });
  b.engine.start();
  await until('the resumed verification', () => b.store.record('web')?.inFlight === undefined);
  t.equal(b.store.record('web')?.lastResult, 'failed');
  t.equal(b.store.listIncidents({ container: 'web' })[0]?.status, 'open');
  web.health = 'healthy';
  await until('the retry', () => b.decisions('web').some((l) => l.reason === 'already_healthy'), 5000);
  await b.engine.idle();
  t.same(d2.restarts, [], 'not restarted');
  t.equal(b.store.listIncidents({ container: 'web' })[0]?.status, 'recovered', 'the incident is closed');
  t.equal(b.store.record('web')?.pendingRetry, undefined);
  t.equal(await b.metric('autoheal_incidents_open'), 0);
});

// 13b. Self-protection by id --------------------------------------------------------------------------------

t.test(
  'SELF_CONTAINER_ID given as a name is held as the id: a renamed service container stays protected',
  async (t) => {
    const d = new WatchedDocker();
    const self = d.add('autoheal');
    const a = await fakeEngine(t, d, { SELF_CONTAINER_ID: 'autoheal', WATCH_SCOPE: 'all' });
    a.engine.start();
    await until('resolved', () => a.engine.policyContext.selfContainerId === self.id);
    const renamed = { ...self, name: 'autoheal-old' };
    const d2 = decide({
      signal: alert('autoheal-old'),
      action: 'restart',
      container: renamed,
      record: undefined,
      circuit: { actionTimes: [] },
      busy: false,
      now: Date.now(),
      ctx: a.engine.policyContext,
    });
    t.equal(d2.reason, 'self');
    const other = decide({
      signal: alert('autoheal'),
      action: 'restart',
      container: { ...self, id: 'f'.repeat(64), name: 'autoheal' },
      record: undefined,
      circuit: { actionTimes: [] },
      busy: false,
      now: Date.now(),
      ctx: a.engine.policyContext,
    });
    t.equal(other.reason, 'ok', 'a new container that took the old name is not the service');
  },
);
