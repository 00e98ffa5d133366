// A container's life through the engine, without a Docker engine (the fake DockerClient, the real
// durable Store): a failed heal is retried when its retry is due and a resolved alert cancels it; past
// the attempt cap the container is given up once and every later signal skips; an operator reset gives
// it fresh attempts; an action a crash interrupted is verified on start, never started again; and a
// container the operator stopped is left alone by the automatic signals until it is started.
// engine-safety.test.ts holds the crash, unreachable-engine and false-paging cases; these read the
// same promises from the records. Retries due now run on timers of 0 ms (RESTART_COOLDOWN=0) or,
// with a ManualClock, at the next start: nothing waits for an amount of time to pass.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { type ContainerRecord, emptyRecord, type Signal } from '../../src/core/types.js';
import type { Store } from '../../src/state/store.js';
import { ManualClock } from '../fixtures/clock.js';
import { alert, fakeEngine, manual, until, WatchedDocker } from '../fixtures/fake-engine.js';

/** A fake engine whose restarts leave the health given here, in order (afterRestart once used up). */
class ScriptedDocker extends WatchedDocker {
  readonly heals: Array<'healthy' | 'unhealthy'> = [];
  override async restart(id: string): Promise<'restarted' | 'gone'> {
    const c = this.find(id);
    const next = this.heals.shift();
    if (c && next) c.afterRestart = next;
    return super.restart(id);
  }
}

/** A failure the health watcher saw (an engine event or its reconcile poll), as it hands it on. */
const watcherFailure = (
  name: string,
  source: 'docker_event' | 'reconcile',
  condition: 'unhealthy' | 'exited',
): Signal => ({
  id: `${source}-${Math.random().toString(16).slice(2)}`,
  source,
  status: 'firing',
  receivedAt: Date.now(),
  condition,
  target: { kind: 'container', name },
  action: 'restart',
  params: {},
  labels: {},
  annotations: {},
  reason: `${condition} (test)`,
});

/** Every record the engine writes for the container, in order: the store keeps only the last. */
function recordsWritten(store: Store, name: string): ContainerRecord[] {
  const written: ContainerRecord[] = [];
  const put = store.putRecord.bind(store);
  store.putRecord = (r) => {
    if (r.name === name) written.push(r);
    put(r);
  };
  return written;
}

/** The decisions' [source, reason] pairs in source order: signals of one batch run concurrently. */
const sourcesAndReasons = (decisions: ReadonlyArray<Record<string, unknown>>) =>
  decisions.map((l) => [String(l.source), String(l.reason)]).sort(([a = ''], [b = '']) => a.localeCompare(b));

/** A copy of the state directory as it is now: what a service killed at this instant leaves. */
function crashCopy(t: Test, dataDir: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'autoheal-crashed-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(dataDir, dir, { recursive: true });
  return dir;
}

// Retries ---------------------------------------------------------------------------------------------

t.test('a failed restart leaves a retry at its next allowed time; the retry runs and heals', async (t) => {
  const d = new ScriptedDocker();
  d.add('web', { health: 'unhealthy' });
  d.heals.push('unhealthy', 'healthy');
  const a = await fakeEngine(t, d, { RESTART_COOLDOWN: '0' });
  const written = recordsWritten(a.store, 'web');
  a.engine.start();
  a.engine.ingest([alert('web')]);
  await until('the retry to heal it', () => a.store.record('web')?.lastResult === 'succeeded');
  await a.engine.idle();

  const failed = written.find((r) => r.lastResult === 'failed');
  t.match(failed, { attempts: 1, failures: 1, inFlight: undefined }, 'the first restart failed');
  t.match(
    failed?.pendingRetry,
    { action: 'restart', at: failed?.nextAllowedAt, origin: { source: 'alertmanager', alertname: 'X' } },
    'its retry is due when the cooldown ends, and carries the alert that started the incident',
  );
  t.same(d.restarts, ['web', 'web'], 'the retry restarted it once more');
  t.match(a.store.record('web'), {
    attempts: 2,
    failures: 0,
    lastResult: 'succeeded',
    givenUp: false,
    pendingRetry: undefined,
    incidentId: undefined,
  });
  t.same(
    a.decisions('web').map((l) => [l.source, l.verdict, l.reason]),
    [
      ['alertmanager', 'act', 'ok'],
      ['alertmanager', 'act', 'ok'],
    ],
    'the retry is decided by the same policy, under the alert it retries',
  );
  const [incident] = a.store.listIncidents({ container: 'web' });
  t.equal(incident?.status, 'recovered', 'one incident for both attempts, closed as recovered');
  t.same(a.sink.raised, [], 'an automatic retry that heals pages nobody');
});

t.test(
  'a retry is cancelled when its alert resolves; the other container retries once it is due, after a restart',
  async (t) => {
    const clock = new ManualClock(Date.now());
    const env = { RESTART_COOLDOWN: '60' };
    const d1 = new WatchedDocker();
    for (const name of ['web', 'api']) d1.add(name, { health: 'unhealthy', afterRestart: 'unhealthy' });
    const a = await fakeEngine(t, d1, env, { clock });
    a.engine.start();
    const webAlert = alert('web');
    a.engine.ingest([webAlert, alert('api')]);
    await until('both retries', () => ['web', 'api'].every((n) => a.store.record(n)?.pendingRetry));
    for (const name of ['web', 'api']) {
      t.match(a.store.record(name)?.pendingRetry, { action: 'restart', at: clock.now() + 60_000 }, name);
    }

    a.engine.ingest([{ ...webAlert, id: 'resolved-web', status: 'resolved' }]);
    await until('the cancel', () => a.store.record('web')?.pendingRetry === undefined);
    await until('the inbox to empty', () => a.store.pending().length === 0);
    t.equal(a.store.listIncidents({ container: 'web' })[0]?.status, 'resolved');
    t.ok(a.store.record('api')?.pendingRetry, "the other container's retry stays");

    // The service restarts after both retries were due; the containers would heal now.
    const d2 = new WatchedDocker();
    for (const name of ['web', 'api']) d2.add(name, { health: 'unhealthy' });
    clock.advance(60_000);
    const b = await fakeEngine(t, d2, env, { clock, dir: crashCopy(t, a.dataDir) });
    b.engine.start();
    await until('the due retry', () => b.store.record('api')?.lastResult === 'succeeded');
    await b.engine.idle();
    t.same(d2.restarts, ['api'], 'the cancelled retry never runs, the due one runs once');
    t.match(b.store.record('web'), { attempts: 1, lastResult: 'failed', pendingRetry: undefined });
    t.match(b.store.record('api'), { attempts: 2, pendingRetry: undefined });
  },
);

// Give-up and reset -----------------------------------------------------------------------------------

/** An engine that gave web up: two attempts allowed, both failed (the second as the retry). */
async function givenUpWeb(t: Test) {
  const d = new WatchedDocker();
  const web = d.add('web', { health: 'unhealthy', afterRestart: 'unhealthy' });
  const e = await fakeEngine(t, d, { MAX_RESTART_ATTEMPTS: '2', RESTART_COOLDOWN: '0' });
  e.engine.start();
  e.engine.ingest([alert('web')]);
  await until('the give-up', () => e.store.record('web')?.givenUp === true);
  await e.engine.idle();
  return { ...e, d, web };
}

t.test('past the attempt cap the container is given up and escalated once; later signals skip', async (t) => {
  const a = await givenUpWeb(t);
  t.same(a.d.restarts, ['web', 'web'], 'MAX_RESTART_ATTEMPTS actions, no more');
  const record = a.store.record('web');
  t.match(record, { attempts: 2, givenUp: true, lastResult: 'failed', pendingRetry: undefined });
  t.equal(a.store.incident(record?.incidentId ?? '')?.status, 'given_up');
  t.equal(await a.metric('autoheal_given_up_containers'), 1);

  const before = a.decisions('web').length;
  a.engine.ingest([
    alert('web'),
    watcherFailure('web', 'docker_event', 'unhealthy'),
    watcherFailure('web', 'reconcile', 'unhealthy'),
  ]);
  const requested = a.engine.request(manual('web'));
  await a.engine.idle();
  t.same(
    sourcesAndReasons(a.decisions('web').slice(before)),
    [
      ['alertmanager', 'given_up'],
      ['docker_event', 'given_up'],
      ['manual', 'given_up'],
      ['reconcile', 'given_up'],
    ],
    'whatever input it comes from',
  );
  t.match(a.store.remediation(requested), { state: 'skipped', skipReason: 'given_up' });
  t.same(a.d.restarts, ['web', 'web'], 'nothing restarted');
  t.match(a.store.record('web'), { attempts: 2, givenUp: true, givenUpAt: record?.givenUpAt });
  t.same(
    a.sink.raised.map((e) => e.kind),
    ['given_up'],
    'one escalation',
  );
});

t.test('an operator reset clears the record and the container is healed again', async (t) => {
  const a = await givenUpWeb(t);
  const incidentId = a.store.record('web')?.incidentId ?? '';
  // Fresh attempts, no back-off, no retry; its incident is closed as reset.
  const cleared = {
    attempts: 0,
    failures: 0,
    givenUp: false,
    nextAllowedAt: undefined,
    pendingRetry: undefined,
  };
  t.match(a.engine.reset('web'), cleared, 'reset returns the cleared record');
  t.match(a.store.record('web'), cleared, 'and writes it');
  t.equal(a.store.incident(incidentId)?.status, 'reset', 'the given-up incident is closed by the reset');
  t.equal(await a.metric('autoheal_given_up_containers'), 0);

  a.web.afterRestart = 'healthy';
  a.engine.ingest([alert('web')]);
  await a.engine.idle();
  t.same(a.d.restarts, ['web', 'web', 'web'], 'the next alert acts again');
  t.equal(a.decisions('web').at(-1)?.reason, 'ok');
  t.match(a.store.record('web'), { attempts: 1, failures: 0, lastResult: 'succeeded', givenUp: false });
});

// Resume ------------------------------------------------------------------------------------------------

t.test(
  'an intent a crash left in the store is verified on start, counted, never started again',
  async (t) => {
    const clock = new ManualClock(Date.now());
    const d = new WatchedDocker();
    // The engine is still carrying out the restart the service asked for before it died.
    const web = d.add('web', { state: 'restarting', running: false, health: 'none' });
    const a = await fakeEngine(t, d, { RESTART_COOLDOWN: '60' }, { clock });
    const startedAt = clock.now() - 5_000;
    a.store.putRecord({
      ...emptyRecord('web'),
      attempts: 1,
      lastAction: 'restart',
      lastActionAt: startedAt,
      lastSignalId: 'crashed-signal',
      inFlight: {
        action: 'restart',
        startedAt,
        remediationId: 'crashed-remediation',
        signalId: 'crashed-signal',
      },
    });
    a.engine.start();
    await until('the resume', () => a.lines.some((l) => l.event === 'resume' && l.container === 'web'));
    t.match(
      a.store.record('web'),
      { inFlight: { startedAt }, nextAllowedAt: startedAt + 60_000 },
      'the cooldown holds from the action start',
    );
    // The watcher sees it unhealthy meanwhile: that signal waits for the verification.
    const seen = watcherFailure('web', 'docker_event', 'unhealthy');
    a.engine.ingest([seen]);
    Object.assign(web, { state: 'running', running: true, health: 'unhealthy' });
    await until('the verification', () => a.store.record('web')?.inFlight === undefined);
    await a.engine.idle();

    t.same(d.restarts, [], 'the interrupted restart is not started again');
    t.match(a.store.record('web'), { attempts: 1, failures: 1, lastResult: 'failed' }, 'one attempt, failed');
    t.same(
      a.decisions('web').map((l) => [l.signalId, l.reason]),
      [[seen.id, 'cooldown_active']],
      "the watcher's signal is decided after the result, within the cooldown",
    );
    t.ok(
      a.lines.some((l) => l.event === 'remediation' && l.remediationId === 'crashed-remediation'),
      'the result is recorded under the interrupted remediation',
    );
  },
);

// Operator stop ---------------------------------------------------------------------------------------

t.test(
  'a container the operator stopped is not started by automatic signals, and is healed once started',
  async (t) => {
    const d = new WatchedDocker();
    const web = d.add('web', { state: 'exited', running: false, health: 'none', exitCode: 0 });
    const a = await fakeEngine(t, d);
    a.engine.start();
    a.engine.observe(web, { stoppedByOperator: true });
    t.match(a.store.record('web'), { stoppedByOperator: true, attempts: 0 });

    a.engine.ingest([
      watcherFailure('web', 'docker_event', 'exited'),
      watcherFailure('web', 'reconcile', 'exited'),
      alert('web'),
    ]);
    await a.engine.idle();
    t.same(sourcesAndReasons(a.decisions('web')), [
      ['alertmanager', 'stopped_by_operator'],
      ['docker_event', 'stopped_by_operator'],
      ['reconcile', 'stopped_by_operator'],
    ]);
    t.same(d.restarts, []);
    t.match(
      a.store.record('web'),
      { stoppedByOperator: true, attempts: 0 },
      'the flag holds, nothing counted',
    );

    // The operator starts it again; later it fails its health check.
    Object.assign(web, { state: 'running', running: true, health: 'unhealthy' });
    a.engine.observe(web, { stoppedByOperator: false });
    t.equal(a.store.record('web')?.stoppedByOperator, false, 'started: the flag is cleared');
    a.engine.ingest([watcherFailure('web', 'docker_event', 'unhealthy')]);
    await a.engine.idle();
    t.same(d.restarts, ['web'], 'healed again');
    t.equal(a.decisions('web').at(-1)?.reason, 'ok');
    t.match(a.store.record('web'), { stoppedByOperator: false, lastResult: 'succeeded' });
  },
);
