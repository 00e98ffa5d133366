// auto_scaler's decisions without Docker: a service's limits, the plan of a step (refused for an
// operator outside the limits, cut to them for an alert), the ledger that brings a service back down
// calmly, the policy's bounds hook, and the replicas the watcher publishes.
import t from 'tap';
import pino from 'pino';
import { defaultActions } from '../../src/actions/registry.js';
import { decide, type PolicyContext } from '../../src/core/policy.js';
import {
  alertFiring,
  alertResolved,
  dueStepDowns,
  nextStepDownAt,
  parseStep,
  planScale,
  scalableReplicas,
  scaledUp,
  scaleLimits,
  settled,
  steppedDown,
} from '../../src/core/scale.js';
import { actedOnAs, parseTarget, selectTarget, targetOfRecord } from '../../src/core/targets.js';
import { ScaleDown } from '../../src/inputs/scale-down.js';
import { testConfig } from '../fixtures/config.js';
import { fakeEngine } from '../fixtures/fake-engine.js';
import { FakeDocker } from '../fixtures/fake-docker.js';
import { alertSignal, containerView, NOW } from '../fixtures/views.js';

const D = { min: 1, max: 5 };

t.test('scaleLimits: labels where they are whole numbers, else the defaults', async (t) => {
  t.match(scaleLimits({}, D), { min: 1, max: 5, minFrom: 'SCALE_MIN=1', maxFrom: 'SCALE_MAX=5' });
  t.match(scaleLimits({ 'autoheal.scale.min': '2', 'autoheal.scale.max': '4' }, D), {
    min: 2,
    max: 4,
    minFrom: 'autoheal.scale.min=2',
    maxFrom: 'autoheal.scale.max=4',
  });
  t.match(scaleLimits({ 'autoheal.scale.max': 'lots' }, D), { max: 5 }, 'not a number: the default');
  t.match(scaleLimits({ 'autoheal.scale.max': '-1' }, D), { max: 5 });
  t.match(scaleLimits({ 'autoheal.scale.min': '6', 'autoheal.scale.max': '3' }, D), { min: 3, max: 3 });
});

t.test('parseStep: 1 by default, whole numbers 1..100, a sign allowed', async (t) => {
  const cases: Array<[string | undefined, number | undefined]> = [
    [undefined, 1],
    ['', 1],
    ['2', 2],
    ['+3', 3],
    ['-1', 1],
    ['100', 100],
    ['0', undefined],
    ['101', undefined],
    ['1.5', undefined],
    ['two', undefined],
    ['1e2', undefined],
  ];
  for (const [input, want] of cases) {
    const p = parseStep(input);
    if (want === undefined) t.notOk(p.ok, `${JSON.stringify(input)} refused`);
    else t.same(p, { ok: true, step: want }, `${JSON.stringify(input)} → ${want}`);
  }
});

t.test('planScale: within the limits; a request outside is refused with its reason', async (t) => {
  const limits = scaleLimits({ 'autoheal.scale.min': '1', 'autoheal.scale.max': '3' }, D);
  const rows: Array<[string, Parameters<typeof planScale>[0], number | RegExp]> = [
    ['up one', { direction: 'up', current: 1, step: 1, limits, automatic: true }, 2],
    ['up to the max', { direction: 'up', current: 2, step: 1, limits, automatic: false }, 3],
    [
      'at the max',
      { direction: 'up', current: 3, step: 1, limits, automatic: true },
      /at its maximum \(autoheal.scale.max=3\)/,
    ],
    ['an alert is cut to the max', { direction: 'up', current: 2, step: 5, limits, automatic: true }, 3],
    [
      'an operator past the max',
      { direction: 'up', current: 2, step: 2, limits, automatic: false },
      /above its maximum.*at most \+1/,
    ],
    ['down one', { direction: 'down', current: 3, step: 1, limits, automatic: true }, 2],
    [
      'at the min',
      { direction: 'down', current: 1, step: 1, limits, automatic: true },
      /at its minimum \(autoheal.scale.min=1\)/,
    ],
    [
      'an operator past the min',
      { direction: 'down', current: 2, step: 2, limits, automatic: false },
      /below its minimum.*at most -1/,
    ],
    [
      'the ledger stops at the baseline',
      { direction: 'down', current: 3, step: 1, limits, automatic: true, floor: 3 },
      /its 3 before it scaled up/,
    ],
    [
      'the baseline below the min is the min',
      { direction: 'down', current: 2, step: 1, limits, automatic: true, floor: 0 },
      1,
    ],
  ];
  for (const [name, input, want] of rows) {
    const p = planScale(input);
    if (typeof want === 'number') t.match(p, { ok: true, from: input.current, to: want }, name);
    else t.match(p, { ok: false, detail: want }, name);
  }
});

t.test('the ledger: held up while a scale-up alert fires, one step per window after', async (t) => {
  const W = 60_000;
  let l = scaledUp({}, 'service:shop/web', 'fp1', 1, NOW);
  t.match(l['service:shop/web'], { baseline: 1, firing: { fp1: NOW } });
  t.equal(nextStepDownAt(l['service:shop/web'] as never, W), undefined, 'firing: no step down');
  l = scaledUp(l, 'service:shop/web', 'fp1', 2, NOW + 1000);
  t.equal(l['service:shop/web']?.baseline, 1, 'the baseline is the first one');
  l = alertFiring(l, 'service:shop/web', 'fp2', NOW + 2000);
  t.same(Object.keys(l['service:shop/web']?.firing ?? {}).sort(), ['fp1', 'fp2']);
  t.notOk(
    'service:shop/api' in alertFiring(l, 'service:shop/api', 'fp3', NOW),
    'a service not held is not added',
  );
  l = alertResolved(l, 'fp1', NOW + 10_000);
  t.equal(l['service:shop/web']?.quietSince, undefined, 'fp2 still fires');
  t.same(dueStepDowns(l, NOW + 10 * W, W), [], 'never while another scale-up alert fires');
  l = alertResolved(l, 'fp2', NOW + 20_000);
  t.equal(l['service:shop/web']?.quietSince, NOW + 20_000);
  t.same(dueStepDowns(l, NOW + 20_000 + W - 1, W), [], 'not before the window');
  t.equal(dueStepDowns(l, NOW + 20_000 + W, W).length, 1, 'due once the window has passed');
  l = steppedDown(l, 'service:shop/web', NOW + 20_000 + W);
  t.same(dueStepDowns(l, NOW + 20_000 + W + 1000, W), [], 'the next step waits a whole window');
  t.equal(dueStepDowns(l, NOW + 20_000 + 2 * W, W).length, 1);
  l = scaledUp(l, 'service:shop/web', 'fp4', 2, NOW + 20_000 + 2 * W);
  t.same(dueStepDowns(l, NOW + 20_000 + 4 * W, W), [], 'a new alert holds it up again');
  t.same(alertResolved(l, 'unknown', NOW), l, 'an alert the ledger does not hold changes nothing');
  t.same(settled(l, 'service:shop/web'), {}, 'back at its baseline: forgotten');
});

t.test('the policy asks the scale actions for their bounds', async (t) => {
  const actions = defaultActions();
  const config = testConfig();
  const ctx: PolicyContext = {
    scope: 'label',
    composeProject: undefined,
    selfContainerId: undefined,
    dryRun: false,
    policy: config.policy,
    startPeriodMs: 0,
    nodeName: undefined,
    actions,
    scale: { min: 1, max: 3 },
  };
  const svc = (replicas: number, labels: Record<string, string> = {}) =>
    containerView({
      name: 'service:shop/web',
      labels: { 'autoheal.enable': 'true', ...labels },
      replicas,
      health: 'none',
    });
  const input = (
    action: string,
    replicas: number,
    params: Record<string, string>,
    source: 'alertmanager' | 'manual' = 'alertmanager',
  ) => ({
    signal: alertSignal({
      target: { kind: 'service', service: 'web', project: 'shop' },
      action,
      params,
      source,
    }),
    action,
    container: svc(replicas),
    record: undefined,
    circuit: { actionTimes: [] },
    busy: false,
    now: NOW,
    ctx,
  });
  t.match(decide(input('scale_up', 1, {})), { verdict: 'act' });
  t.match(decide(input('scale_up', 3, {})), {
    verdict: 'skip',
    reason: 'scale_limit',
    detail: /SCALE_MAX=3/,
  });
  t.match(decide(input('scale_up', 2, { step: '5' })), { verdict: 'act' }, 'an alert is cut to the limit');
  t.match(
    decide(input('scale_up', 2, { step: '5' }, 'manual')),
    { verdict: 'skip', reason: 'scale_limit', detail: /at most \+1/ },
    'an operator asking past the limit is refused',
  );
  t.match(decide(input('scale_up', 1, { step: 'x' })), { verdict: 'skip', reason: 'invalid_step' });
  t.match(decide(input('scale_down', 1, {})), { verdict: 'skip', reason: 'scale_limit', detail: /minimum/ });
  t.match(decide(input('scale_down', 3, { floor: '3' })), { verdict: 'skip', reason: 'scale_limit' });
  t.match(
    decide({ ...input('scale_up', 1, {}), container: svc(1, { 'autoheal.protect': 'true' }) }),
    { verdict: 'skip', reason: 'protected' },
    'protection before the limits',
  );
  t.match(
    decide({ ...input('scale_up', 1, {}), container: { ...svc(1), labels: { 'autoheal.scale.max': '3' } } }),
    { verdict: 'skip', reason: 'not_in_scope' },
    'a service not opted in is never scaled',
  );
});

t.test('targets: a container or a Compose service names one service to the scale actions', async (t) => {
  const actions = defaultActions();
  const scaleTargets = actions.get('scale_up')?.targets ?? [];
  t.equal(actedOnAs(scaleTargets, parseTarget('web')), 'compose_service');
  t.equal(actedOnAs(scaleTargets, parseTarget('service:shop/web')), 'compose_service');
  t.equal(actedOnAs(scaleTargets, parseTarget('swarm:web')), 'swarm_service');
  t.equal(actedOnAs(scaleTargets, parseTarget('project:shop')), undefined);
  t.equal(
    actedOnAs(actions.get('restart')?.targets ?? [], parseTarget('service:shop/web')),
    'container',
    'restart: each container',
  );
  t.match(selectTarget(actions, 'scale_up', 'project:shop'), {
    ok: false,
    reason: 'bad_target',
    detail: /Compose services/,
  });
  t.match(selectTarget(actions, 'scale_up', 'host'), { ok: false, reason: 'bad_target' });
  t.same(targetOfRecord('service:shop/web'), { kind: 'service', service: 'web', project: 'shop' });
});

t.test('scalableReplicas: the watched replicas of services that set a scale limit', async (t) => {
  const c = (name: string, service: string, extra: Record<string, string> = {}) => ({
    name,
    labels: { 'com.docker.compose.project': 'shop', 'com.docker.compose.service': service, ...extra },
  });
  const counts = scalableReplicas([
    c('shop_web_1', 'web', { 'autoheal.scale.max': '3' }),
    c('shop_web_2', 'web', { 'autoheal.scale.max': '3' }),
    c('shop_web_3-autoheal-replaced', 'web', { 'autoheal.scale.max': '3' }),
    c('shop_web_run_1', 'web', { 'autoheal.scale.max': '3', 'com.docker.compose.oneoff': 'True' }),
    c('shop_db_1', 'db'),
    c('shop_api_1', 'api', { 'autoheal.scale.min': '1' }),
  ]);
  t.same(Object.fromEntries(counts), { 'service:shop/web': 2, 'service:shop/api': 1 });
});

t.test(
  'the scale-down input: a due service gets one scale_down; one that is gone is forgotten',
  async (t) => {
    const docker = new FakeDocker();
    const f = await fakeEngine(t, docker, { SCALE_DOWN_STABILIZATION: '60' });
    const scaleDown = new ScaleDown({
      config: f.config,
      engine: f.engine,
      store: f.store,
      clock: { now: Date.now },
      log: pino({ level: 'silent' }),
    });
    const now = Date.now();
    f.store.batch(() =>
      f.store.putScaleLedger({
        'service:shop/web': { key: 'service:shop/web', baseline: 1, firing: {}, quietSince: now - 61_000 },
        'service:shop/api': {
          key: 'service:shop/api',
          baseline: 1,
          firing: { fp: now },
          quietSince: undefined,
        },
      }),
    );
    t.equal(scaleDown.tick(), 1, 'only the quiet one past its window');
    t.equal(scaleDown.tick(), 0, 'one request per window');
    await f.engine.idle();
    const asked = f.store.listRemediations().find((r) => r.action === 'scale_down');
    t.match(asked, {
      target: 'service:shop/web',
      state: 'skipped',
      skipReason: 'target_not_found',
      requestedBy: 'scale-down',
    });
    t.same(Object.keys(f.store.scaleLedger()), ['service:shop/api'], 'the service that is gone is forgotten');
  },
);
