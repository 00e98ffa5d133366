// kill -9 at three points of a signal's life, for an alert and for a forced manual request (defect 3):
//   accepted: the signal is durable in the inbox, its decision not yet written anywhere (the process is
//             paused by a breakpoint on the write of the decision's audit line, then killed);
//   intent:   the intent is written and the engine is carrying out the restart (killed on the engine's
//             own `kill` event of the container; PID 1 ignores TERM, so the restart takes its 3 s);
//   result:   the result is written, the inbox mark is not (paused on the write of the mark).
// After a restart of the service the container's restarts are counted from the engine's events: one
// per signal, never two. What the disk held at the kill is read back to show the point was reached.
import { waitForHealth } from '../../../test/fixtures/docker.js';
import { freePort } from '../../../test/fixtures/service.js';
import { armWriteBreakpoint, Inspector, reEscape } from '../cdp.js';
import {
  type Ctx,
  containerCmd,
  containerRecord,
  decisionsOf,
  EventFollower,
  forceRestart,
  inboxIdsMentioning,
  poll,
  postAlerts,
  readState,
  requestState,
  restartAlert,
  type Scenario,
  sleep,
} from '../harness.js';

type Point = 'accepted' | 'intent' | 'result';
type Via = 'alert' | 'manual';

const POINT_TEXT: Record<Point, string> = {
  accepted: 'after the signal is accepted, before its decision',
  intent: 'after the intent is written, during the restart',
  result: 'after the result, before the inbox mark',
};

async function killCase(ctx: Ctx, events: EventFollower, point: Point, via: Via): Promise<void> {
  const label = `${via === 'alert' ? 'alert' : 'forced manual restart'}, kill -9 ${POINT_TEXT[point]}`;
  ctx.say(label);
  const dir = ctx.tmpDir(`k9-${point}`);
  const dataDir = `${dir}/data`;
  const env = { WATCHER_HEAL: 'false', RESTART_COOLDOWN: '1' };
  const t0 = Date.now() - 1000;
  const c = await ctx.testContainer(`k9${point.slice(0, 3)}`, {
    labels: { 'autoheal.stop.timeout': '3' },
    cmd: containerCmd({ slowStop: true, brokenAtFirstStart: via === 'alert' }),
    health: via === 'alert' ? 'unhealthy' : 'healthy',
  });

  const inspectPort = await freePort();
  const s1 = await ctx.startSvc({ ...env, NODE_OPTIONS: `--inspect=127.0.0.1:${inspectPort}` }, dir);
  const insp = await Inspector.connect(inspectPort);
  ctx.teardown(() => insp.close());
  let killedAt = 0;
  const killNow = () => {
    if (killedAt) return;
    killedAt = Date.now();
    s1.proc.kill('SIGKILL');
  };
  const name = reEscape(c.name);
  if (point === 'accepted') {
    // The decision's audit line, the first trace of a decision (the intent is written after it).
    await armWriteBreakpoint(
      insp,
      `^(?=[^\\n]*"event":"decision")(?=[^\\n]*${name})(?![^\\n]*"reason":"duplicate")`,
      killNow,
      'm',
    );
  }
  const fingerprint = `k9-${point}-${c.name}`;
  const alert = restartAlert(c.name, fingerprint, '2026-11-28T00:00:00Z');
  const triggeredAt = Date.now();
  let remediationId: string | undefined;
  if (via === 'alert') {
    const r = await postAlerts(s1.url, [alert]);
    if (r.status !== 200) throw new Error(`the alert got ${r.status}: ${r.body}`);
  } else {
    const { res, id } = await forceRestart(s1.url, c.name, 'reliability: kill -9');
    if (id === undefined) throw new Error(`the manual request got ${res.status}: ${res.body}`);
    remediationId = id;
  }
  if (point === 'intent') {
    // The engine's own word that the restart is under way (TERM sent; PID 1 ignores it for 3 s).
    if (await events.next(c.name, 'kill', 30_000, triggeredAt)) killNow();
  } else if (point === 'result') {
    const id = await ctx.waitUntil(
      'the signal in the inbox',
      () => inboxIdsMentioning(readState(dataDir), c.name)[0],
      10_000,
      20,
    );
    // The inbox mark: the entry's key written without a value.
    await armWriteBreakpoint(insp, `"c":"inbox","k":"${reEscape(id)}"(?![^\\n]*"v":)`, killNow);
  }
  await poll(() => killedAt > 0, 45_000, 50);
  await s1.kill('SIGKILL');
  insp.close();

  // What the disk held at the kill.
  const at = readState(dataDir);
  const inbox = inboxIdsMentioning(at, c.name);
  const rec = containerRecord(at, c.name);
  let reached: boolean;
  let atKill: string;
  if (!killedAt) {
    reached = false;
    atKill = 'the kill point was never reached (the service finished first)';
  } else if (point === 'accepted') {
    reached = inbox.length === 1 && !rec?.inFlight && rec?.lastSignalId === undefined;
    atKill = `at the kill: ${inbox.length} signal in the inbox, intent ${rec?.inFlight ? 'written' : 'not written'}`;
  } else if (point === 'intent') {
    reached = Boolean(rec?.inFlight);
    atKill = `at the kill: intent ${rec?.inFlight ? 'written' : 'NOT written'}, engine restarting`;
  } else {
    reached = inbox.length === 1 && !rec?.inFlight && rec?.lastResult !== undefined;
    atKill = `at the kill: result ${String(rec?.lastResult ?? 'not written')}, inbox mark ${
      inbox.length ? 'not written' : 'written'
    }`;
  }
  // Let the engine finish a restart it was carrying out when the service died.
  if (point === 'intent') await events.next(c.name, 'restart', 20_000, triggeredAt);

  ctx.step = `${label}: second life`;
  const second = Date.now();
  const s2 = await ctx.startSvc(env, dir);
  await ctx.waitUntil(
    'the signal to be processed after the restart',
    () => {
      const st = readState(dataDir);
      return inboxIdsMentioning(st, c.name).length === 0 && !containerRecord(st, c.name)?.inFlight;
    },
    60_000,
    200,
  );
  await waitForHealth(c.name, 'healthy', 30_000);
  if (via === 'alert') {
    // Alertmanager re-sends the same notification after its own timeout.
    await postAlerts(s2.url, [alert]);
  }
  await sleep(3000);
  const restarts = events.count(c.name, 'restart', t0);
  const after = decisionsOf(s2, { container: c.name, sinceMs: second })
    .map((l) => String(l.reason))
    .join(',');
  const state = remediationId ? `; request ${await requestState(s2.url, remediationId)}` : '';
  await s2.kill('SIGTERM');
  ctx.check(
    `${label}: exactly one restart`,
    reached && restarts === 1,
    `${atKill}; engine restart events: ${restarts}; decisions after restart: ${after || 'none'}${state}`,
  );
}

export const kill9: Scenario = {
  name: 'kill9',
  title: 'kill -9 at three points; one action per signal, never two (defect 3)',
  timeoutMs: 420_000,
  async run(ctx) {
    const events = await EventFollower.start(ctx);
    const only = process.env.KILL9_CASES?.split(',');
    for (const via of ['alert', 'manual'] as const) {
      for (const point of ['accepted', 'intent', 'result'] as const) {
        if (only && !only.includes(`${via}-${point}`)) continue;
        try {
          await killCase(ctx, events, point, via);
        } catch (err) {
          ctx.check(`${via}, kill -9 ${POINT_TEXT[point]}`, false, `${(err as Error).message}`);
        }
      }
    }
  },
};
