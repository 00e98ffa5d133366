// 100,000 duplicate alerts (the same notification re-sent, as Alertmanager does on every group_interval
// and retry): one action; RSS before and after; the audit log bounded by its rotation (LOG_MAX_BYTES);
// the durable state does not grow.
import { Pool } from 'undici';
import { amPayload } from '../../../test/fixtures/app.js';
import { freePort } from '../../../test/fixtures/service.js';
import { heapAfterGcMb, Inspector } from '../cdp.js';
import {
  auditBytes,
  dirBytes,
  EventFollower,
  hasSetting,
  kb,
  mb,
  postAlerts,
  restartAlert,
  rssMb,
  type Scenario,
  sleep,
  WEBHOOK_TOKEN,
} from '../harness.js';

const N = Number(process.env.RELIABILITY_DUPLICATES ?? 100_000);
const LOG_MAX = 1_048_576;
const LOG_FILES = 3;

/**
 * Sends the same body n times over 16 keep-alive connections, one request at a time on each, as an
 * HTTP client that honours `Connection: close` does (Alertmanager's Go client does).
 */
async function send(
  url: string,
  body: string,
  n: number,
): Promise<{ codes: Map<number, number>; errors: number }> {
  const pool = new Pool(url, { connections: 16, pipelining: 1 });
  const codes = new Map<number, number>();
  let errors = 0;
  let left = n;
  const worker = async () => {
    while (left > 0) {
      left--;
      try {
        const r = await pool.request({
          path: '/webhooks/alertmanager',
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${WEBHOOK_TOKEN}` },
          body,
        });
        await r.body.dump();
        codes.set(r.statusCode, (codes.get(r.statusCode) ?? 0) + 1);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  await pool.close();
  return { codes, errors };
}

export const duplicates: Scenario = {
  name: 'duplicates',
  title: `${N.toLocaleString('en')} duplicate alerts: one action, RSS, audit log and state bounded`,
  timeoutMs: 300_000,
  async run(ctx) {
    const events = await EventFollower.start(ctx);
    const dir = ctx.tmpDir('dup');
    const dataDir = `${dir}/data`;
    const c = await ctx.testContainer('dup');
    const t0 = Date.now();
    const inspectPort = await freePort();
    const svc = await ctx.startSvc(
      {
        // The inspector only to collect garbage before each heap reading; no breakpoint is set.
        NODE_OPTIONS: `--inspect=127.0.0.1:${inspectPort}`,
        WATCHER_HEAL: 'false',
        RESTART_COOLDOWN: '1',
        LOG_MAX_BYTES: String(LOG_MAX),
        LOG_MAX_FILES: String(LOG_FILES),
        // One client sending as fast as it can: not the slow-client case this scenario is not about.
        HTTP_MAX_CONNECTIONS_PER_CLIENT: '64',
      },
      dir,
    );
    const restart = restartAlert(c.name, 'dup-1', '2026-11-28T04:00:00Z');
    const alert = { ...restart, labels: { ...restart.labels, severity: 'warning' } };
    const r0 = await postAlerts(svc.url, [alert]);
    if (r0.status !== 200) throw new Error(`the first alert got ${r0.status}`);
    await ctx.resultRecorded(svc, c.name, 'the first restart to be verified');
    await sleep(1000);
    const insp = await Inspector.connect(inspectPort);
    ctx.teardown(() => insp.close());
    const heap0 = await heapAfterGcMb(insp);
    const rss0 = rssMb(svc.proc.pid as number);
    const state0 = dirBytes(dataDir);

    ctx.say(`sending ${N.toLocaleString('en')} duplicates`);
    const body = JSON.stringify(amPayload([alert]));
    const sentAt = Date.now();
    const first = await send(svc.url, body, Math.floor(N / 2));
    const heapHalf = await heapAfterGcMb(insp);
    const second = await send(svc.url, body, N - Math.floor(N / 2));
    const codes = new Map(first.codes);
    for (const [k, v] of second.codes) codes.set(k, (codes.get(k) ?? 0) + v);
    const errors = first.errors + second.errors;
    const secs = (Date.now() - sentAt) / 1000;
    await sleep(3000);
    const heap1 = await heapAfterGcMb(insp);
    const rss1 = rssMb(svc.proc.pid as number);
    const state1 = dirBytes(dataDir);
    const audit = auditBytes(svc.logFile);
    const ok2xx = codes.get(200) ?? 0;
    const other = [...codes].filter(([code]) => code !== 200).map(([code, n]) => `${n} × ${code}`);
    const restarts = events.count(c.name, 'restart', t0);

    ctx.check(
      `${N.toLocaleString('en')} duplicates: every one answered, one action`,
      ok2xx === N && errors === 0 && restarts === 1,
      `${ok2xx.toLocaleString('en')} × 200${other.length ? `, ${other.join(', ')}` : ''}, ${errors} errors in ${secs.toFixed(0)} s (${Math.round(N / secs)}/s); engine restarts: ${restarts}`,
    );
    // The leak signal is the heap after a full collection (RSS also holds pages V8 keeps for reuse):
    // a leak of one audit line per duplicate would add ~39 MB.
    ctx.check(
      'duplicates: memory stays flat (heap after GC grows < 8 MB; RSS printed)',
      heap1 - heap0 < 8 && heap1 - heapHalf < 4,
      `heap after GC ${heap0.toFixed(1)} → ${heapHalf.toFixed(1)} (half) → ${heap1.toFixed(1)} MB; RSS ${rss0.toFixed(0)} → ${rss1.toFixed(0)} MB`,
    );
    const rotation = hasSetting('LOG_MAX_BYTES');
    const bound = LOG_MAX * LOG_FILES + 64 * 1024;
    ctx.check(
      `duplicates: audit log bounded (LOG_MAX_BYTES=${mb(LOG_MAX)}, LOG_MAX_FILES=${LOG_FILES})`,
      rotation && audit.total <= bound,
      `${rotation ? '' : 'LOG_MAX_BYTES is not a setting of this version; '}${audit.files} file(s), ${mb(audit.total)} in all (bound ${mb(bound)})`,
    );
    ctx.check(
      'duplicates: durable state does not grow',
      state1 - state0 < 16 * 1024,
      `DATA_DIR ${kb(state0)} before, ${kb(state1)} after`,
    );
    // A process with a debugger attached waits for it to go before it exits.
    insp.close();
    await svc.kill('SIGTERM');
  },
};
