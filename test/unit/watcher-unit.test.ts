// The watcher's logic without Docker: crash-loop detection (pure), the event → signal mapping, and the
// watcher against a fake DockerClient and engine: re-list before every (re)connect, `since` the last
// event, capped back-off, operator stops versus our own actions versus crashes, the restart policy's
// own restarts, what the reconcile poll catches, and WATCHER_HEAL=false.
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import t from 'tap';
import { defaultActions } from '../../src/actions/registry.js';
import { systemClock } from '../../src/core/clock.js';
import { STREAM_GRACE_MS } from '../../src/core/watch-rules.js';
import {
  DEFAULT_CRASH_LOOP,
  emptyHistory,
  inCrashLoop,
  observeRestartCount,
} from '../../src/core/crash-loop.js';
import type { ContainerRecord, ContainerView, Signal } from '../../src/core/types.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { Watcher } from '../../src/inputs/watcher/watcher.js';
import {
  eventKind,
  healthFromAction,
  seriesLabels,
  watcherSignal,
} from '../../src/inputs/watcher/signals.js';
import { testConfig } from '../fixtures/config.js';
import { type FakeContainer, FakeDocker } from '../fixtures/fake-docker.js';

t.test('crash loop: restarts by the policy inside the window, one escalation per episode', async (t) => {
  const p = { threshold: 3, windowMs: 60_000 };
  let h = observeRestartCount(emptyHistory, 7, 0, p).next;
  t.same(h.times, [], 'the first count is a baseline: earlier restarts have no known time');
  const steps: Array<[number, number, string]> = [
    [8, 1000, 'none'],
    [9, 2000, 'none'],
    [10, 3000, 'crash_loop'],
    [11, 4000, 'looping'],
    [11, 50_000, 'looping'],
  ];
  for (const [count, at, verdict] of steps) {
    const o = observeRestartCount(h, count, at, p);
    t.equal(o.verdict, verdict, `count ${count} at ${at}`);
    h = o.next;
  }
  t.ok(inCrashLoop(h, 50_000, p));
  const quiet = observeRestartCount(h, 11, 200_000, p);
  t.equal(quiet.verdict, 'none', 'a window without restarts ends the episode');
  t.equal(quiet.next.escalatedAt, undefined);
  t.notOk(inCrashLoop(quiet.next, 200_000, p));
  const jump = observeRestartCount(quiet.next, 20, 201_000, p);
  t.equal(
    jump.verdict,
    'crash_loop',
    'several restarts between two looks count, and a new episode escalates',
  );
  t.equal(
    observeRestartCount(jump.next, 0, 202_000, p).next.lastCount,
    0,
    'a count that drops is a new baseline',
  );
  t.equal(DEFAULT_CRASH_LOOP.threshold, 3);
});

t.test('event → signal mapping', async (t) => {
  t.equal(eventKind('health_status: unhealthy'), 'health_status');
  t.equal(eventKind('die'), 'die');
  t.equal(healthFromAction('health_status: unhealthy'), 'unhealthy');
  t.equal(healthFromAction('health_status:healthy'), 'healthy');
  t.equal(healthFromAction('die'), undefined);
  const c = { name: 'web-1', labels: { 'autoheal.on_unhealthy': 'stop_start' } };
  t.match(watcherSignal(c, { source: 'docker_event', condition: 'unhealthy', now: 5, reason: 'r' }), {
    source: 'docker_event',
    status: 'firing',
    condition: 'unhealthy',
    target: { kind: 'container', name: 'web-1' },
    action: 'stop_start',
    receivedAt: 5,
  });
  t.equal(
    watcherSignal({ name: 'x', labels: {} }, { source: 'reconcile', condition: 'exited', now: 0, reason: '' })
      .action,
    'restart',
  );
  t.same(seriesLabels({ name: 'x', labels: { 'com.docker.compose.service': 's' } }), {
    container: 'x',
    service: 's',
    project: '',
  });
});

// A fake engine and Docker -------------------------------------------------------------------------

interface Teardown {
  teardown(fn: () => unknown): void;
}

const WATCHED = { 'autoheal.enable': 'true' };

function setup(t: Teardown, env: Record<string, string> = {}) {
  const docker = new FakeDocker({ labels: WATCHED, recordCalls: true, streamEvents: true });
  const config = testConfig({ WATCHDOG_INTERVAL: '3600', ...env });
  const records = new Map<string, ContainerRecord>();
  const ingested: Signal[] = [];
  const observed: Array<{ view: ContainerView; event?: { stoppedByOperator?: boolean } }> = [];
  const notified: Array<{ signal: Signal; kind: string; detail?: string }> = [];
  const retried: number[] = [];
  /** The reconnect delays the watcher asked for, in order. */
  const backoffs: number[] = [];
  const engine = {
    retryPending() {
      retried.push(Date.now());
    },
    policyContext: {
      scope: config.scope,
      composeProject: undefined,
      selfContainerId: undefined,
      dryRun: false,
      policy: config.policy,
      startPeriodMs: 0,
      nodeName: undefined,
      actions: defaultActions(),
    },
    ingest(signals: ReadonlyArray<Signal>) {
      ingested.push(...signals);
      return { accepted: signals, duplicates: 0 };
    },
    observe(view: ContainerView, event?: { stoppedByOperator?: boolean }) {
      observed.push({ view, event });
    },
    notifyOnly(signal: Signal, kind: string, _c?: ContainerView, detail?: string) {
      notified.push({ signal, kind, detail });
    },
  };
  const metrics = createMetrics(new Registry(), { defaultMetrics: false });
  // The system clock, which a test may move ahead (past the stream grace of a reconcile).
  const clock = { ahead: 0, now: () => systemClock.now() + clock.ahead };
  const watcher = new Watcher(
    {
      config,
      docker,
      engine: engine as never,
      store: { record: (name: string) => records.get(name) },
      metrics,
      log: createLogger({ level: 'silent', file: '' }),
      clock,
    },
    {
      backoffInitialMs: 20,
      backoffMaxMs: 80,
      crashLoop: { threshold: 3, windowMs: 60_000 },
      backoffSleep: (ms, signal) => {
        backoffs.push(ms);
        return sleep(ms, undefined, { signal });
      },
    },
  );
  t.teardown(() => watcher.stop());
  return { docker, watcher, records, ingested, observed, notified, metrics, retried, backoffs, clock };
}

// A hang check only: the fake engine answers at once, so a loaded machine is the only thing that can
// make these waits long, and that must not fail a test.
const until = async (what: string, fn: () => boolean, ms = 20_000) => {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
};

t.test('list before every (re)connect, since the last event, capped back-off', async (t) => {
  const s = setup(t);
  s.docker.add('a');
  s.watcher.start();
  await until('connected', () => s.watcher.connected);
  t.same(s.docker.calls, ['list', 'events'], 'list first, then follow');
  s.docker.emit('a', 'health_status: healthy');
  await until('the event', () => s.watcher.stats.events === 1);
  const lastEventTime = Number(s.docker.nano / 1_000_000n);

  s.docker.failLists = 3;
  s.docker.endStream();
  await until('disconnected', () => !s.watcher.connected);
  t.equal(await s.metrics.dockerConnected.get().then((m) => m.values[0]?.value), 0);
  await until('reconnected', () => s.watcher.connected);
  // Doubling from 20 ms, capped at 80, before each of the four lists (three fail): the delays asked
  // for, not the time they took.
  t.same(s.backoffs, [20, 40, 80, 80], 'backed off 20, 40, 80 (capped), 80 ms over three failed attempts');
  t.same(s.docker.calls.slice(2), ['list', 'list', 'list', 'list', 'events'], 're-listed on each attempt');
  t.equal(s.docker.sinceSeen[1], lastEventTime, 'followed from the last event seen');
  // The replayed last event is not applied twice.
  s.docker.queue.push({
    action: 'health_status: healthy',
    id: 'a',
    name: 'a',
    labels: WATCHED,
    attributes: {},
    time: lastEventTime,
    timeNano: s.docker.nano,
  });
  s.docker.emit('a', 'health_status: healthy');
  await until('the new event', () => s.watcher.stats.events === 2);
  t.equal(s.watcher.stats.events, 2, 'replay of the last event skipped');
  // The engine may publish a burst slightly out of timestamp order: every event still counts.
  s.docker.queue.push({
    action: 'health_status: unhealthy',
    id: 'a',
    name: 'a',
    labels: WATCHED,
    attributes: {},
    time: lastEventTime - 1,
    timeNano: s.docker.nano - 5_000_000n,
  });
  s.docker.emit('a', 'health_status: healthy');
  await until('both events', () => s.watcher.stats.events === 4);
  t.equal(s.ingested.length, 1, 'an event stamped earlier than the previous one is still applied');
});

t.test('unhealthy event → signal at once; unwatched containers ignored', async (t) => {
  const s = setup(t);
  s.docker.add('a', { labels: { ...WATCHED, 'autoheal.on_unhealthy': 'stop_start' } });
  s.docker.add('b', { labels: {} });
  s.watcher.start();
  await until('connected', () => s.watcher.connected);
  s.docker.emit('b', 'health_status: unhealthy');
  s.docker.emit('a', 'health_status: unhealthy');
  await until('a signal', () => s.ingested.length === 1);
  t.match(s.ingested[0], {
    source: 'docker_event',
    condition: 'unhealthy',
    action: 'stop_start',
    target: { name: 'a' },
  });
  const text = await s.metrics.registry.metrics();
  t.match(text, 'autoheal_container_healthy{container="a",service="",project=""} 0');
  t.notMatch(text, 'container="b"');
});

t.test('operator stop vs our own action vs a crash vs the restart policy', async (t) => {
  const s = setup(t);
  for (const id of ['op', 'ours', 'crash', 'policy']) s.docker.add(id);
  const get = (id: string) => s.docker.containers.get(id) as FakeContainer;
  s.watcher.start();
  await until('connected', () => s.watcher.connected);

  // docker stop: kill → die → stop, none of it ours.
  s.docker.emit('op', 'kill', { signal: '15' });
  s.docker.emit('op', 'die', { exitCode: '0' });
  s.docker.emit('op', 'stop');
  // Our restart: the engine's record is in flight.
  s.records.set('ours', {
    name: 'ours',
    attempts: 1,
    failures: 0,
    givenUp: false,
    inFlight: { action: 'restart', startedAt: Date.now(), remediationId: 'r' },
  });
  s.docker.emit('ours', 'kill', { signal: '15' });
  s.docker.emit('ours', 'die', { exitCode: '0' });
  // A crash: die only.
  get('crash').state = 'exited';
  s.docker.emit('crash', 'die', { exitCode: '2' });
  // Docker's restart policy brings it back: the engine already says "restarting".
  get('policy').details = { state: 'restarting', restartPolicy: 'always', restartCount: 1 };
  s.docker.emit('policy', 'die', { exitCode: '1' });

  await until('the crash signal', () => s.ingested.length >= 1);
  await sleep(50);
  t.same(
    s.ingested.map((x) => [x.target.kind === 'container' && x.target.name, x.condition, x.reason]),
    [['crash', 'exited', 'exited with code 2']],
    'only the crash is healed',
  );
  t.ok(
    s.observed.some((o) => o.view.name === 'op' && o.event?.stoppedByOperator === true),
    'the operator stop is recorded',
  );
  t.notOk(
    s.observed.some((o) => o.view.name === 'ours' && o.event?.stoppedByOperator),
    'ours is not an operator stop',
  );
});

t.test('crash loop under the restart policy: escalated once, never signalled', async (t) => {
  const s = setup(t);
  s.docker.add('loop');
  s.watcher.start();
  await until('connected', () => s.watcher.connected);
  const c = s.docker.containers.get('loop') as FakeContainer;
  for (let n = 1; n <= 5; n++) {
    c.details = { state: 'restarting', restartPolicy: 'on-failure', restartCount: n };
    s.docker.emit('loop', 'die', { exitCode: '1' });
    c.details = { state: 'running', restartPolicy: 'on-failure', restartCount: n };
    s.docker.emit('loop', 'start');
  }
  await until('the escalation', () => s.notified.length >= 1);
  await sleep(50);
  t.equal(s.notified.length, 1);
  t.match(s.notified[0], { kind: 'crash_loop', signal: { condition: 'crash_loop' } });
  // The policy gives up (on-failure:N) and leaves it exited: still not ours to restart.
  c.details = { state: 'exited', restartPolicy: 'on-failure', restartCount: 5 };
  s.docker.emit('loop', 'die', { exitCode: '1' });
  await sleep(50);
  t.equal(s.ingested.length, 0, 'no heal signal during the loop');
});

t.test('a docker stop a pass sees before its kill event arrives is never healed', async (t) => {
  const s = setup(t);
  s.docker.add('stopped');
  s.watcher.start();
  await until('connected', () => s.watcher.connected);
  await s.watcher.reconcile();
  // The listing answers first: exited, no event yet.
  (s.docker.containers.get('stopped') as FakeContainer).state = 'exited';
  await s.watcher.reconcile();
  // Then the stream delivers the operator's kill and the die.
  s.docker.emit('stopped', 'kill', { signal: '15' });
  s.docker.emit('stopped', 'die', { exitCode: '0' });
  await until('the events', () => s.watcher.stats.events >= 2);
  s.clock.ahead += STREAM_GRACE_MS;
  await s.watcher.reconcile();
  await sleep(20);
  t.same(s.ingested, [], 'no heal signal');
  t.ok(
    s.observed.some((o) => o.view.name === 'stopped' && o.event?.stoppedByOperator === true),
    'recorded as stopped by an operator',
  );
});

t.test('reconcile catches what the stream missed; WATCHER_HEAL=false only observes', async (t) => {
  const s = setup(t);
  s.docker.add('sick', { health: 'unhealthy' });
  s.docker.add('gone-quiet');
  s.watcher.start();
  await until('connected', () => s.watcher.connected);
  t.match(s.ingested, [{ source: 'reconcile', condition: 'unhealthy', target: { name: 'sick' } }]);
  // Exited without any event seen (the stream missed it): healed once it has waited for its events.
  (s.docker.containers.get('gone-quiet') as FakeContainer).state = 'exited';
  await s.watcher.reconcile();
  t.notOk(
    s.ingested.some((x) => x.condition === 'exited'),
    'not at the pass that found it: its kill may still be on the stream',
  );
  s.clock.ahead += STREAM_GRACE_MS;
  await s.watcher.reconcile();
  t.match(s.ingested.at(-1), { source: 'reconcile', condition: 'exited', target: { name: 'gone-quiet' } });
  t.ok(s.observed.length >= 4, 'every pass reports each container to the engine');
  s.docker.containers.delete('sick');
  await s.watcher.reconcile();
  t.notMatch(
    await s.metrics.registry.metrics(),
    'container="sick"',
    'series of a vanished container removed',
  );

  const off = setup(t, { WATCHER_HEAL: 'false' });
  off.docker.add('sick', { health: 'unhealthy' });
  off.watcher.start();
  await until('connected', () => off.watcher.connected);
  off.docker.emit('sick', 'health_status: unhealthy');
  await until('the event', () => off.watcher.stats.events === 1);
  await sleep(20);
  t.equal(off.ingested.length, 0, 'nothing ingested');
  t.ok(off.observed.length >= 2, 'still observed');
  t.match(
    await off.metrics.registry.metrics(),
    'autoheal_container_healthy{container="sick",service="",project=""} 0',
  );
});

t.test(
  'a given-up container is not signalled at every reconcile (its skip would repeat forever)',
  async (t) => {
    const s = setup(t);
    s.docker.add('sick', { health: 'unhealthy' });
    s.docker.add('also-sick', { health: 'unhealthy' });
    s.records.set('sick', { name: 'sick', attempts: 3, failures: 3, givenUp: true, lastResult: 'failed' });
    s.watcher.start();
    await until('connected', () => s.watcher.connected);
    await s.watcher.reconcile();
    await s.watcher.reconcile();
    t.same(
      [...new Set(s.ingested.map((x) => x.target.kind === 'container' && x.target.name))],
      ['also-sick'],
      'only the container that is not given up',
    );
    t.ok(
      s.observed.filter((o) => o.view.name === 'sick').length >= 3,
      'still observed, so its recovery is seen',
    );
  },
);

t.test('the engine is told to retry its waiting signals when the engine answers again', async (t) => {
  const s = setup(t);
  s.docker.add('a');
  s.watcher.start();
  await until('connected', () => s.watcher.connected);
  const first = s.retried.length;
  s.docker.failLists = 2;
  s.docker.endStream();
  await until('disconnected', () => !s.watcher.connected);
  await until('reconnected', () => s.watcher.connected);
  t.equal(s.retried.length, first + 1, 'once per reconnect');
});

t.test('exit 0 of a container whose restart policy does not ask to run again is not a failure', async (t) => {
  const s = setup(t);
  for (const id of ['job', 'job-opted-in', 'job-failed', 'daemon', 'service']) s.docker.add(id);
  const get = (id: string) => s.docker.containers.get(id) as FakeContainer;
  for (const id of ['job', 'job-opted-in', 'job-failed', 'daemon'])
    get(id).details = { hasHealthCheck: false };
  get('job-opted-in').labels = { ...WATCHED, 'autoheal.on_exit_zero': 'stop_start' };
  get('daemon').details = { restartPolicy: 'unless-stopped', hasHealthCheck: false };
  s.watcher.start();
  await until('connected', () => s.watcher.connected);
  for (const id of ['job', 'job-opted-in', 'job-failed', 'daemon', 'service']) get(id).state = 'exited';
  s.docker.emit('service', 'die', { exitCode: '0' }); // it has a health check: a service, not a job
  s.docker.emit('job', 'die', { exitCode: '0' });
  s.docker.emit('job-opted-in', 'die', { exitCode: '0' });
  s.docker.emit('job-failed', 'die', { exitCode: '3' });
  s.docker.emit('daemon', 'die', { exitCode: '0' });
  await until('the signals', () => s.ingested.length >= 4);
  await sleep(50);
  t.same(
    s.ingested
      .map((x) => [x.target.kind === 'container' && x.target.name, x.action])
      .sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    [
      ['daemon', 'restart'],
      ['job-failed', 'restart'],
      ['job-opted-in', 'stop_start'],
      ['service', 'restart'],
    ],
  );
});
