// Table-driven tests of the pure policy: every reason, with an injected time.
import t from 'tap';
import { defaultActions } from '../../src/actions/registry.js';
import {
  admit,
  cooldownAfter,
  decide,
  decideHost,
  effectiveAttempts,
  mayTouch,
  type PolicyContext,
  recordAction,
  shouldGiveUp,
  shouldReportFlapping,
} from '../../src/core/policy.js';
import type { ContainerRecord, ContainerView, Signal } from '../../src/core/types.js';
import { testConfig } from '../fixtures/config.js';
import { alertSignal, containerView, NOW } from '../fixtures/views.js';

const cfg = testConfig({ RESTART_COOLDOWN: '60', MAX_RESTART_ATTEMPTS: '3', STABLE_PERIOD: '600' });
const ctx: PolicyContext = {
  scope: 'label',
  composeProject: undefined,
  selfContainerId: 'self123456789',
  dryRun: false,
  policy: cfg.policy,
  startPeriodMs: 0,
  nodeName: 'node-a',
  actions: defaultActions(),
};

const container = containerView;
const signal = alertSignal;
const record = (o: Partial<ContainerRecord> = {}): ContainerRecord => ({
  name: 'web',
  attempts: 0,
  failures: 0,
  givenUp: false,
  ...o,
});

interface Case {
  name: string;
  c?: Partial<ContainerView>;
  s?: Partial<Signal>;
  r?: Partial<ContainerRecord>;
  x?: Partial<PolicyContext>;
  busy?: boolean;
  circuitOpenUntil?: number;
  want: string;
}

const cases: Case[] = [
  { name: 'labelled container, nothing against it', want: 'ok' },
  { name: 'legacy docker-autoheal label', c: { labels: { autoheal: 'true' } }, want: 'ok' },
  { name: 'unlabelled container', c: { labels: {} }, want: 'not_in_scope' },
  {
    name: 'opted out always wins',
    c: { labels: { 'autoheal.enable': 'false' } },
    x: { scope: 'all' },
    want: 'not_in_scope',
  },
  { name: 'scope all', c: { labels: {} }, x: { scope: 'all' }, want: 'ok' },
  {
    name: 'scope project, other project',
    c: { labels: { 'com.docker.compose.project': 'b' } },
    x: { scope: 'project', composeProject: 'a' },
    want: 'not_in_scope',
  },
  {
    name: 'scope project, same project',
    c: { labels: { 'com.docker.compose.project': 'a' } },
    x: { scope: 'project', composeProject: 'a' },
    want: 'ok',
  },
  { name: 'its own container', c: { id: 'self123456789abcdef' }, x: { scope: 'all' }, want: 'self' },
  {
    name: 'protected',
    c: { labels: { 'autoheal.enable': 'true', 'autoheal.protect': 'true' } },
    want: 'protected',
  },
  {
    name: 'action not in the allowed list',
    c: { labels: { 'autoheal.enable': 'true', 'autoheal.actions': 'stop_start' } },
    want: 'action_not_allowed',
  },
  {
    name: 'action in the allowed list',
    c: { labels: { 'autoheal.enable': 'true', 'autoheal.actions': 'stop_start,restart' } },
    want: 'ok',
  },
  { name: 'paused through the API', r: { pausedUntil: NOW + 1000 }, want: 'paused' },
  { name: 'pause expired', r: { pausedUntil: NOW - 1 }, want: 'ok' },
  {
    name: 'paused by label',
    c: {
      labels: { 'autoheal.enable': 'true', 'autoheal.paused_until': new Date(NOW + 60_000).toISOString() },
    },
    want: 'paused',
  },
  { name: 'an action is running', busy: true, want: 'in_progress' },
  {
    name: 'intent recorded, not finished',
    r: { inFlight: { action: 'restart', startedAt: NOW - 1, remediationId: 'x' } },
    want: 'in_progress',
  },
  {
    name: 'stopped by an operator',
    c: { state: 'exited', health: 'none' },
    r: { stoppedByOperator: true },
    want: 'stopped_by_operator',
  },
  {
    name: 'operator stop does not block a manual request',
    c: { state: 'exited', health: 'none' },
    r: { stoppedByOperator: true },
    s: { source: 'manual' },
    want: 'ok',
  },
  {
    name: 'watcher: inside the start period',
    s: { source: 'docker_event', condition: 'unhealthy' },
    c: { startedAt: NOW - 1000 },
    x: { startPeriodMs: 5000 },
    want: 'start_period',
  },
  {
    name: 'watcher: start period from the label',
    s: { source: 'docker_event', condition: 'unhealthy' },
    c: { startedAt: NOW - 1000, labels: { 'autoheal.enable': 'true', 'autoheal.start_period': '30s' } },
    want: 'start_period',
  },
  {
    name: 'alerts ignore the start period',
    c: { startedAt: NOW - 1000 },
    x: { startPeriodMs: 5000 },
    want: 'ok',
  },
  {
    name: 'watcher: healthy again',
    s: { source: 'reconcile', condition: 'unhealthy' },
    c: { health: 'healthy' },
    want: 'already_healthy',
  },
  { name: 'given up', r: { givenUp: true, attempts: 3 }, want: 'given_up' },
  { name: 'attempts exhausted', r: { attempts: 3, lastActionAt: NOW - 10_000_000 }, want: 'max_attempts' },
  {
    name: 'per-container max attempts',
    c: { labels: { 'autoheal.enable': 'true', 'autoheal.max_attempts': '5' } },
    r: { attempts: 3 },
    want: 'ok',
  },
  {
    name: 'attempts reset after the stable period',
    r: { attempts: 3, healthySince: NOW - 600_000 },
    want: 'ok',
  },
  {
    name: 'attempts kept inside the stable period',
    r: { attempts: 3, healthySince: NOW - 599_000 },
    want: 'max_attempts',
  },
  { name: 'cooldown running', r: { attempts: 1, nextAllowedAt: NOW + 5000 }, want: 'cooldown_active' },
  { name: 'cooldown over', r: { attempts: 1, nextAllowedAt: NOW }, want: 'ok' },
  {
    name: 'force skips the cooldown',
    r: { attempts: 1, nextAllowedAt: NOW + 5000 },
    s: { source: 'manual', force: true },
    want: 'forced',
  },
  {
    name: 'force skips given up',
    r: { givenUp: true, attempts: 3 },
    s: { source: 'manual', force: true },
    want: 'forced',
  },
  {
    name: 'force never skips scope',
    c: { labels: {} },
    s: { source: 'manual', force: true },
    want: 'not_in_scope',
  },
  {
    name: 'force never skips protection',
    c: { labels: { 'autoheal.enable': 'true', 'autoheal.protect': 'true' } },
    s: { force: true },
    want: 'protected',
  },
  { name: 'breaker open', circuitOpenUntil: NOW + 1, want: 'circuit_open' },
  { name: 'breaker open, manual request', circuitOpenUntil: NOW + 1, s: { source: 'manual' }, want: 'ok' },
  { name: 'dry run', x: { dryRun: true }, want: 'dry_run' },
  { name: 'dry run asked by the request', s: { source: 'manual', dryRun: true }, want: 'dry_run' },
];

t.test('decide()', async (t) => {
  for (const k of cases) {
    const d = decide({
      signal: signal(k.s),
      action: 'restart',
      container: container(k.c),
      record: k.r ? record(k.r) : undefined,
      circuit: { actionTimes: [], openUntil: k.circuitOpenUntil },
      busy: k.busy ?? false,
      now: NOW,
      ctx: { ...ctx, ...k.x },
    });
    t.equal(d.reason, k.want, k.name);
    t.equal(d.verdict === 'act', ['ok', 'forced', 'dry_run'].includes(k.want), `${k.name}: verdict`);
  }
});

t.test('admit()', async (t) => {
  const table: Array<[Partial<Signal>, string | true]> = [
    [{}, true],
    [{ host: 'node-b' }, 'other_host'],
    [{ host: 'node-a' }, true],
    [{ action: undefined }, 'no_action'],
    [{ action: 'none' }, 'no_action'],
    [{ action: 'reboot' }, 'unknown_action'],
    [{ target: { kind: 'none' } }, 'no_target'],
    [{ target: { kind: 'host' }, action: 'cleanup' }, true],
  ];
  for (const [s, want] of table) {
    const a = admit(signal(s), ctx);
    t.equal(a.ok ? true : a.decision.reason, want, JSON.stringify(s));
  }
});

t.test('cooldown grows exponentially and is capped', async (t) => {
  t.same(
    [0, 1, 2, 3, 4, 5, 10].map((f) => cooldownAfter(f, 1000, 10_000)),
    [1000, 1000, 2000, 4000, 8000, 10_000, 10_000],
  );
});

t.test('effective attempts', async (t) => {
  t.equal(effectiveAttempts(undefined, NOW, cfg.policy), 0);
  t.equal(effectiveAttempts(record({ attempts: 2 }), NOW, cfg.policy), 2);
  t.equal(effectiveAttempts(record({ attempts: 2, healthySince: NOW - 600_000 }), NOW, cfg.policy), 0);
});

t.test('circuit breaker opens once past the limit within the window', async (t) => {
  const p = { ...cfg.policy, circuitMaxActions: 3, circuitWindowMs: 60_000, circuitCooldownMs: 120_000 };
  let c: { actionTimes: readonly number[]; openUntil?: number | undefined } = { actionTimes: [] };
  const opened: boolean[] = [];
  for (let i = 0; i < 5; i++) {
    const r = recordAction(c, NOW + i * 1000, p);
    c = r.next;
    opened.push(r.opened);
  }
  t.same(opened, [false, false, false, true, false]);
  t.equal(c.openUntil, NOW + 3000 + 120_000);
  // Old actions fall out of the window.
  const spread = [0, 61_000, 122_000, 183_000].reduce((acc, dt) => recordAction(acc, NOW + dt, p).next, {
    actionTimes: [] as readonly number[],
  } as { actionTimes: readonly number[]; openUntil?: number });
  t.equal(spread.openUntil, undefined);
});

t.test('host actions: breaker and dry run', async (t) => {
  const s = signal({ action: 'cleanup', target: { kind: 'host' } });
  t.equal(decideHost(s, { actionTimes: [] }, false, NOW, ctx).reason, 'ok');
  t.equal(decideHost(s, { actionTimes: [] }, true, NOW, ctx).reason, 'in_progress');
  t.equal(decideHost(s, { actionTimes: [], openUntil: NOW + 1 }, false, NOW, ctx).reason, 'circuit_open');
  t.equal(decideHost(s, { actionTimes: [] }, false, NOW, { ...ctx, dryRun: true }).reason, 'dry_run');
});

// What counts as an attempt (docs/AUTO_REPAIR_GUIDE.md): a skip is not a failure, and only a container
// that is actually failing (last attempt not verified, not healthy now) is given up.
t.test('attempts used up: max_attempts, flapping, or given up', async (t) => {
  const healthy = { state: 'running', health: 'healthy' } as const;
  const noCheck = { state: 'running', health: 'none' } as const;
  const unhealthy = { state: 'running', health: 'unhealthy' } as const;
  const exited = { state: 'exited', health: 'none' } as const;
  const healedAt = NOW - 60_000;
  const table: Array<{
    name: string;
    r: Partial<ContainerRecord>;
    c: Partial<ContainerView>;
    s?: Partial<Signal>;
    want: string;
    givenUp: boolean;
    page?: boolean;
  }> = [
    {
      name: 'last attempt failed, still unhealthy',
      r: { attempts: 3, lastResult: 'failed' },
      c: unhealthy,
      want: 'max_attempts',
      givenUp: true,
    },
    {
      name: 'last attempt timed out, exited',
      r: { attempts: 3, lastResult: 'timed_out' },
      c: exited,
      want: 'max_attempts',
      givenUp: true,
    },
    {
      name: 'last attempt interrupted by a restart of the service, unhealthy',
      r: { attempts: 3, lastResult: 'interrupted' },
      c: unhealthy,
      want: 'max_attempts',
      givenUp: true,
    },
    {
      name: 'last attempt failed, healthy again by itself',
      r: { attempts: 3, lastResult: 'failed' },
      c: healthy,
      want: 'max_attempts',
      givenUp: false,
    },
    {
      name: 'MAX_RESTART_ATTEMPTS=1: healed, asked again while healthy',
      r: { attempts: 1, lastResult: 'succeeded', healedAt },
      c: { ...healthy, labels: { 'autoheal.enable': 'true', 'autoheal.max_attempts': '1' } },
      s: { source: 'manual' },
      want: 'max_attempts',
      givenUp: false,
    },
    {
      name: 'three heals, a late alert while healthy',
      r: { attempts: 3, lastResult: 'succeeded', healedAt },
      c: healthy,
      want: 'max_attempts',
      givenUp: false,
    },
    {
      name: 'three heals, running without a health check',
      r: { attempts: 3, lastResult: 'succeeded', healedAt },
      c: noCheck,
      want: 'max_attempts',
      givenUp: false,
    },
    {
      name: 'three heals and failing again: flapping, told once',
      r: { attempts: 3, lastResult: 'succeeded', healedAt },
      c: unhealthy,
      want: 'flapping',
      givenUp: false,
      page: true,
    },
    {
      name: 'flapping, already told since the last recovery',
      r: { attempts: 3, lastResult: 'succeeded', healedAt, flappingAt: healedAt + 1 },
      c: unhealthy,
      want: 'flapping',
      givenUp: false,
      page: false,
    },
    {
      name: 'flapping: STABLE_PERIOD after the last recovery gives fresh attempts',
      r: { attempts: 3, lastResult: 'succeeded', healedAt: NOW - 600_000 },
      c: unhealthy,
      want: 'ok',
      givenUp: false,
    },
    {
      name: 'flapping, forced by an operator',
      r: { attempts: 3, lastResult: 'succeeded', healedAt },
      c: unhealthy,
      s: { source: 'manual', force: true },
      want: 'forced',
      givenUp: false,
    },
    {
      name: 'failed attempts do not reset STABLE_PERIOD after an old recovery',
      r: { attempts: 3, lastResult: 'failed', healedAt: NOW - 600_000 },
      c: unhealthy,
      want: 'max_attempts',
      givenUp: true,
    },
  ];
  for (const k of table) {
    const r = record(k.r);
    const c = container(k.c);
    const d = decide({
      signal: signal(k.s),
      action: 'restart',
      container: c,
      record: r,
      circuit: { actionTimes: [] },
      busy: false,
      now: NOW,
      ctx,
    });
    t.equal(d.reason, k.want, k.name);
    t.equal(d.reason === 'max_attempts' && shouldGiveUp(r, c), k.givenUp, `${k.name}: given up`);
    if (k.page !== undefined) t.equal(shouldReportFlapping(r, c), k.page, `${k.name}: a human is told`);
  }
});

t.test('effective attempts reset STABLE_PERIOD after a verified recovery', async (t) => {
  const r = (o: Partial<ContainerRecord>) => record({ attempts: 2, ...o });
  t.equal(effectiveAttempts(r({ lastResult: 'succeeded', healedAt: NOW - 599_000 }), NOW, cfg.policy), 2);
  t.equal(effectiveAttempts(r({ lastResult: 'succeeded', healedAt: NOW - 600_000 }), NOW, cfg.policy), 0);
  t.equal(effectiveAttempts(r({ lastResult: 'failed', healedAt: NOW - 600_000 }), NOW, cfg.policy), 2);
  t.equal(
    effectiveAttempts(
      r({
        lastResult: 'succeeded',
        healedAt: NOW - 600_000,
        inFlight: { action: 'restart', startedAt: NOW, remediationId: 'x' },
      }),
      NOW,
      cfg.policy,
    ),
    2,
    'never while an action runs',
  );
});

t.test('mayTouch: what no signal may act on, whatever it asks', async (t) => {
  const labelled = { 'autoheal.enable': 'true' };
  const cases: Array<[string, Partial<ContainerView>, string, string | undefined]> = [
    ['in scope', { labels: labelled }, 'restart', undefined],
    ['out of scope', { labels: {} }, 'restart', 'not_in_scope'],
    ['protected', { labels: { ...labelled, 'autoheal.protect': 'true' } }, 'restart', 'protected'],
    [
      'action not allowed',
      { labels: { ...labelled, 'autoheal.actions': 'restart' } },
      'recreate',
      'action_not_allowed',
    ],
    [
      'the old container of a recreate',
      { name: 'web-autoheal-replaced', labels: labelled },
      'restart',
      'in_progress',
    ],
  ];
  for (const [what, c, action, want] of cases) {
    t.equal(mayTouch(containerView(c), action, undefined, NOW, ctx)?.reason, want, what);
  }
});
