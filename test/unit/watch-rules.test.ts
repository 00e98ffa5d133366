// Table-driven tests of the watcher's judgements (core/watch-rules.ts): whose stop an event is, what an
// exit asks for, what a reconcile pass signals, and when restarts by Docker become a crash loop.
import t from 'tap';
import { emptyHistory, type RestartHistory } from '../../src/core/crash-loop.js';
import { type ContainerRecord, type ContainerView, emptyRecord } from '../../src/core/types.js';
import {
  exitVerdict,
  OWN_ACTION_WINDOW_MS,
  ownAction,
  REPLAY_AGE_MS,
  reconcileVerdict,
  restartCountVerdict,
  STREAM_GRACE_MS,
  whoStopped,
} from '../../src/core/watch-rules.js';
import { NOW } from '../fixtures/views.js';

const crashLoop = { threshold: 3, windowMs: 60_000 };
/** Three restarts in the last minute, escalated: a crash-loop episode that lasts. */
const looping: RestartHistory = {
  lastCount: 5,
  times: [NOW - 3000, NOW - 2000, NOW - 1000],
  escalatedAt: NOW - 1000,
};
/** The same episode, its last restart an hour ago: over, though nothing has seen it end yet. */
const loopedLongAgo: RestartHistory = { ...looping, times: looping.times.map((x) => x - 3_600_000) };
const record = (o: Partial<ContainerRecord>): ContainerRecord => ({ ...emptyRecord('web'), ...o });
const inFlight = { action: 'restart' as const, startedAt: NOW - 500, remediationId: 'r' };

t.test('ownAction: the service acting, live or replayed after a reconnect', async (t) => {
  const replayedAt = NOW - REPLAY_AGE_MS - 1;
  const cases: Array<{ name: string; r?: Partial<ContainerRecord>; at: number; want: string }> = [
    { name: 'no record: nobody acted', at: NOW, want: 'no_record' },
    { name: 'an action is in flight', r: { inFlight }, at: NOW, want: 'in_flight' },
    {
      name: 'a live event after our action ended',
      r: { lastActionAt: NOW - 5000 },
      at: NOW,
      want: 'not_ours',
    },
    {
      name: 'a replayed event inside the window after our action began',
      r: { lastActionAt: replayedAt - 1000 },
      at: replayedAt,
      want: 'replay_of_own_action',
    },
    {
      name: 'a replayed event from before our action',
      r: { lastActionAt: replayedAt + 1 },
      at: replayedAt,
      want: 'not_ours',
    },
    {
      name: 'a replayed event long after our action',
      r: { lastActionAt: replayedAt - OWN_ACTION_WINDOW_MS },
      at: replayedAt,
      want: 'not_ours',
    },
    { name: 'a replayed event, no action ever', r: {}, at: replayedAt, want: 'not_ours' },
  ];
  for (const k of cases) {
    const v = ownAction(k.r ? record(k.r) : undefined, k.at, NOW);
    t.same([v.reason, v.own], [k.want, k.want === 'in_flight' || k.want === 'replay_of_own_action'], k.name);
  }
});

t.test('whoStopped: own stop, operator stop, or an exit nobody asked for', async (t) => {
  const cases: Array<{
    name: string;
    event: 'kill' | 'stop' | 'die';
    own?: boolean;
    operatorStopAt?: number;
    want: ReturnType<typeof whoStopped>;
  }> = [
    { name: 'our kill', event: 'kill', own: true, want: { by: 'service' } },
    { name: 'our stop', event: 'stop', own: true, want: { by: 'service' } },
    {
      name: 'our die, after an operator kill',
      event: 'die',
      own: true,
      operatorStopAt: 1,
      want: { by: 'service' },
    },
    {
      name: "an operator's kill marks the stop, the record is told by what follows",
      event: 'kill',
      want: { by: 'operator', operatorStopAt: NOW, stoppedByOperator: false },
    },
    {
      name: "an operator's stop tells the record",
      event: 'stop',
      want: { by: 'operator', operatorStopAt: NOW, stoppedByOperator: true },
    },
    {
      name: 'a stop after the kill keeps the first mark',
      event: 'stop',
      operatorStopAt: NOW - 10,
      want: { by: 'operator', operatorStopAt: NOW - 10, stoppedByOperator: true },
    },
    {
      name: 'a die after an operator kill is the operator stop',
      event: 'die',
      operatorStopAt: NOW - 10,
      want: { by: 'operator', operatorStopAt: NOW - 10, stoppedByOperator: true },
    },
    { name: 'a die alone is a crash, judged by its exit', event: 'die', want: { by: 'nobody' } },
  ];
  for (const k of cases) {
    t.same(
      whoStopped({ event: k.event, time: NOW, own: k.own ?? false, operatorStopAt: k.operatorStopAt }),
      k.want,
      k.name,
    );
  }
});

t.test('exitVerdict: what an exit nobody asked for asks of the watcher', async (t) => {
  const base = {
    state: 'exited',
    exitCode: 2 as number | undefined,
    oomKilled: false,
    restartPolicy: 'no' as string | undefined,
    failedExit: true,
    history: emptyHistory,
    crashLoop,
    now: NOW,
  };
  const cases: Array<{ name: string; o: Partial<typeof base>; want: ReturnType<typeof exitVerdict> }> = [
    {
      name: 'a crash',
      o: {},
      want: { verdict: 'failed', reason: 'exited with code 2' },
    },
    {
      name: 'out of memory',
      o: { exitCode: 137, oomKilled: true },
      want: { verdict: 'failed', reason: 'exited with code 137 (out of memory)' },
    },
    {
      name: 'the restart policy is bringing it back',
      o: { state: 'restarting' },
      want: { verdict: 'policy_restart' },
    },
    { name: 'already running again', o: { state: 'running' }, want: { verdict: 'policy_restart' } },
    {
      name: 'in an escalated crash loop',
      o: { history: looping },
      want: { verdict: 'crash_loop_hold', reason: 'exited in a crash loop: left to a human, not restarted' },
    },
    {
      name: 'the restart policy first, even in a crash loop',
      o: { history: looping, state: 'restarting' },
      want: { verdict: 'policy_restart' },
    },
    {
      name: 'a crash loop whose last restart left the window',
      o: { history: loopedLongAgo },
      want: { verdict: 'failed', reason: 'exited with code 2' },
    },
    {
      name: 'a finished job',
      o: { exitCode: 0, failedExit: false, restartPolicy: 'on-failure' },
      want: {
        verdict: 'finished',
        reason: 'finished (exit code 0, restart policy on-failure): not a failure',
      },
    },
    {
      name: 'an exit 0 that is a failure (restart policy always)',
      o: { exitCode: 0, restartPolicy: 'always' },
      want: { verdict: 'failed', reason: 'exited with code 0' },
    },
  ];
  for (const k of cases) t.same(exitVerdict({ ...base, ...k.o }), k.want, k.name);
});

t.test('reconcileVerdict: what a pass signals that the stream missed', async (t) => {
  const unhealthy = { state: 'running', health: 'unhealthy' } as const;
  // Unless a case says otherwise: running at the last look, exited now with a failed exit, no event seen
  // since a pass found it STREAM_GRACE_MS ago.
  const cases: Array<{
    name: string;
    r?: Partial<ContainerRecord>;
    view?: Pick<ContainerView, 'state' | 'health'>;
    wasRunning?: boolean;
    exitSeenAt?: number | null;
    eventsPending?: boolean;
    failedExit?: boolean;
    operatorStopAt?: number;
    history?: RestartHistory;
    want: string;
  }> = [
    { name: 'exited since the last look', want: 'exited: exited (seen at reconcile)' },
    { name: 'unhealthy', view: unhealthy, wasRunning: false, want: 'unhealthy: unhealthy at reconcile' },
    {
      name: 'unhealthy and given up: not signalled at every pass',
      r: { givenUp: true },
      view: unhealthy,
      want: 'given_up',
    },
    { name: 'exited since the last look, given up', r: { givenUp: true }, want: 'given_up' },
    { name: 'running and healthy', view: { state: 'running', health: 'healthy' }, want: 'no_change' },
    {
      name: 'exited at first sight: no missed exit known',
      wasRunning: false,
      exitSeenAt: null,
      want: 'no_change',
    },
    { name: 'a finished job', failedExit: false, want: 'not_a_failure' },
    { name: 'an operator stop the watcher saw', operatorStopAt: NOW - 10, want: 'stopped_by_operator' },
    {
      name: 'an operator stop the record holds',
      r: { stoppedByOperator: true },
      want: 'stopped_by_operator',
    },
    { name: 'our own action is running', r: { inFlight }, want: 'own_action' },
    {
      name: 'our last action long over',
      r: { lastActionAt: NOW - OWN_ACTION_WINDOW_MS - 1 },
      want: 'exited: exited (seen at reconcile)',
    },
    { name: 'held in a crash loop', history: looping, want: 'crash_loop_hold' },
    { name: 'a crash loop that is over', history: loopedLongAgo, want: 'exited: exited (seen at reconcile)' },
    {
      name: 'an exit found now: its kill may still be on the stream',
      exitSeenAt: null,
      want: 'awaiting_events',
    },
    { name: 'found just before', exitSeenAt: NOW - STREAM_GRACE_MS + 1, want: 'awaiting_events' },
    { name: 'its events are being applied', eventsPending: true, want: 'awaiting_events' },
    {
      name: 'found by an earlier pass, exited at this one',
      wasRunning: false,
      want: 'exited: exited (seen at reconcile)',
    },
    {
      name: 'an operator stop that arrived while it waited',
      operatorStopAt: NOW - 10,
      want: 'stopped_by_operator',
    },
  ];
  for (const k of cases) {
    const v = reconcileVerdict({
      record: k.r ? record(k.r) : undefined,
      view: k.view ?? { state: 'exited', health: 'none' },
      wasRunning: k.wasRunning ?? true,
      exitSeenAt: k.exitSeenAt === null ? undefined : (k.exitSeenAt ?? NOW - STREAM_GRACE_MS),
      eventsPending: k.eventsPending ?? false,
      failedExit: k.failedExit ?? true,
      operatorStopAt: k.operatorStopAt,
      history: k.history ?? emptyHistory,
      crashLoop,
      now: NOW,
    });
    t.equal(v.signal ? `${v.signal}: ${v.reason}` : v.reason, k.want, k.name);
  }
});

t.test('restartCountVerdict: a new crash loop is escalated once, with what a human needs', async (t) => {
  const baseline: RestartHistory = { lastCount: 2, times: [NOW - 2000, NOW - 1000] };
  const cases: Array<{ name: string; h: RestartHistory; count: number; want: string | undefined }> = [
    { name: 'first sight is a baseline', h: emptyHistory, count: 9, want: undefined },
    { name: 'no new restart', h: baseline, count: 2, want: undefined },
    {
      name: 'the restart that crosses the threshold',
      h: baseline,
      count: 3,
      want: 'restarted 3 times by its restart policy (on-failure) in 60s; restart count 3',
    },
    { name: 'still looping, already escalated', h: looping, count: 6, want: undefined },
  ];
  for (const k of cases) {
    const v = restartCountVerdict({
      history: k.h,
      restartCount: k.count,
      restartPolicy: 'on-failure',
      crashLoop,
      now: NOW,
    });
    t.equal(v.escalate?.detail, k.want, k.name);
    t.equal(v.history.lastCount, k.count, `${k.name}: the count is remembered`);
  }
});
