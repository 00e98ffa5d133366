// The Docker engine stops and starts under the service (a private dockerd, so other work on the main
// engine is untouched): the service stays up and reconnects; an alert sent while the engine was down is
// decided once it is back (defect 5); a container that goes unhealthy afterwards is healed.
import { BROKEN } from '../../../test/fixtures/docker.js';
import { startSecondDockerd } from '../../../test/fixtures/second-dockerd.js';
import {
  auditLines,
  containerRecord,
  createOn,
  decisionsOf,
  execOn,
  healthOn,
  http,
  isAlive,
  linesOf,
  metricValue,
  poll,
  postAlerts,
  readState,
  restartAlert,
  type Scenario,
  sleep,
  uniq,
} from '../harness.js';

export const engineRestart: Scenario = {
  name: 'engine-restart',
  title:
    'engine stop/start on a private dockerd: stays up, reconnects, decides what came meanwhile (defect 5)',
  timeoutMs: 300_000,
  async run(ctx) {
    ctx.say('starting a private dockerd');
    const d2 = await startSecondDockerd(ctx);
    const c = await createOn(ctx, d2.docker, { name: uniq('eng'), restartPolicy: 'always' });
    await ctx.waitUntil(
      'the container healthy',
      async () => (await healthOn(d2.docker, c.name)) === 'healthy',
      30_000,
    );
    const dir = ctx.tmpDir('eng');
    const svc = await ctx.startSvc(
      { DOCKER_HOST: d2.host, WATCHER_HEAL: 'true', WATCHDOG_INTERVAL: '2' },
      dir,
    );
    await ctx.waitUntil(
      'the watcher connected',
      async () => (await metricValue(svc.url, 'autoheal_docker_connected')) === 1,
      20_000,
    );

    ctx.say('stopping the engine');
    await d2.stop();
    const noticed = await poll(
      async () => (await metricValue(svc.url, 'autoheal_docker_connected')) === 0,
      20_000,
      250,
    );
    const fingerprint = `eng-${c.name}`;
    const alert = restartAlert(c.name, fingerprint, '2026-11-28T01:00:00Z', 'ContainerDown');
    const whileDown = await postAlerts(svc.url, [alert]);
    await sleep(3000);
    const hz = await http(`${svc.url}/healthz`);
    ctx.check(
      'engine down: the service stays up and says so',
      isAlive(svc) && hz.status === 200 && noticed === true,
      `/healthz ${hz.status} while down; autoheal_docker_connected 0: ${noticed ? 'yes' : 'no'}; webhook answered ${whileDown.status}; process ${isAlive(svc) ? 'up' : 'exited'}`,
    );

    ctx.say('starting the engine again');
    const upFrom = Date.now();
    await d2.start();
    const reconnected = await poll(
      async () => (await metricValue(svc.url, 'autoheal_docker_connected')) === 1,
      60_000,
      250,
    );
    const reconnectS = ((Date.now() - upFrom) / 1000).toFixed(1);
    ctx.check(
      'engine back: the service reconnects',
      reconnected === true,
      reconnected
        ? `autoheal_docker_connected 1 again ${reconnectS} s after the engine start began`
        : 'not reconnected in 60 s',
    );

    // An alert refused while the engine was down is what Alertmanager retries; send it again then.
    const retry = whileDown.status === 200 ? undefined : await postAlerts(svc.url, [alert]);
    const decided = await poll(
      () => {
        const d = decisionsOf(svc, { fingerprint }).filter((l) => l.reason !== 'duplicate');
        return d.length ? d : undefined;
      },
      90_000,
      250,
    );
    await sleep(2000);
    const all = decisionsOf(svc, { fingerprint }).filter((l) => l.reason !== 'duplicate');
    const early = all.filter((l) => Date.parse(String(l.time)) < upFrom);
    const reasons = all.map(
      (l) => `${l.reason}${Date.parse(String(l.time)) < upFrom ? ' (while down)' : ''}`,
    );
    ctx.check(
      'an alert sent while the engine was down is decided once it is back',
      Boolean(decided) &&
        all.length === 1 &&
        early.length === 0 &&
        all[0]?.reason !== 'target_not_found' &&
        (whileDown.status === 200 || (whileDown.status === 503 && retry?.status === 200)),
      `webhook while down: ${whileDown.status}${retry ? `, re-sent after: ${retry.status}` : ''}; decisions: ${reasons.join(', ') || 'none in 90 s'}`,
    );

    ctx.say('breaking the container after the engine came back');
    await ctx.waitUntil(
      'the container healthy again',
      async () => (await healthOn(d2.docker, c.name)) === 'healthy',
      60_000,
    );
    await ctx.waitUntil(
      'no action in flight',
      () => !containerRecord(readState(`${dir}/data`), c.name)?.inFlight,
      60_000,
    );
    await sleep(1500); // the 1 s cooldown of an action the alert may have caused
    const brokeAt = Date.now();
    await execOn(d2.docker, c.name, ['touch', BROKEN]);
    const healed = await poll(
      () =>
        linesOf(auditLines(svc.logFile), 'remediation', { container: c.name }, brokeAt).find(
          (l) => l.result === 'succeeded',
        ),
      60_000,
      250,
    );
    const health = await healthOn(d2.docker, c.name).catch((e) => String(e));
    ctx.check(
      'a container unhealthy after the engine came back is healed',
      Boolean(healed) && health === 'healthy',
      healed
        ? `${String(healed.action)} ${String(healed.result)} ${((Date.parse(String(healed.time)) - brokeAt) / 1000).toFixed(1)} s after it broke; now ${health}`
        : `no successful remediation in 60 s; now ${health}`,
    );
    ctx.checkNeverExited('the service never exited', svc, (s) => `exited: ${s.output().slice(-300)}`);
    await svc.kill('SIGTERM');
  },
};
