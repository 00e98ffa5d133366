// Secrets in any field: the admin token sent as X-Requested-By and as a reason, the webhook token as an
// alert's label, annotation and name, and tokens in free text for the humans appear in no log line
// (stream and audit file), no outbox file and no request to the Bot API. And the logger's scrubbing
// on its own: nested objects and arrays, keys, Error causes, child bindings.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { createLogger, createScrubber } from '../src/logger.js';
import { createNotifier } from '../src/notifiers/index.js';
import { ADMIN_TOKEN, amPayload, bearer, testApp, WEBHOOK_TOKEN } from './fixtures/app.js';
import { waitFor } from './fixtures/docker.js';
import { FAKE_TOKEN, startFakeTelegram } from './fixtures/fake-telegram.js';

const TOKENS = [ADMIN_TOKEN, WEBHOOK_TOKEN, FAKE_TOKEN, FAKE_TOKEN.split(':')[1] as string];

t.test('tokens sent in headers, reasons, labels and free text reach no log and no chat', async (t) => {
  const fake = await startFakeTelegram(t);
  const h = await testApp(t, {
    env: {
      TELEGRAM_BOT_TOKEN: FAKE_TOKEN,
      TELEGRAM_CHAT_ID: '-1001',
      TELEGRAM_API_URL: fake.url,
      NOTIFY_SEVERITIES: 'critical',
    },
    notifier: ({ config, log, metrics }) =>
      createNotifier(config, { log, metrics, tuning: { batchWindowMs: 30, minIntervalMs: 0 } }),
  });
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'x-requested-by': ADMIN_TOKEN };

  // The admin token as the requester and the reason of a manual (dry-run) cleanup.
  const cleanup = await h.app.inject({
    method: 'POST',
    url: '/api/v1/remediations',
    headers: admin,
    payload: { action: 'cleanup', target: 'host', dryRun: true, reason: `because ${ADMIN_TOKEN}` },
  });
  t.equal(cleanup.statusCode, 202);
  await h.settled(cleanup.json().id);

  // Free text for the humans holding both tokens, asked for by the admin token.
  const notify = await h.app.inject({
    method: 'POST',
    url: '/api/v1/notify',
    headers: admin,
    payload: { text: `deploy done; tokens ${ADMIN_TOKEN} ${WEBHOOK_TOKEN} /bot${FAKE_TOKEN}/x` },
  });
  t.equal(notify.statusCode, 202);

  // The webhook token as an alert's name, a label value and in its annotations (a critical alert is
  // forwarded to the chat whatever was done about it).
  const alert = await h.app.inject({
    method: 'POST',
    url: '/webhooks/alertmanager',
    headers: { ...bearer(), 'x-requested-by': WEBHOOK_TOKEN },
    payload: amPayload([
      {
        labels: {
          alertname: WEBHOOK_TOKEN,
          severity: 'critical',
          team: WEBHOOK_TOKEN,
          container: 'ah-redaction-no-such-container',
        },
        annotations: { summary: `summary ${WEBHOOK_TOKEN}`, description: `see ${WEBHOOK_TOKEN}` },
      },
    ]),
  });
  t.equal(alert.statusCode, 200);
  await h.engine.idle();

  const delivered = await fake.waitForDelivered(2);
  await waitFor('the outbox to empty', async () => h.notifier?.depth === 0);
  t.ok(
    delivered.some((d) => d.plain.startsWith('deploy done')),
    'the free text arrived',
  );
  t.ok(
    delivered.some((d) => d.plain.includes('no-such-container') || d.plain.includes('Alert')),
    'the alert arrived',
  );
  const sent = JSON.stringify(fake.requests.map((r) => r.body));
  t.ok(sent.includes('redacted'), 'the tokens were there to be masked');

  const logs = h.lines.join('\n');
  const audit = readFileSync(join(h.dir, 'audit.log'), 'utf8');
  t.ok(logs.includes('<redacted>'), 'the log masks them');
  t.ok(
    h.lines.some((l) => l.includes('"requestedBy":"<redacted>"')),
    'the requester is logged, masked',
  );
  const outbox = readdirSync(h.config.dataDir)
    .filter((f) => f.startsWith('outbox'))
    .map((f) => readFileSync(join(h.config.dataDir, f), 'utf8'))
    .join('\n');
  t.ok(outbox.length > 0, 'the outbox was written');
  // What the admin API keeps and echoes back: the remediation's reason and requester, and the state.
  const kept = await h.app.inject({
    method: 'GET',
    url: `/api/v1/remediations/${cleanup.json().id}`,
    headers: admin,
  });
  t.equal(kept.statusCode, 200);
  t.match(kept.json(), { requestedBy: '<redacted>', reason: 'because <redacted>' }, 'kept masked');
  const state = readdirSync(h.config.dataDir)
    .filter((f) => f.startsWith('state'))
    .map((f) => readFileSync(join(h.config.dataDir, f), 'utf8'))
    .join('\n');
  t.notOk(state.includes(ADMIN_TOKEN), 'the state files do not hold the admin token');
  t.notOk(kept.body.includes(ADMIN_TOKEN), 'the API answer does not hold the admin token');
  for (const token of TOKENS) {
    const what = `${token.slice(0, 10)}…`;
    t.notOk(logs.includes(token), `no log line holds ${what}`);
    t.notOk(audit.includes(token), `the audit file does not hold ${what}`);
    t.notOk(sent.includes(token), `no request to the Bot API holds ${what}`);
    t.notOk(outbox.includes(token), `no outbox file holds ${what}`);
  }
});

t.test('the logger masks secrets wherever they are in what it is handed', async (t) => {
  const secret = 'sekrit-0123456789abcdef';
  const odd = 'odd"quote\\and-0123456789';
  const lines: string[] = [];
  const log = createLogger({
    level: 'trace',
    file: '',
    secrets: [secret, odd],
    stream: new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    }),
  });
  const cause = new Error(`inner ${secret}`);
  const err = new Error(`outer ${secret}`, { cause });
  (err as Error & { detail?: unknown }).detail = { url: `http://x/?t=${encodeURIComponent(secret)}` };
  log.info(
    {
      requestedBy: secret,
      reason: `x ${secret} y`,
      nested: { deep: [{ deeper: [secret, { [secret]: 1 }] }] },
      labels: { team: secret, quoted: odd },
      err,
    },
    `message ${secret}`,
  );
  log.child({ bound: secret }).warn('child');
  log.error(err);
  log.info(`format %s %j`, secret, { a: secret });
  const out = lines.join('');
  t.equal(lines.length, 4);
  for (const l of lines) t.doesNotThrow(() => JSON.parse(l), 'each line is still JSON');
  t.notOk(out.includes(secret), 'the secret is nowhere');
  t.notOk(out.includes(encodeURIComponent(secret)), 'nor percent-encoded');
  t.notOk(out.includes(JSON.stringify(odd).slice(1, -1)), 'nor a secret that JSON escapes');
  t.ok(out.includes('inner <redacted>'), 'an Error cause is masked, not dropped');
  t.ok(out.includes('"<redacted>":1'), 'keys are masked');
});

t.test('the notifier scrubber masks every secret in the HTML it sends, keeping it valid', async (t) => {
  const scrub = createScrubber([WEBHOOK_TOKEN], '&lt;redacted&gt;');
  t.equal(scrub(`<b>${WEBHOOK_TOKEN}</b>`), '<b>&lt;redacted&gt;</b>');
});
