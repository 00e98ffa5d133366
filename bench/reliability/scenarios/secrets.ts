// Secrets in other fields (defect 12): the admin token sent as X-Requested-By and as the reason of a
// request, the webhook token as an alert label and annotation of a critical alert (which reaches
// Telegram). Neither token may appear in the service's output, its audit log, or what the fake
// Telegram received; nor may the bot token.
import { existsSync, readFileSync } from 'node:fs';
import { FAKE_TOKEN, startFakeTelegram } from '../../../test/fixtures/fake-telegram.js';
import {
  ADMIN_TOKEN,
  admin,
  auditLines,
  linesOf,
  poll,
  postAlerts,
  type Scenario,
  sleep,
  WEBHOOK_TOKEN,
} from '../harness.js';

export const secrets: Scenario = {
  name: 'secrets',
  title: 'tokens in X-Requested-By, reason and alert labels: absent from logs and Telegram (defect 12)',
  timeoutMs: 120_000,
  async run(ctx) {
    const tg = await startFakeTelegram(ctx);
    const dir = ctx.tmpDir('secrets');
    const c = await ctx.testContainer('sec');
    const svc = await ctx.startSvc(
      {
        TELEGRAM_BOT_TOKEN: FAKE_TOKEN,
        TELEGRAM_CHAT_ID: '4242',
        TELEGRAM_API_URL: tg.url,
        NOTIFY_SEVERITIES: 'critical',
        WATCHER_HEAL: 'false',
      },
      dir,
    );
    const manual = await admin(
      svc.url,
      'POST',
      '/remediations',
      { target: c.name, action: 'restart', dryRun: true, reason: `because ${ADMIN_TOKEN}` },
      { 'x-requested-by': ADMIN_TOKEN },
    );
    const note = await admin(
      svc.url,
      'POST',
      '/notify',
      { text: 'reliability: secrets check' },
      { 'x-requested-by': ADMIN_TOKEN },
    );
    const wh = await postAlerts(svc.url, [
      {
        labels: {
          alertname: 'SecretLeak',
          container: c.name,
          severity: 'critical',
          leak: WEBHOOK_TOKEN,
          remediation: 'none',
        },
        annotations: {
          summary: `token ${WEBHOOK_TOKEN} in an annotation`,
          description: `admin ${ADMIN_TOKEN}`,
        },
        fingerprint: 'secrets-1',
      },
    ]);
    await poll(
      () => linesOf(auditLines(svc.logFile), 'decision', { fingerprint: 'secrets-1' }).length > 0,
      15_000,
    );
    // The critical alert's escalation waits for the outbox's batch window (5 s) before it is sent.
    await poll(() => tg.delivered.some((d) => d.plain.includes('SecretLeak')), 30_000, 200);
    await sleep(1500);
    await svc.kill('SIGTERM');

    const logText = `${svc.output()}\n${existsSync(svc.logFile) ? readFileSync(svc.logFile, 'utf8') : ''}`;
    const tgText = tg.requests.map((r) => JSON.stringify(r.body)).join('\n');
    const found = (text: string) =>
      [
        ['admin token', ADMIN_TOKEN],
        ['webhook token', WEBHOOK_TOKEN],
        ['bot token', FAKE_TOKEN],
        ['bot token secret', FAKE_TOKEN.slice(FAKE_TOKEN.indexOf(':') + 1)],
      ]
        .filter(([, s]) => text.includes(s as string))
        .map(([n]) => n as string);
    const inLog = found(logText);
    const inTg = found(tgText);
    const sentTg = tg.delivered.length;
    ctx.check(
      'tokens sent in other fields never reach the log',
      inLog.length === 0 && manual.status === 202 && wh.status === 200,
      `requests: manual ${manual.status}, notify ${note.status}, webhook ${wh.status}; log (${Math.round(logText.length / 1024)} KiB) holds: ${inLog.join(', ') || 'no token'}`,
    );
    ctx.check(
      'tokens sent in other fields never reach Telegram',
      inTg.length === 0 && sentTg > 0,
      `${sentTg} message(s) delivered (${tg.delivered.some((d) => d.plain.includes('SecretLeak')) ? 'the critical alert among them' : 'the critical alert NOT among them'}); they hold: ${inTg.join(', ') || 'no token'}`,
    );
  },
};
