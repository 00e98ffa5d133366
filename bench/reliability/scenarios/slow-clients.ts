// Slow clients (defect 11): the service limited to 512 file descriptors, and 1,000 unauthenticated
// connections from one client (127.0.0.2) that send their headers or their body a byte at a time.
// From another client (127.0.0.1) /healthz, the webhook and the admin API still answer, a remediation
// still works (the Docker calls need descriptors too), and the slow connections are cut in bounded time.
import { connect, type Socket } from 'node:net';
import {
  admin,
  type Ctx,
  containerCmd,
  http,
  poll,
  postAlerts,
  remediationResult,
  restartAlert,
  run,
  type Scenario,
  sleep,
} from '../harness.js';

const SLOW = 1000;
const FD_LIMIT = 512;
const SLOW_CLIENT = '127.0.0.2';

interface Slow {
  readonly sockets: Socket[];
  open(): number;
  close(): void;
}

/** Opens n slow connections from one address; half dribble headers, half dribble a body. */
async function openSlow(ctx: Ctx, port: number, n: number): Promise<Slow> {
  const sockets: Socket[] = [];
  const closed = new Set<Socket>();
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const s = connect({ port, host: '127.0.0.1', localAddress: SLOW_CLIENT });
      sockets.push(s);
      const done = () => resolve();
      s.setTimeout(3000, () => done());
      s.on('error', () => {
        closed.add(s);
        done();
      });
      s.on('close', () => closed.add(s));
      s.on('data', () => undefined);
      s.once('connect', () => {
        s.write(
          i % 2
            ? 'POST /webhooks/alertmanager HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{'
            : 'POST /webhooks/alertmanager HTTP/1.1\r\nHost: 127.0.0.1\r\n',
        );
        done();
      });
    });
  for (let i = 0; i < n; i += 50)
    await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => one(i + j)));
  let tick = 0;
  const drip = setInterval(() => {
    tick++;
    for (const [i, s] of sockets.entries()) {
      if (closed.has(s) || s.destroyed) continue;
      s.write(i % 2 ? ' ' : `X-Slow-${tick}: y\r\n`);
    }
  }, 2000);
  const slow: Slow = {
    sockets,
    open: () => sockets.filter((s) => !closed.has(s) && !s.destroyed).length,
    close: () => {
      clearInterval(drip);
      for (const s of sockets) s.destroy();
    },
  };
  ctx.teardown(() => slow.close());
  return slow;
}

export const slowClients: Scenario = {
  name: 'slow-clients',
  title: `${SLOW} slow unauthenticated connections from one client, ${FD_LIMIT} fds (defect 11)`,
  timeoutMs: 180_000,
  async run(ctx) {
    const dir = ctx.tmpDir('slow');
    const c = await ctx.testContainer('slow', {
      cmd: containerCmd({ brokenAtFirstStart: true }),
      health: 'unhealthy',
    });
    const svc = await ctx.startSvc({ WATCHER_HEAL: 'false' }, dir);
    await run('prlimit', ['--pid', String(svc.proc.pid), `--nofile=${FD_LIMIT}:${FD_LIMIT}`]);

    ctx.say(`opening ${SLOW} slow connections from ${SLOW_CLIENT}`);
    const openedAt = Date.now();
    const slow = await openSlow(ctx, svc.port, SLOW);
    await sleep(3000);
    const heldAt3s = slow.open();

    const hz = await http(`${svc.url}/healthz`, { timeoutMs: 5000 });
    const sentAt = Date.now();
    const wh = await postAlerts(svc.url, [restartAlert(c.name, `slow-${c.name}`)]);
    const api = await admin(svc.url, 'GET', '/containers');
    ctx.check(
      `${SLOW} slow connections from one client: /healthz, webhook and admin API answer another client`,
      hz.status === 200 && wh.status === 200 && api.status === 200 && Math.max(hz.ms, wh.ms, api.ms) < 5000,
      `held open by the server after 3 s: ${heldAt3s} of ${SLOW}; /healthz ${hz.status || hz.body} (${hz.ms} ms), webhook ${wh.status || wh.body} (${wh.ms} ms), admin ${api.status || api.body} (${api.ms} ms)`,
    );

    const result = await poll(() => remediationResult(svc, c.name, sentAt), 45_000, 250);
    ctx.check(
      'slow connections: a remediation still works',
      result?.result === 'succeeded',
      result
        ? `restart ${String(result.result)}: ${String(result.detail ?? '').slice(0, 80)}`
        : 'no result in 45 s',
    );

    // Cut in bounded time: HTTP_REQUEST_TIMEOUT (30 s by default) plus the server's checking interval.
    await poll(() => slow.open() === 0, Math.max(0, openedAt + 45_000 - Date.now()), 500);
    const left = slow.open();
    ctx.check(
      'slow connections are cut in bounded time',
      left === 0,
      `still open ${Math.round((Date.now() - openedAt) / 1000)} s after they were opened: ${left}`,
    );
    slow.close();
    ctx.checkNeverExited('slow connections: the service never exited', svc);
    await svc.kill('SIGTERM');
  },
};
