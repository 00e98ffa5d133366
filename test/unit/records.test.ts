// Table-driven tests of the record transitions (core/records.ts): how a container's record changes
// when the watcher sees it, an action starts and ends, an operator resets it, or the service restarts
// in the middle of an action. No Docker engine: time is a number and the policy a literal.
import t from 'tap';
import { defaultActions } from '../../src/actions/registry.js';
import { decide, type PolicyContext } from '../../src/core/policy.js';
import {
  flappingReported,
  givenUp,
  incidentEnded,
  intentRecorded,
  observed,
  type RecordPolicy,
  resetRecord,
  resultRecorded,
  resumed,
  type Sighting,
  skipConsequence,
} from '../../src/core/records.js';
import type {
  ContainerRecord,
  ContainerView,
  Decision,
  RemediationResult,
  Signal,
  SignalOrigin,
} from '../../src/core/types.js';
import { alertSignal, containerView, NOW } from '../fixtures/views.js';

const MIN = 60_000;
const policy: RecordPolicy = {
  maxAttempts: 3,
  cooldownMs: MIN,
  backoffMaxMs: 5 * MIN,
  stablePeriodMs: 10 * MIN,
  circuitMaxActions: 100,
  circuitWindowMs: MIN,
  circuitCooldownMs: MIN,
};
const ctx: PolicyContext = {
  scope: 'label',
  composeProject: undefined,
  selfContainerId: undefined,
  dryRun: false,
  policy,
  startPeriodMs: 0,
  nodeName: undefined,
  actions: defaultActions(),
};

const view = containerView;
const record = (o: Partial<ContainerRecord> = {}): ContainerRecord => ({
  name: 'web',
  attempts: 0,
  failures: 0,
  givenUp: false,
  ...o,
});
const signal = (o: Partial<Signal> = {}): Signal =>
  alertSignal({
    labels: { alertname: 'ContainerDown' },
    alertname: 'ContainerDown',
    fingerprint: 'fp1',
    ...o,
  });
const intent = (o: { startedAt?: number; signalId?: string; incidentId?: string } = {}) => ({
  action: 'restart' as const,
  startedAt: o.startedAt ?? NOW,
  remediationId: 'rem-1',
  signalId: o.signalId ?? 's1',
  incidentId: o.incidentId ?? 'inc-1',
});
const outcome = (result: RemediationResult, o: { view?: ContainerView; signal?: Signal } = {}) => ({
  action: 'restart' as const,
  result,
  view: o.view ?? view(),
  signal: o.signal ?? signal(),
});
const seen = (o: Partial<Sighting> = {}): Sighting => ({ now: NOW, busy: false, ...o });

t.test('back-off: nextAllowedAt after 1..n consecutive failures', async (t) => {
  // The cooldown doubles with each failure and is capped at backoffMaxMs (5 minutes).
  const table: Array<{
    failuresBefore: number;
    result: RemediationResult;
    wantFailures: number;
    wantMs: number;
  }> = [
    { failuresBefore: 0, result: 'failed', wantFailures: 1, wantMs: MIN },
    { failuresBefore: 1, result: 'failed', wantFailures: 2, wantMs: 2 * MIN },
    { failuresBefore: 2, result: 'timed_out', wantFailures: 3, wantMs: 4 * MIN },
    { failuresBefore: 3, result: 'failed', wantFailures: 4, wantMs: 5 * MIN },
    { failuresBefore: 9, result: 'failed', wantFailures: 10, wantMs: 5 * MIN },
    { failuresBefore: 4, result: 'succeeded', wantFailures: 0, wantMs: MIN },
  ];
  const roomy = { ...policy, maxAttempts: 100 };
  for (const k of table) {
    const r = record({ attempts: k.failuresBefore + 1, failures: k.failuresBefore, incidentId: 'inc-1' });
    const step = resultRecorded(r, outcome(k.result), NOW, roomy);
    const name = `${k.failuresBefore} failures, then ${k.result}`;
    t.equal(step.record.failures, k.wantFailures, `${name}: failures`);
    t.equal(
      step.record.nextAllowedAt,
      NOW + k.wantMs,
      `${name}: next action allowed after ${k.wantMs / MIN} min`,
    );
    t.equal(step.record.lastResult, k.result, `${name}: last result`);
    t.equal(step.record.inFlight, undefined, `${name}: no longer in flight`);
    if (k.result === 'succeeded') {
      t.equal(step.next, 'recovered', `${name}: recovered`);
    } else {
      t.equal(step.next, 'retry', `${name}: a retry follows`);
      if (step.next === 'retry') {
        t.equal(step.retryAt, NOW + k.wantMs, `${name}: the retry waits for the cooldown`);
        t.same(step.record.pendingRetry?.at, NOW + k.wantMs, `${name}: the retry is recorded`);
      }
    }
  }
});

t.test('back-off honours the per-container cooldown label', async (t) => {
  const labelled = view({ labels: { 'autoheal.enable': 'true', 'autoheal.cooldown': '10' } });
  const table = [
    { failuresBefore: 0, wantMs: 10_000 },
    { failuresBefore: 1, wantMs: 20_000 },
    { failuresBefore: 5, wantMs: 5 * MIN },
  ];
  for (const k of table) {
    const r = record({ attempts: 1, failures: k.failuresBefore });
    const step = resultRecorded(r, outcome('failed', { view: labelled }), NOW, policy);
    t.equal(step.record.nextAllowedAt, NOW + k.wantMs, `${k.failuresBefore} failures before: ${k.wantMs} ms`);
  }
});

/** The fields of r that `want` names, to compare a record on what a case is about. */
const pick = (r: ContainerRecord, want: Partial<ContainerRecord>): Partial<ContainerRecord> =>
  Object.fromEntries(Object.keys(want).map((k) => [k, r[k as keyof ContainerRecord]]));

t.test('a result: recovered, retried, given up, or left given up', async (t) => {
  const inFlight = { action: 'restart' as const, startedAt: NOW - 5000, remediationId: 'rem-1' };
  const table: Array<{
    name: string;
    r: Partial<ContainerRecord>;
    result: RemediationResult;
    v?: ContainerView;
    want: 'recovered' | 'retry' | 'given_up' | 'none';
    fields: Partial<ContainerRecord>;
  }> = [
    {
      name: 'a verified recovery closes the incident and starts the healthy period',
      r: { attempts: 2, failures: 1, incidentId: 'inc-1', inFlight },
      result: 'succeeded',
      want: 'recovered',
      fields: { incidentId: undefined, healthySince: NOW, healedAt: NOW, failures: 0, attempts: 2 },
    },
    {
      name: 'a failure with attempts left is retried, the incident kept',
      r: { attempts: 2, failures: 1, incidentId: 'inc-1', healedAt: NOW - MIN, inFlight },
      result: 'failed',
      want: 'retry',
      fields: { incidentId: 'inc-1', healthySince: undefined, healedAt: NOW - MIN, givenUp: false },
    },
    {
      name: 'the last attempt failing gives up',
      r: { attempts: 3, failures: 2, incidentId: 'inc-1', inFlight },
      result: 'failed',
      want: 'given_up',
      fields: { givenUp: true, givenUpAt: NOW, pendingRetry: undefined, incidentId: 'inc-1', failures: 3 },
    },
    {
      name: 'a timeout of the last attempt gives up too',
      r: { attempts: 3, failures: 2 },
      result: 'timed_out',
      want: 'given_up',
      fields: { givenUp: true, givenUpAt: NOW },
    },
    {
      name: 'the max attempts label gives more attempts',
      r: { attempts: 3, failures: 2 },
      result: 'failed',
      v: view({ labels: { 'autoheal.enable': 'true', 'autoheal.max_attempts': '5' } }),
      want: 'retry',
      fields: { givenUp: false },
    },
    {
      name: 'a forced action failing on a container already given up leaves it given up',
      r: { attempts: 4, failures: 3, givenUp: true, givenUpAt: NOW - MIN },
      result: 'failed',
      want: 'none',
      fields: { givenUp: true, givenUpAt: NOW - MIN, pendingRetry: undefined },
    },
  ];
  for (const k of table) {
    const step = resultRecorded(record(k.r), outcome(k.result, { view: k.v }), NOW, policy);
    t.equal(step.next, k.want, `${k.name}: ${k.want}`);
    t.same(pick(step.record, k.fields), k.fields, `${k.name}: record`);
    t.equal(step.record.inFlight, undefined, `${k.name}: no longer in flight`);
  }
});

t.test('a retry keeps the origin of the signal that started the incident', async (t) => {
  const first: SignalOrigin = {
    source: 'alertmanager',
    alertname: 'ContainerDown',
    fingerprint: 'fp1',
    severity: 'critical',
    labels: { alertname: 'ContainerDown' },
    annotations: {},
    generatorURL: undefined,
    externalURL: undefined,
  };
  const table: Array<{
    name: string;
    s: Signal;
    r: Partial<ContainerRecord>;
    want: SignalOrigin | undefined;
  }> = [
    {
      name: 'a first failure records its own signal',
      s: signal({ severity: 'critical' }),
      r: { attempts: 1 },
      want: first,
    },
    {
      name: 'a retry that fails keeps the first origin',
      s: signal({ source: 'alertmanager', condition: 'retry', fingerprint: undefined, alertname: 'Other' }),
      r: { attempts: 2, failures: 1, pendingRetry: { action: 'restart', at: NOW, origin: first } },
      want: first,
    },
  ];
  for (const k of table) {
    const step = resultRecorded(record(k.r), outcome('failed', { signal: k.s }), NOW, policy);
    t.same(step.record.pendingRetry?.origin, k.want, k.name);
  }
});

t.test('the intent: counted before the action runs', async (t) => {
  const table: Array<{
    name: string;
    r: Partial<ContainerRecord>;
    wantAttempts: number;
    wantFailures: number;
  }> = [
    { name: 'a first attempt', r: {}, wantAttempts: 1, wantFailures: 0 },
    {
      name: 'a second attempt keeps the back-off',
      r: { attempts: 1, failures: 1 },
      wantAttempts: 2,
      wantFailures: 1,
    },
    {
      name: 'healthy for the stable period: a fresh count and a fresh back-off',
      r: { attempts: 3, failures: 3, healthySince: NOW - 10 * MIN },
      wantAttempts: 1,
      wantFailures: 0,
    },
    {
      name: 'healthy for less than the stable period: the count goes on',
      r: { attempts: 2, failures: 0, healthySince: NOW - 9 * MIN },
      wantAttempts: 3,
      wantFailures: 0,
    },
    {
      name: 'the stable period past a verified recovery: a fresh count',
      r: { attempts: 3, failures: 0, lastResult: 'succeeded', healedAt: NOW - 10 * MIN },
      wantAttempts: 1,
      wantFailures: 0,
    },
  ];
  for (const k of table) {
    const before = record({
      ...k.r,
      stoppedByOperator: true,
      pendingRetry: { action: 'restart', at: NOW },
      lastSignalId: 'old',
    });
    const next = intentRecorded(before, intent(), policy);
    t.equal(next.attempts, k.wantAttempts, `${k.name}: attempts`);
    t.equal(next.failures, k.wantFailures, `${k.name}: failures`);
    t.same(
      {
        lastActionAt: next.lastActionAt,
        lastAction: next.lastAction,
        healthySince: next.healthySince,
        pendingRetry: next.pendingRetry,
        stoppedByOperator: next.stoppedByOperator,
        incidentId: next.incidentId,
        inFlight: next.inFlight,
        lastSignalId: next.lastSignalId,
      },
      {
        lastActionAt: NOW,
        lastAction: 'restart',
        healthySince: undefined,
        pendingRetry: undefined,
        stoppedByOperator: false,
        incidentId: 'inc-1',
        inFlight: { action: 'restart', startedAt: NOW, remediationId: 'rem-1', signalId: 's1' },
        lastSignalId: 's1',
      },
      `${k.name}: the intent`,
    );
  }
});

t.test('retries until given up: a walk through three failed attempts', async (t) => {
  let r = record();
  const at = [NOW, NOW + MIN, NOW + 3 * MIN];
  const wantNext = ['retry', 'retry', 'given_up'];
  const wantAllowed = [NOW + MIN, NOW + 3 * MIN, NOW + 7 * MIN];
  for (const [i, startedAt] of at.entries()) {
    r = intentRecorded(r, intent({ startedAt, signalId: `s${i}` }), policy);
    t.equal(r.attempts, i + 1, `attempt ${i + 1} counted`);
    const step = resultRecorded(r, outcome('failed'), startedAt, policy);
    r = step.record;
    t.equal(step.next, wantNext[i], `attempt ${i + 1}: ${wantNext[i]}`);
    t.equal(r.nextAllowedAt, wantAllowed[i], `attempt ${i + 1}: next allowed`);
  }
  t.equal(r.givenUp, true);
  t.equal(r.givenUpAt, NOW + 3 * MIN);
  const d = decide({
    signal: signal(),
    action: 'restart',
    container: view(),
    record: r,
    circuit: { actionTimes: [] },
    busy: false,
    now: NOW + 60 * MIN,
    ctx,
  });
  t.equal(d.reason, 'given_up', 'a given-up container waits for recovery or a reset');
});

t.test('given up', async (t) => {
  const r = record({ attempts: 3, pendingRetry: { action: 'restart', at: NOW + MIN }, incidentId: 'inc-1' });
  t.same(givenUp(r, NOW), { ...r, givenUp: true, givenUpAt: NOW, pendingRetry: undefined });
  const already = record({ attempts: 3, givenUp: true, givenUpAt: NOW - MIN });
  t.equal(givenUp(already, NOW), already, 'giving up twice keeps the first time');
});

t.test('an operator reset', async (t) => {
  const r = record({
    attempts: 3,
    failures: 3,
    givenUp: true,
    givenUpAt: NOW - MIN,
    nextAllowedAt: NOW + MIN,
    pendingRetry: { action: 'restart', at: NOW + MIN },
    incidentId: 'inc-1',
    flappingAt: NOW - MIN,
    lastResult: 'failed',
    pausedUntil: NOW + 60 * MIN,
    stoppedByOperator: true,
  });
  const next = resetRecord(r);
  t.same(next, {
    ...r,
    attempts: 0,
    failures: 0,
    givenUp: false,
    givenUpAt: undefined,
    nextAllowedAt: undefined,
    pendingRetry: undefined,
    incidentId: undefined,
    flappingAt: undefined,
  });
  t.equal(next.pausedUntil, NOW + 60 * MIN, 'a pause is not a failure count: it stays');
  t.equal(next.lastResult, 'failed', 'history stays');
  const d = decide({
    signal: signal(),
    action: 'restart',
    container: view(),
    record: next,
    circuit: { actionTimes: [] },
    busy: false,
    now: NOW + 61 * MIN,
    ctx,
  });
  t.equal(d.reason, 'ok', 'a reset container is healed again');
});

t.test('resume after a crash of the service during an action', async (t) => {
  const inFlight = { action: 'restart' as const, startedAt: NOW, remediationId: 'rem-1', signalId: 's1' };
  const table: Array<{ name: string; r: Partial<ContainerRecord>; wantAllowed: number | undefined }> = [
    { name: 'the cooldown holds from the action start', r: { inFlight }, wantAllowed: NOW + MIN },
    {
      name: 'a longer back-off already recorded is kept',
      r: { inFlight, nextAllowedAt: NOW + 4 * MIN },
      wantAllowed: NOW + 4 * MIN,
    },
    {
      name: 'a pending retry is dropped: the interrupted action is verified instead',
      r: { inFlight, pendingRetry: { action: 'restart', at: NOW + 2 * MIN } },
      wantAllowed: NOW + MIN,
    },
  ];
  for (const k of table) {
    const r = record({ attempts: 1, ...k.r });
    const next = resumed(r, policy.cooldownMs);
    t.equal(next.nextAllowedAt, k.wantAllowed, `${k.name}: next allowed`);
    t.equal(next.pendingRetry, undefined, `${k.name}: no retry`);
    t.same(next.inFlight, inFlight, `${k.name}: still in flight until verified`);
    t.equal(next.attempts, 1, `${k.name}: the interrupted action counts`);
  }
  const idle = record({ attempts: 1, nextAllowedAt: NOW });
  t.equal(resumed(idle, policy.cooldownMs), idle, 'a record with no action in flight is left alone');

  // The walk: intent, crash, resume, then the verification's result is that attempt's.
  let r = intentRecorded(record(), intent(), policy);
  r = resumed(r, policy.cooldownMs);
  const blocked = decide({
    signal: signal({ id: 's2' }),
    action: 'restart',
    container: view(),
    record: r,
    circuit: { actionTimes: [] },
    busy: false,
    now: NOW + 5000,
    ctx,
  });
  t.equal(blocked.reason, 'in_progress', 'nothing else is decided while it is verified');
  const step = resultRecorded(r, outcome('failed'), NOW + 30_000, policy);
  t.equal(step.next, 'retry');
  t.equal(step.record.attempts, 1, 'the verification does not count a second attempt');
  t.equal(step.record.inFlight, undefined);
  t.equal(step.record.nextAllowedAt, NOW + 30_000 + MIN);
});

t.test('what the watcher sees', async (t) => {
  const given = record({
    attempts: 3,
    failures: 3,
    givenUp: true,
    givenUpAt: NOW - MIN,
    incidentId: 'inc-1',
    pendingRetry: { action: 'restart', at: NOW },
  });
  const table: Array<{
    name: string;
    r: ContainerRecord | undefined;
    v: Partial<ContainerView>;
    s?: Partial<Sighting>;
    want: ContainerRecord | undefined;
    recovered?: { incidentId: string | undefined };
  }> = [
    { name: 'no record, nothing to keep', r: undefined, v: { health: 'healthy' }, want: undefined },
    {
      name: 'no record, an operator stop is kept',
      r: undefined,
      v: { state: 'exited', health: 'none' },
      s: { stoppedByOperator: true },
      want: record({ stoppedByOperator: true }),
    },
    {
      name: 'no record, an operator start needs none',
      r: undefined,
      v: { health: 'healthy' },
      s: { stoppedByOperator: false },
      want: undefined,
    },
    {
      name: 'an operator stop is recorded',
      r: record({ attempts: 1 }),
      v: { state: 'exited', health: 'none' },
      s: { stoppedByOperator: true },
      want: record({ attempts: 1, stoppedByOperator: true }),
    },
    {
      name: 'the same operator stop again changes nothing',
      r: record({ stoppedByOperator: true }),
      v: { state: 'exited', health: 'none' },
      s: { stoppedByOperator: true },
      want: undefined,
    },
    {
      name: 'a start clears the operator stop',
      r: record({ stoppedByOperator: true, healthySince: NOW - MIN }),
      v: { health: 'healthy' },
      s: { stoppedByOperator: false },
      want: record({ stoppedByOperator: false, healthySince: NOW - MIN }),
    },
    {
      name: 'healthy: the healthy period starts',
      r: record({ attempts: 1 }),
      v: { health: 'healthy' },
      want: record({ attempts: 1, healthySince: NOW }),
    },
    {
      name: 'running with no health check counts as healthy',
      r: record({ attempts: 1 }),
      v: { health: 'none' },
      want: record({ attempts: 1, healthySince: NOW }),
    },
    {
      name: 'healthy for the stable period: attempts and back-off reset',
      r: record({ attempts: 2, failures: 2, healthySince: NOW - 10 * MIN }),
      v: { health: 'healthy' },
      want: record({ attempts: 0, failures: 0, healthySince: NOW - 10 * MIN }),
    },
    {
      name: 'healthy for less than the stable period: attempts kept',
      r: record({ attempts: 2, failures: 2, healthySince: NOW - 9 * MIN }),
      v: { health: 'healthy' },
      want: undefined,
    },
    {
      name: 'healthy while an action is in flight: the result decides, not the watcher',
      r: record({ attempts: 1, inFlight: { action: 'restart', startedAt: NOW - 1000, remediationId: 'r' } }),
      v: { health: 'healthy' },
      want: undefined,
    },
    {
      name: 'healthy while an action runs: the result decides, not the watcher',
      r: record({ attempts: 1 }),
      v: { health: 'healthy' },
      s: { busy: true },
      want: undefined,
    },
    {
      name: 'a given-up container healthy again recovers',
      r: given,
      v: { health: 'healthy' },
      want: {
        ...given,
        givenUp: false,
        givenUpAt: undefined,
        attempts: 0,
        failures: 0,
        pendingRetry: undefined,
        incidentId: undefined,
        healthySince: NOW,
      },
      recovered: { incidentId: 'inc-1' },
    },
    {
      name: 'a failing health check ends the healthy period',
      r: record({ attempts: 1, healthySince: NOW - MIN }),
      v: { health: 'unhealthy' },
      want: record({ attempts: 1, healthySince: undefined }),
    },
    {
      name: 'an exit leaves the healthy period to the next action',
      r: record({ attempts: 1, healthySince: NOW - MIN }),
      v: { state: 'exited', health: 'none' },
      want: undefined,
    },
    {
      name: 'a health check still starting leaves it too',
      r: record({ attempts: 1, healthySince: NOW - MIN }),
      v: { health: 'starting' },
      want: undefined,
    },
  ];
  for (const k of table) {
    const step = observed(k.r, view(k.v), seen(k.s), policy);
    t.same(step.record, k.want, `${k.name}: record`);
    t.same(step.recovered, k.recovered, `${k.name}: ${k.recovered ? 'recovered' : 'no recovery'}`);
  }
});

t.test('the operator-stop rule: a stop on purpose holds automatic healing until it starts', async (t) => {
  const stopped = view({ state: 'exited', health: 'none' });
  let r = observed(record({ attempts: 1 }), stopped, seen({ stoppedByOperator: true }), policy).record;
  const decideFor = (s: Partial<Signal>, c: ContainerView, rec: ContainerRecord | undefined) =>
    decide({
      signal: signal(s),
      action: 'restart',
      container: c,
      record: rec,
      circuit: { actionTimes: [] },
      busy: false,
      now: NOW + 10 * MIN,
      ctx,
    }).reason;
  t.equal(decideFor({ source: 'docker_event', condition: 'exited' }, stopped, r), 'stopped_by_operator');
  t.equal(decideFor({ source: 'alertmanager' }, stopped, r), 'stopped_by_operator');
  t.equal(decideFor({ source: 'manual' }, stopped, r), 'ok', 'an operator may still ask for an action');
  // An action an operator asked for starts it again: the stop no longer holds.
  r = intentRecorded(r ?? record(), intent({ startedAt: NOW + 10 * MIN }), policy);
  t.equal(r.stoppedByOperator, false);
  // Or the operator starts it: the watcher clears the flag.
  const again = observed(
    record({ stoppedByOperator: true }),
    view({ health: 'healthy' }),
    seen({ stoppedByOperator: false }),
    policy,
  ).record;
  t.equal(again?.stoppedByOperator, false);
  t.equal(decideFor({ source: 'docker_event', condition: 'unhealthy' }, view(), again), 'ok');
});

t.test('what a skip does to the record', async (t) => {
  const skip = (reason: Extract<Decision, { verdict: 'skip' }>['reason']) =>
    ({ verdict: 'skip', reason }) as const;
  const table: Array<{
    name: string;
    reason: Extract<Decision, { verdict: 'skip' }>['reason'];
    r: Partial<ContainerRecord> | undefined;
    v?: Partial<ContainerView>;
    want: ReturnType<typeof skipConsequence>;
  }> = [
    {
      name: 'flapping, nobody told yet',
      reason: 'flapping',
      r: { attempts: 3, lastResult: 'succeeded', healedAt: NOW - MIN },
      want: 'report_flapping',
    },
    {
      name: 'flapping, told before the last recovery',
      reason: 'flapping',
      r: { attempts: 3, lastResult: 'succeeded', healedAt: NOW - MIN, flappingAt: NOW - 2 * MIN },
      want: 'report_flapping',
    },
    {
      name: 'flapping, already told since the last recovery',
      reason: 'flapping',
      r: { attempts: 3, lastResult: 'succeeded', healedAt: NOW - 2 * MIN, flappingAt: NOW - MIN },
      want: undefined,
    },
    {
      name: 'flapping, but healthy right now',
      reason: 'flapping',
      r: { attempts: 3, lastResult: 'succeeded', healedAt: NOW - MIN },
      v: { health: 'healthy' },
      want: undefined,
    },
    {
      name: 'attempts used up and failing',
      reason: 'max_attempts',
      r: { attempts: 3, lastResult: 'failed' },
      want: 'give_up',
    },
    {
      name: 'attempts used up after an interrupted attempt',
      reason: 'max_attempts',
      r: { attempts: 3, lastResult: 'interrupted' },
      want: 'give_up',
    },
    {
      name: 'attempts used up, but the last one healed it',
      reason: 'max_attempts',
      r: { attempts: 3, lastResult: 'succeeded' },
      want: undefined,
    },
    {
      name: 'attempts used up, but healthy now',
      reason: 'max_attempts',
      r: { attempts: 3, lastResult: 'failed' },
      v: { health: 'healthy' },
      want: undefined,
    },
    {
      name: 'attempts used up, already given up',
      reason: 'max_attempts',
      r: { attempts: 3, lastResult: 'failed', givenUp: true },
      want: undefined,
    },
    { name: 'no record at all', reason: 'max_attempts', r: undefined, want: undefined },
    {
      name: 'healthy again with an incident open',
      reason: 'already_healthy',
      r: { attempts: 1, incidentId: 'inc-1' },
      want: 'end_incident',
    },
    { name: 'healthy again, no incident', reason: 'already_healthy', r: { attempts: 1 }, want: undefined },
    {
      name: 'healthy again, given up (the watcher recovers it)',
      reason: 'already_healthy',
      r: { attempts: 3, incidentId: 'inc-1', givenUp: true },
      want: undefined,
    },
    {
      name: 'a cooldown changes nothing',
      reason: 'cooldown_active',
      r: { attempts: 1, incidentId: 'inc-1', lastResult: 'failed' },
      want: undefined,
    },
  ];
  for (const k of table) {
    const r = k.r === undefined ? undefined : record(k.r);
    t.equal(skipConsequence(skip(k.reason), r, view(k.v)), k.want, k.name);
  }
  const r = record({ attempts: 3, incidentId: 'old', pendingRetry: { action: 'restart', at: NOW } });
  t.same(
    flappingReported(r, NOW, 'inc-2'),
    { ...r, flappingAt: NOW, incidentId: 'inc-2' },
    'flapping reported',
  );
  t.same(incidentEnded(r), { ...r, pendingRetry: undefined, incidentId: undefined }, 'incident ended');
});
