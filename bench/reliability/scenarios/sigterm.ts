// SIGTERM while a restart is under way: the service finishes it (the engine's restart and its
// verification) within SHUTDOWN_GRACE, records the result, exits 0; the next start does not repeat it.
import {
  auditLines,
  containerCmd,
  EventFollower,
  forceRestart,
  linesOf,
  requestState,
  type Scenario,
  sleep,
} from '../harness.js';

export const sigterm: Scenario = {
  name: 'sigterm',
  title: 'SIGTERM during a restart: the restart is finished and verified, then exit 0',
  timeoutMs: 120_000,
  async run(ctx) {
    const events = await EventFollower.start(ctx);
    const dir = ctx.tmpDir('term');
    const c = await ctx.testContainer('term', {
      labels: { 'autoheal.stop.timeout': '3' },
      cmd: containerCmd({ slowStop: true }),
    });
    const t0 = Date.now();
    const env = { WATCHER_HEAL: 'false', SHUTDOWN_GRACE: '30' };
    const s1 = await ctx.startSvc(env, dir);
    const { res: req, id } = await forceRestart(s1.url, c.name, 'reliability: SIGTERM mid-restart');
    if (id === undefined) throw new Error(`the request got ${req.status}: ${req.body}`);
    if (!(await events.next(c.name, 'kill', 30_000, t0))) throw new Error('the restart never began');
    const termAt = Date.now();
    const exit = await Promise.race([s1.kill('SIGTERM'), sleep(60_000).then(() => 'still running' as const)]);
    const exitedAt = Date.now();
    const restartAt = events.events.find((e) => e.name === c.name && e.action === 'restart')?.at;
    const lines = auditLines(s1.logFile);
    const result = linesOf(lines, 'remediation', { container: c.name, remediationId: id })[0];
    const stoppedAt = linesOf(lines, 'stopped')[0]?.time;
    ctx.check(
      'SIGTERM during a restart: it is finished and verified before the exit (code 0)',
      exit === 0 &&
        result?.result === 'succeeded' &&
        restartAt !== undefined &&
        restartAt <= exitedAt &&
        stoppedAt !== undefined &&
        Date.parse(String(result.time)) <= Date.parse(String(stoppedAt)),
      `exit ${exit} ${((exitedAt - termAt) / 1000).toFixed(1)} s after SIGTERM; engine restart ${restartAt ? `${((restartAt - termAt) / 1000).toFixed(1)} s after SIGTERM` : 'not seen'}; result ${String(result?.result ?? 'not recorded')}`,
    );

    const s2 = await ctx.startSvc(env, dir);
    await sleep(4000);
    const restarts = events.count(c.name, 'restart', t0);
    const state = await requestState(s2.url, id);
    ctx.check(
      'after the next start: not repeated',
      restarts === 1 && state === 'succeeded',
      `engine restart events: ${restarts}; request ${state}`,
    );
    await s2.kill('SIGTERM');
  },
};
