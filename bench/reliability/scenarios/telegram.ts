// Telegram faults through the fake Bot API: 429 with retry_after, 500s, a call that never answers, and
// 403 (bot blocked). A message is delivered once after a passing fault clears; a 403 is reported
// clearly and not retried forever; the webhook and /healthz answer throughout.
import { randomBytes } from 'node:crypto';
import { FAKE_TOKEN, type FakeReply, startFakeTelegram } from '../../../test/fixtures/fake-telegram.js';
import {
  admin,
  type Ctx,
  http,
  metricValue,
  outputLine,
  poll,
  postAlerts,
  type Scenario,
  sleep,
} from '../harness.js';

interface Fault {
  readonly name: string;
  readonly replies: FakeReply[];
  /** A fault that passes: the message must get through once. */
  readonly passes: boolean;
  readonly waitMs: number;
}

const FAULTS: Fault[] = [
  { name: '429 retry_after 2', replies: [{ status: 429, retryAfter: 2 }], passes: true, waitMs: 30_000 },
  { name: '500 twice', replies: [{ status: 500 }, { status: 500 }], passes: true, waitMs: 30_000 },
  { name: 'hang', replies: [{ hang: true }], passes: true, waitMs: 45_000 },
  { name: '403 bot blocked', replies: [{ status: 403 }], passes: false, waitMs: 12_000 },
];

/** While a fault is on: the service's own endpoints answer, and quickly. */
async function responsive(url: string): Promise<{ ok: boolean; text: string }> {
  const hz = await http(`${url}/healthz`, { timeoutMs: 5000 });
  const wh = await postAlerts(url, [
    {
      labels: { alertname: 'Unrelated', severity: 'warning' },
      fingerprint: `tg-${randomBytes(4).toString('hex')}`,
    },
  ]);
  return {
    ok: hz.status === 200 && wh.status === 200 && hz.ms < 2000 && wh.ms < 2000,
    text: `/healthz ${hz.status} in ${hz.ms} ms, webhook ${wh.status} in ${wh.ms} ms`,
  };
}

export const telegram: Scenario = {
  name: 'telegram',
  title: 'Telegram 429 / 500 / hang / 403 via the fake Bot API',
  timeoutMs: 240_000,
  async run(ctx: Ctx) {
    const tg = await startFakeTelegram(ctx);
    const dir = ctx.tmpDir('tg');
    const svc = await ctx.startSvc(
      {
        TELEGRAM_BOT_TOKEN: FAKE_TOKEN,
        TELEGRAM_CHAT_ID: '4242',
        TELEGRAM_API_URL: tg.url,
        WATCHER_HEAL: 'false',
      },
      dir,
    );
    for (const f of FAULTS) {
      ctx.say(`fault: ${f.name}`);
      const marker = `rel${randomBytes(4).toString('hex')}`;
      tg.script.push(...f.replies);
      const sentAt = Date.now();
      const r = await admin(svc.url, 'POST', '/notify', { text: `reliability check ${marker} (${f.name})` });
      if (r.status !== 202) {
        ctx.check(`Telegram ${f.name}`, false, `/notify answered ${r.status}: ${r.body.slice(0, 120)}`);
        continue;
      }
      await sleep(300);
      const during = await responsive(svc.url);
      const mine = () => tg.requests.filter((q) => String(q.body.text ?? '').includes(marker));
      const delivered = () => tg.delivered.filter((d) => d.plain.includes(marker));
      if (f.passes) {
        await poll(() => delivered().length > 0, f.waitMs, 100);
        const tookS = ((Date.now() - sentAt) / 1000).toFixed(1);
        await sleep(3000); // a second copy would come now
        const n = delivered().length;
        ctx.check(
          `Telegram ${f.name}: delivered once after the fault clears; the service unaffected`,
          n === 1 && during.ok,
          `${mine().length} calls, delivered ${n}× (after ${tookS} s); during the fault: ${during.text}`,
        );
      } else {
        await sleep(f.waitMs);
        const calls = mine().length;
        const { line: report, msg } = outputLine(
          svc,
          (l) => l.includes('"level":"error"') && l.includes('403') && l.includes('"event":"notification"'),
        );
        const failed = await metricValue(svc.url, 'autoheal_notifications_total', { result: 'failed' });
        ctx.check(
          `Telegram ${f.name}: reported clearly, not retried forever; the service unaffected`,
          calls === 1 && Boolean(report) && during.ok,
          `${calls} call(s) in ${Math.round(f.waitMs / 1000)} s; notifications failed: ${failed}; log: "${msg.slice(0, 120)}"; during: ${during.text}`,
        );
      }
    }
    ctx.checkNeverExited('Telegram faults: the service never exited', svc);
    await svc.kill('SIGTERM');
  },
};
