// auto_patcher's decisions without Docker: a container's mode, when an update may start, what a check
// run plans (replicas of a service as one target), the policy's consent hook, and update:all schedules.
import pino from 'pino';
import t from 'tap';
import { defaultActions } from '../../src/actions/registry.js';
import { cleanupAction } from '../../src/actions/cleanup.js';
import { asideName } from '../../src/core/names.js';
import { FakeDocker } from '../fixtures/fake-docker.js';
import { ManualClock } from '../fixtures/clock.js';
import { decide, type PolicyContext } from '../../src/core/policy.js';
import { planUpdates, updateModeOf, updateRefusal } from '../../src/core/updates.js';
import { parseSchedules, Scheduler } from '../../src/inputs/schedules.js';
import { createMetrics } from '../../src/metrics.js';
import { testConfig } from '../fixtures/config.js';
import { alertSignal, containerView, NOW } from '../fixtures/views.js';

t.test('updateModeOf: the label when it is a mode, else AUTOPATCH', async (t) => {
  t.equal(updateModeOf({}, 'off'), 'off');
  t.equal(updateModeOf({}, 'apply'), 'apply');
  t.equal(updateModeOf({ 'autoheal.update': 'notify' }, 'apply'), 'notify');
  t.equal(updateModeOf({ 'autoheal.update': ' apply ' }, 'off'), 'apply');
  t.equal(updateModeOf({ 'autoheal.update': 'yes' }, 'off'), 'off', 'not a mode: the default');
});

t.test('updateRefusal: who may update what, and when not', async (t) => {
  const c = (mode?: string): { labels: Record<string, string> } => ({
    labels: mode ? { 'autoheal.update': mode } : {},
  });
  const auto = { automatic: true, fallback: 'off' as const };
  const byHand = { automatic: false, fallback: 'off' as const };
  t.match(updateRefusal(c(), undefined, auto), /AUTOPATCH=off: image updates are not opted in/);
  t.match(updateRefusal(c('off'), undefined, byHand), /autoheal.update=off/, 'off is never, even by hand');
  t.equal(updateRefusal(c('apply'), undefined, auto), undefined);
  t.match(updateRefusal(c('notify'), undefined, auto), /applied only by an operator/);
  t.equal(updateRefusal(c('notify'), undefined, byHand), undefined, 'an operator applies a notify update');
  t.equal(
    updateRefusal(c(), undefined, { automatic: true, fallback: 'apply' }),
    undefined,
    'AUTOPATCH=apply',
  );
  t.match(updateRefusal(c('apply'), { incidentId: 'i1', givenUp: false }, byHand), /open incident/);
  t.match(updateRefusal(c('apply'), { incidentId: undefined, givenUp: true }, auto), /given up/);
});

t.test('planUpdates: apply per container or service, notify listed, off left alone', async (t) => {
  const svc = (n: string) => ({
    'autoheal.update': 'apply',
    'com.docker.compose.project': 'shop',
    'com.docker.compose.service': 'web',
    'com.docker.compose.container-number': n,
  });
  const plan = planUpdates(
    [
      { name: 'shop-web-1', labels: svc('1'), status: 'available' },
      { name: 'shop-web-2', labels: svc('2'), status: 'available' },
      { name: 'db', labels: { 'autoheal.update': 'apply' }, status: 'available' },
      { name: 'cache', labels: { 'autoheal.update': 'apply' }, status: 'up_to_date' },
      { name: 'odd', labels: { 'autoheal.update': 'apply' }, status: 'unknown' },
      { name: 'told', labels: { 'autoheal.update': 'notify' }, status: 'available' },
      { name: 'quiet', labels: {}, status: 'available' },
    ],
    'off',
  );
  t.same(plan.apply, [
    { kind: 'service', project: 'shop', service: 'web' },
    { kind: 'container', name: 'db' },
  ]);
  t.same(plan.notify, ['told']);
  t.same(plan.left, ['quiet']);
  const held = planUpdates(
    [
      { name: 'shop-web-1', labels: svc('1'), status: 'available', rejected: true },
      { name: 'shop-web-2', labels: svc('2'), status: 'available' },
      { name: 'db', labels: { 'autoheal.update': 'apply' }, status: 'available', rejected: true },
    ],
    'off',
  );
  t.same(held.apply, [], 'an image rolled back once is not applied again, for the whole service');
  t.same(held.left, ['shop-web-1', 'shop-web-2', 'db']);
});

t.test('decide(): update asks the container for consent before anything else', async (t) => {
  const cfg = testConfig();
  const ctx = (autopatch: 'apply' | 'off'): PolicyContext => ({
    scope: 'label',
    composeProject: undefined,
    selfContainerId: undefined,
    dryRun: false,
    policy: cfg.policy,
    startPeriodMs: 0,
    nodeName: undefined,
    actions: defaultActions({ updates: { autopatch } }),
  });
  const input = (o: {
    mode?: string;
    autopatch: 'apply' | 'off';
    source?: 'schedule' | 'manual';
    dryRun?: boolean;
  }) => ({
    signal: alertSignal({ source: o.source ?? 'schedule', action: 'update', dryRun: o.dryRun ?? false }),
    action: 'update',
    container: containerView({
      labels: { 'autoheal.enable': 'true', ...(o.mode ? { 'autoheal.update': o.mode } : {}) },
    }),
    record: undefined,
    circuit: { actionTimes: [] },
    busy: false,
    now: NOW,
    ctx: ctx(o.autopatch),
  });
  t.match(decide(input({ autopatch: 'off' })), { verdict: 'skip', reason: 'not_opted_in' });
  t.match(decide(input({ autopatch: 'apply' })), { verdict: 'act', reason: 'ok' });
  t.match(decide(input({ autopatch: 'off', mode: 'apply', dryRun: true })), {
    verdict: 'act',
    reason: 'dry_run',
  });
  t.match(decide(input({ autopatch: 'off', mode: 'notify' })), { verdict: 'skip', reason: 'not_opted_in' });
  t.match(decide(input({ autopatch: 'off', mode: 'notify', source: 'manual' })), { verdict: 'act' });
  const prot = { ...input({ autopatch: 'apply' }) };
  const protectedOne = {
    ...prot,
    container: containerView({ labels: { 'autoheal.enable': 'true', 'autoheal.protect': 'true' } }),
  };
  t.match(decide(protectedOne), { verdict: 'skip', reason: 'protected' }, 'protection comes first');
  t.match(decide({ ...prot, signal: alertSignal({ source: 'schedule', action: 'update', force: true }) }), {
    verdict: 'act',
    reason: 'forced',
  });
  t.match(
    decide({
      ...input({ autopatch: 'off' }),
      signal: alertSignal({ source: 'manual', action: 'update', force: true }),
    }),
    { verdict: 'skip', reason: 'not_opted_in' },
    'force never overrides the opt-in',
  );
});

t.test('SCHEDULES update:all: accepted for update only; the run goes through the batch hook', async (t) => {
  t.match(parseSchedules('0 4 * * *=update:all'), [{ action: 'update', target: 'all' }]);
  t.throws(() => parseSchedules('0 4 * * *=restart:all'), {
    name: 'ConfigError',
    message: /restart does not run over all containers at once \(update:all does\)/,
  });
  const clock = new ManualClock(new Date(2026, 2, 1, 3, 59, 0).getTime());
  const runs: string[] = [];
  let finish!: () => void;
  const s = new Scheduler(parseSchedules('0 4 * * *=update:all'), {
    engine: { request: () => 'never' },
    store: { remediation: () => undefined },
    clock,
    log: pino({ level: 'silent' }),
    metrics: createMetrics(undefined, { defaultMetrics: false }),
    batch: (entry) => {
      runs.push(entry.text);
      return new Promise((resolve) => {
        finish = () => resolve({ id: 'run-1' });
      });
    },
  });
  t.same(s.tick(), []);
  clock.set(new Date(2026, 2, 1, 4, 0, 0).getTime());
  t.equal(s.tick().length, 1, 'the run starts at 04:00');
  t.same(runs, ['0 4 * * *=update:all']);
  clock.set(new Date(2026, 2, 2, 4, 0, 0).getTime());
  t.same(s.tick(), [], 'the next day, the first run still going: skipped');
  finish();
  await new Promise((r) => setImmediate(r));
  clock.set(new Date(2026, 2, 3, 4, 0, 0).getTime());
  t.equal(s.tick().length, 1, 'once it is over, the next runs');
  t.equal(runs.length, 2);
});

t.test(
  'cleanup never removes a container put aside by a recreate or an update (it keeps the old image)',
  async (t) => {
    const docker = new FakeDocker();
    docker.add('old-job', { state: 'exited', labels: { 'autoheal.enable': 'true' } });
    docker.add(asideName('web'), { state: 'exited', labels: { 'autoheal.enable': 'true' } });
    const removed: string[] = [];
    const remove = docker.remove.bind(docker);
    docker.remove = async (id, o) => {
      removed.push((await docker.inspect(id))?.name ?? id);
      return remove(id, o);
    };
    const config = testConfig({ CLEANUP_PRUNE_UNTIL: '0s' });
    const out = await cleanupAction.run(
      { docker, config, log: pino({ level: 'silent' }), now: Date.now, params: {} },
      { kind: 'host', scope: { scope: 'label', composeProject: undefined, selfContainerId: undefined } },
    );
    t.ok(out.ok, out.detail);
    t.same(removed, ['old-job'], 'only the stopped container that is not aside');
  },
);
