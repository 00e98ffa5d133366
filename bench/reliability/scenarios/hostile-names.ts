// Hostile and mistaken target names (defects 1, 2, 6) through the admin API, the path of a container
// route and an alert's container label: the service never crashes, answers 4xx, sends no request to an
// address a name picks (a local listener counts what it gets), and restarts no container a name does
// not name (a 2-hex prefix of a real container's id). A 12-hex id prefix, the documented form, works.
// `../x` itself is not sent: before the fix the engine's redirect makes the service resolve `x` through
// the host's DNS server; `../localhost:1/x` takes the same path and stays on loopback.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RunningService } from '../../../test/fixtures/service.js';
import {
  ADMIN_TOKEN,
  admin,
  decisionsOf,
  EventFollower,
  http,
  isAlive,
  poll,
  postAlerts,
  restartAlert,
  type Scenario,
  sleep,
} from '../harness.js';

export const hostileNames: Scenario = {
  name: 'hostile-names',
  title: 'hostile names: no crash, 4xx, no request elsewhere, no container restarted (defects 1, 2, 6)',
  timeoutMs: 150_000,
  async run(ctx) {
    const events = await EventFollower.start(ctx);
    const hits: string[] = [];
    const listener = createServer((req: IncomingMessage, res) => {
      hits.push(`${req.method} ${req.url}`);
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    ctx.teardown(() => new Promise<void>((r) => listener.close(() => r())));
    const lport = (listener.address() as AddressInfo).port;

    const dir = ctx.tmpDir('names');
    const r = await ctx.testContainer('name');
    const t0 = Date.now();
    // A crash is recorded against the input that caused it, and the service is started again (same
    // state) so that every input is measured.
    let svc: RunningService = await ctx.startSvc({ WATCHER_HEAL: 'false' }, dir);
    const crashes: string[] = [];
    const afterEach = async (what: string) => {
      await sleep(300);
      if (isAlive(svc)) return '';
      const why = svc.output().match(/(Error|ENOTFOUND|ECONNREFUSED)[^\n"]{0,60}/)?.[0] ?? 'no error line';
      crashes.push(`${what}: ${why}`);
      svc = await ctx.startSvc({ WATCHER_HEAL: 'false' }, dir);
      return ' CRASH';
    };
    const prefix2 = r.id.slice(0, 2);
    const targets = [
      '..',
      '../localhost:1/x',
      `../127.0.0.1:${lport}/x`,
      prefix2,
      'a b',
      'a\u0000b',
      '名前',
      'a;rm -rf /',
    ];
    const show = (t: string) => JSON.stringify(t).replace(/\\u0000/g, '\\0');
    const is4xx = (status: number) => status >= 400 && status < 500;

    ctx.say('admin API: POST /remediations with each target');
    const apiCodes: string[] = [];
    let apiOk = true;
    for (const target of targets) {
      const res = await admin(svc.url, 'POST', '/remediations', {
        target,
        action: 'restart',
        dryRun: target !== prefix2, // the prefix for real: a wrong match would restart the container
        reason: 'reliability: hostile name',
      });
      const crash = await afterEach(`POST /remediations ${show(target)}`);
      apiCodes.push(`${show(target)} ${res.status || res.body}${crash}`);
      if (!is4xx(res.status) || crash) apiOk = false;
    }
    ctx.check('admin API: each hostile or mistaken target is a 4xx', apiOk, apiCodes.join('; '));

    ctx.say('path of a container route');
    const pathCodes: string[] = [];
    let pathOk = true;
    for (const raw of [
      '%2e%2e',
      '..%2flocalhost:1%2fx',
      encodeURIComponent(`../127.0.0.1:${lport}/x`),
      prefix2,
      '%00',
    ]) {
      const res = await http(`${svc.url}/api/v1/containers/${raw}/pause`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ for: '1m' }),
      });
      const crash = await afterEach(`pause ${raw}`);
      pathCodes.push(`${raw} ${res.status || res.body}${crash}`);
      if (!is4xx(res.status) || crash) pathOk = false;
    }
    ctx.check('POST /containers/{name}/pause: hostile names are a 4xx', pathOk, pathCodes.join('; '));

    ctx.say('alerts with hostile container labels');
    const alertTargets = ['../localhost:1/x', `../127.0.0.1:${lport}/x`, prefix2, 'a;rm -rf /', '名前'];
    const alertOut: string[] = [];
    let alertsOk = true;
    for (const [i, t] of alertTargets.entries()) {
      const since = Date.now();
      const fingerprint = `hostile-${i}`;
      const wh = await postAlerts(svc.url, [restartAlert(t, fingerprint)]);
      const d = await poll(
        () => !isAlive(svc) || decisionsOf(svc, { fingerprint, sinceMs: since })[0],
        10_000,
        100,
      );
      const crash = await afterEach(`alert container=${show(t)}`);
      const reason =
        d && d !== true ? `${String(d.reason)}${d.verdict === 'act' ? ' (ACTED)' : ''}` : 'no decision';
      alertOut.push(`${show(t)} ${wh.status || wh.body} ${reason}${crash}`);
      if (wh.status !== 200 || crash || !d || d === true || d.verdict === 'act') alertsOk = false;
    }
    ctx.check(
      'alerts with hostile container labels: accepted, decided, none acted on',
      alertsOk,
      alertOut.join('; '),
    );

    await sleep(2000);
    const restarts = events.count(r.name, 'restart', t0);
    ctx.check(
      'hostile names: no crash, no request to another address, no container restarted',
      crashes.length === 0 && hits.length === 0 && restarts === 0,
      `crashes: ${crashes.length}${crashes.length ? ` (${crashes.slice(0, 2).join('; ')}${crashes.length > 2 ? '; …' : ''})` : ''}; requests seen by the listener on 127.0.0.1:${lport}: ${hits.length}${hits.length ? ` (${hits.slice(0, 2).join(', ')})` : ''}; restarts of the container whose id starts with "${prefix2}": ${restarts}`,
    );

    const ok = await admin(svc.url, 'POST', '/remediations', {
      target: r.id.slice(0, 12),
      action: 'restart',
      dryRun: true,
      reason: 'reliability: documented 12-hex prefix',
    });
    ctx.check(
      'a 12-hex id prefix (the documented form) still names the container',
      ok.status === 202,
      `POST /remediations (dry run) ${ok.status}`,
    );
    await svc.kill('SIGTERM');
  },
};
