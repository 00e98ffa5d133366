// Delivery through the outbox to a fake Bot API on 127.0.0.1: 429 waits its retry_after, 5xx and
// network errors are retried with back-off, 403 is given up and counted, timeouts fire, each message
// arrives once, one chat gets at most about one message a second, and the token leaks nowhere.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import { MockAgent } from 'undici';
import { testConfig } from '../src/config.js';
import { createMetrics } from '../src/metrics.js';
import type { Escalation } from '../src/notifiers/escalation.js';
import { createNotifier, type NotifierDeps } from '../src/notifiers/index.js';
import type { OutboxTuning } from '../src/notifiers/outbox.js';
import { FAKE_TOKEN, type FakeTelegram, startFakeTelegram } from './fixtures/fake-telegram.js';

type Teardown = { teardown(fn: () => unknown): void };

let n = 0;
function escalation(over: Partial<Escalation> = {}): Escalation {
  n++;
  return {
    id: `esc-${n}`,
    kind: 'given_up',
    at: Date.now(),
    host: 'docker-01',
    container: `app-${n}`,
    attempts: [{ at: Date.now(), action: 'restart', result: 'failed', detail: 'health check still failing' }],
    detail: '3 of 3 attempts failed',
    ...over,
  };
}

interface Setup {
  fake?: FakeTelegram;
  chats?: string;
  tuning?: OutboxTuning;
  dir?: string;
  start?: boolean;
  deps?: Partial<NotifierDeps>;
  apiUrl?: string;
}

/** A notifier on a fresh DATA_DIR, logging JSON lines to memory with no redaction of its own. */
async function setup(t: Teardown, o: Setup = {}) {
  const fake = o.fake ?? (await startFakeTelegram(t));
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'autoheal-tg-'));
  if (!o.dir) t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = testConfig({
    TELEGRAM_BOT_TOKEN: FAKE_TOKEN,
    TELEGRAM_CHAT_ID: o.chats ?? '-1001',
    TELEGRAM_API_URL: o.apiUrl ?? fake.url,
    DATA_DIR: dir,
  });
  const lines: string[] = [];
  // A bare pino logger: the test proves the notifier scrubs on its own, not that the service
  // logger's last line of defence catches it.
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(chunk, _enc, cb) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        cb();
      },
    }),
  );
  const metrics = createMetrics(new Registry(), { defaultMetrics: false });
  const notifier = createNotifier(config, {
    log,
    metrics,
    timeoutMs: 2_000,
    tuning: { batchWindowMs: 30, minIntervalMs: 0, retryBaseMs: 100, ...o.tuning },
    ...o.deps,
  });
  t.teardown(() => notifier.close());
  if (o.start !== false) notifier.start();
  const metric = async (name: string, labels: Record<string, string> = {}) => {
    const m = await metrics.registry.getSingleMetric(name)?.get();
    const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => String(x.labels[k]) === val));
    return v?.value ?? 0;
  };
  const count = (result: string) => metric('autoheal_notifications_total', { channel: 'telegram', result });
  return { fake, dir, notifier, lines, metrics, metric, count };
}

const waitUntil = async (what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 15_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
};

t.test('429 with retry_after 2: delivered once, after the wait', async (t) => {
  const s = await setup(t);
  s.fake.script.push({ status: 429, retryAfter: 2 });
  s.notifier.raise(escalation({ container: 'web-429' }));
  const [first] = await s.fake.waitForRequests(1);
  const delivered = await s.fake.waitForDelivered(1);
  const second = s.fake.requests[1];
  t.ok(first && second, 'two requests');
  const waited = (second?.at ?? 0) - (first?.at ?? 0);
  t.ok(waited >= 1_990, `the retry came ${waited} ms after the 429`);
  t.ok(waited < 3_500, 'and not much later');
  t.match(delivered[0]?.plain, 'web-429');
  await sleep(500);
  t.equal(s.fake.requests.length, 2, 'no further request');
  t.equal(s.fake.delivered.length, 1, 'delivered once');
  t.equal(await s.count('retried'), 1);
  t.equal(await s.count('sent'), 1);
  t.equal(s.notifier.depth, 0, 'the outbox is empty');
  t.equal(await s.metric('autoheal_notification_queue_depth'), 0);
});

t.test('three 500s then 200: delivered once', async (t) => {
  const s = await setup(t);
  s.fake.script.push({ status: 500 }, { status: 502 }, { status: 503 });
  s.notifier.raise(escalation({ container: 'web-5xx' }));
  await s.fake.waitForDelivered(1);
  await sleep(400);
  t.equal(s.fake.requests.length, 4, '3 failures and 1 success');
  t.equal(s.fake.delivered.length, 1, 'delivered once');
  t.equal(await s.count('retried'), 3);
  t.equal(await s.count('sent'), 1);
  t.equal(await s.count('failed'), 0);
  const gaps = s.fake.requests.slice(1).map((r, i) => r.at - (s.fake.requests[i]?.at ?? 0));
  t.ok(gaps[0] !== undefined && gaps[0] >= 90, `back-off before retry 1: ${gaps[0]} ms`);
  t.ok(gaps[2] !== undefined && gaps[2] >= 390, `back-off doubles: retry 3 after ${gaps[2]} ms`);
});

t.test('403: given up and counted, never retried', async (t) => {
  const s = await setup(t);
  s.fake.script.push({ status: 403 });
  s.notifier.raise(escalation({ container: 'web-403' }));
  await waitUntil('the failure to be counted', async () => (await s.count('failed')) === 1);
  await sleep(500);
  t.equal(s.fake.requests.length, 1, 'one request only');
  t.equal(s.notifier.depth, 0, 'removed from the outbox');
  t.equal(await s.count('retried'), 0);
  const line = s.lines.map((l) => JSON.parse(l)).find((l) => l.result === 'failed');
  t.equal(line?.status, 403, 'the status is logged');
  t.match(line?.reason, /bot was blocked/, 'with Telegram description');
  t.equal(line?.level, 50, 'at error level');
});

t.test('400 is given up too; a bad-markup 400 falls back to plain text once', async (t) => {
  const s = await setup(t);
  s.fake.script.push({ status: 400, description: 'Bad Request: chat not found' });
  s.fake.script.push({
    status: 400,
    description: "Bad Request: can't parse entities: Unsupported start tag",
  });
  s.notifier.enqueueText('first');
  await waitUntil('the first to fail', async () => (await s.count('failed')) === 1);
  s.notifier.enqueueText('<b>second</b>');
  const [d] = await s.fake.waitForDelivered(1);
  t.equal(d?.parseMode, undefined, 'sent without parse_mode');
  t.equal(d?.text, '<b>second</b>', 'the words as written');
  t.equal(s.fake.requests.length, 3);
});

t.test('network errors and timeouts are retried; each call has a timeout', async (t) => {
  const s = await setup(t, { deps: { timeoutMs: 300 } });
  s.fake.script.push({ destroy: true }, { hang: true });
  s.notifier.raise(escalation({ container: 'web-net' }));
  const started = Date.now();
  await s.fake.waitForDelivered(1);
  t.equal(s.fake.requests.length, 3, 'dropped connection, hung call, success');
  t.ok(Date.now() - started < 3_000, 'the hung call was abandoned after its timeout');
  const reasons = s.lines.map((l) => JSON.parse(l)).filter((l) => l.result === 'retried');
  t.equal(reasons.length, 2);
  t.match(reasons[1]?.reason, /timed out after 300 ms/);
  await sleep(300);
  t.equal(s.fake.delivered.length, 1, 'delivered once');
});

t.test('refused connection (API down) is retried until it comes back', async (t) => {
  const probe = await startFakeTelegram();
  const port = Number(new URL(probe.url).port);
  await probe.close();
  const s = await setup(t, { apiUrl: `http://127.0.0.1:${port}` });
  s.notifier.raise(escalation({ container: 'web-down' }));
  await waitUntil('two failed attempts', async () => (await s.count('retried')) >= 2);
  const fake = await startFakeTelegram(t, FAKE_TOKEN, port);
  await fake.waitForDelivered(1);
  t.match(fake.delivered[0]?.plain, 'web-down');
  t.match(JSON.parse(s.lines.find((l) => l.includes('"retried"')) ?? '{}').reason, /ECONNREFUSED/);
});

t.test('a burst of 30 escalations becomes one digest per chat; chats and topics', async (t) => {
  const s = await setup(t, { chats: '-1001,-1002:77', tuning: { batchWindowMs: 300 } });
  for (let i = 0; i < 30; i++) {
    s.notifier.raise(escalation({ container: `burst-${i}` }));
    if (i % 10 === 9) await sleep(100); // spread over the window, as a real burst is
  }
  await s.fake.waitForDelivered(2);
  await sleep(600);
  t.equal(s.fake.delivered.length, 2, 'one message per chat');
  const byChat = new Map(s.fake.delivered.map((d) => [d.chatId, d]));
  t.equal(byChat.get(-1001)?.threadId, undefined, 'a plain group');
  t.equal(byChat.get(-1002)?.threadId, 77, 'the forum topic');
  const plain = byChat.get(-1001)?.plain ?? '';
  t.match(plain, /30 events on docker-01/);
  for (let i = 0; i < 30; i++) t.ok(plain.includes(`burst-${i}`), `lists burst-${i}`);
});

t.test('one chat gets at most one message per interval, in order', async (t) => {
  const s = await setup(t, { chats: '42,43', tuning: { minIntervalMs: 1_000 } });
  for (const text of ['one', 'two', 'three']) s.notifier.enqueueText(text);
  await s.fake.waitForDelivered(6);
  const to42 = s.fake.delivered.filter((d) => d.chatId === 42);
  t.same(
    to42.map((d) => d.plain),
    ['one', 'two', 'three'],
    'in order',
  );
  const gaps = to42.slice(1).map((d, i) => d.at - (to42[i]?.at ?? 0));
  for (const g of gaps) t.ok(g >= 990, `gap ${g} ms >= ~1 s`);
  const to43 = s.fake.delivered.filter((d) => d.chatId === 43);
  t.ok(Math.abs((to43[0]?.at ?? 0) - (to42[0]?.at ?? 0)) < 500, 'chats are served side by side');
});

t.test('recovery alone is silent; a severity not asked for is not sent', async (t) => {
  const s = await setup(t);
  s.notifier.raise(escalation({ kind: 'alert', severity: 'warning', container: 'quiet' }));
  s.notifier.raise(escalation({ kind: 'recovered', container: 'back' }));
  const [d] = await s.fake.waitForDelivered(1);
  await sleep(300);
  t.equal(s.fake.delivered.length, 1);
  t.match(d?.plain, /Recovered: back/);
  t.equal(d?.silent, true);
});

t.test('pending messages survive a restart of the notifier and are delivered once', async (t) => {
  const fake = await startFakeTelegram(t);
  const root = mkdtempSync(join(tmpdir(), 'autoheal-tg-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  fake.fallback = { status: 500 };
  // Life 1 of service A: Telegram fails, so its message waits for a retry; A is closed (SIGTERM).
  const a = await setup(t, { fake, dir: join(root, 'a'), tuning: { retryBaseMs: 60_000 } });
  a.notifier.raise(escalation({ container: 'before-restart' }));
  await fake.waitForRequests(1);
  await a.notifier.close();
  // Life 1 of service B: the escalation is still in its batch window when B dies without close().
  const b = await setup(t, { fake, dir: join(root, 'b'), tuning: { batchWindowMs: 60_000 } });
  b.notifier.raise(escalation({ container: 'in-batch-window' }));
  fake.fallback = { status: 200 };
  const requestsBefore = fake.requests.length;

  const a2 = await setup(t, { fake, dir: join(root, 'a') });
  const b2 = await setup(t, { fake, dir: join(root, 'b') });
  await fake.waitForDelivered(2);
  await sleep(500);
  t.same(fake.delivered.map((d) => /(before-restart|in-batch-window)/.exec(d.plain)?.[1]).sort(), [
    'before-restart',
    'in-batch-window',
  ]);
  t.equal(fake.requests.length - requestsBefore, 2, 'each delivered once');
  t.equal(a2.notifier.depth + b2.notifier.depth, 0, 'both outboxes are empty');
});

t.test('messages older than maxAge are dropped, logged and counted', async (t) => {
  const s = await setup(t, { tuning: { maxAgeMs: 300, retryBaseMs: 100 } });
  s.fake.fallback = { status: 500 };
  s.notifier.enqueueText('too late');
  await waitUntil('the drop', async () => (await s.count('dropped')) === 1);
  t.equal(s.notifier.depth, 0);
  const line = s.lines.map((l) => JSON.parse(l)).find((l) => l.result === 'dropped');
  t.equal(line?.text, 'too late', 'the text is kept in the log');
});

t.test('a group upgraded to a supergroup: sent to the new chat id', async (t) => {
  const s = await setup(t, { chats: '-42' });
  s.fake.script.push({ status: 400, description: 'Bad Request: group chat was upgraded', migrateTo: -10042 });
  s.notifier.enqueueText('moved');
  const [d] = await s.fake.waitForDelivered(1);
  t.equal(d?.chatId, -10042);
  t.ok(s.lines.some((l) => l.includes('set TELEGRAM_CHAT_ID')));
});

t.test('the token appears in no log line, outbox file or metric, whatever the API answers', async (t) => {
  const s = await setup(t, { deps: { timeoutMs: 300 } });
  s.fake.script.push(
    { echoUrl: 502 },
    { destroy: true },
    { hang: true },
    { status: 500, description: `Internal error at /bot${FAKE_TOKEN}/sendMessage` },
    { status: 403, description: `Forbidden: token ${encodeURIComponent(FAKE_TOKEN)} blocked` },
  );
  s.notifier.raise(escalation({ container: 'leak-1' }));
  await waitUntil('the 403', async () => (await s.count('failed')) === 1);
  t.equal(s.fake.requests.length, 5);

  // An undici error whose message quotes the URL with the token.
  const agent = new MockAgent();
  agent.disableNetConnect();
  agent
    .get(s.fake.url)
    .intercept({ path: `/bot${FAKE_TOKEN}/sendMessage`, method: 'POST' })
    .replyWithError(new Error(`connect failed for ${s.fake.url}/bot${FAKE_TOKEN}/sendMessage`));
  const m = await setup(t, { fake: s.fake, deps: { dispatcher: agent }, tuning: { retryBaseMs: 60_000 } });
  m.notifier.enqueueText('via mock');
  await waitUntil('the mock error', async () => (await m.count('retried')) === 1);

  const token = [FAKE_TOKEN, encodeURIComponent(FAKE_TOKEN), FAKE_TOKEN.split(':')[1] as string];
  const logs = [...s.lines, ...m.lines].join('\n');
  t.ok(logs.includes('<redacted>'), 'the token was there to be scrubbed');
  t.ok(logs.includes('upstream failed for POST /bot<redacted>/sendMessage'));
  for (const tok of token) t.notOk(logs.includes(tok), `no log line holds ${tok.slice(0, 12)}…`);
  for (const dir of [s.dir, m.dir]) {
    for (const f of readdirSync(dir)) {
      const text = readFileSync(join(dir, f), 'utf8');
      for (const tok of token) t.notOk(text.includes(tok), `${f} holds no token`);
    }
  }
  const metricsText = (await s.metrics.registry.metrics()) + (await m.metrics.registry.metrics());
  for (const tok of token) t.notOk(metricsText.includes(tok), 'no metric holds the token');
});

t.test('without a token the notifier is off and says so once', async (t) => {
  const lines: string[] = [];
  const log = pino(
    new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    }),
  );
  const metrics = createMetrics(new Registry(), { defaultMetrics: false });
  const off = createNotifier(testConfig({ TELEGRAM_CHAT_ID: '-1' }), { log, metrics });
  t.equal(off.enabled, false);
  t.equal(lines.filter((l) => l.includes('Telegram notifier off')).length, 1);
  t.match(lines[0], /TELEGRAM_BOT_TOKEN is not set/);
  off.raise(escalation({ container: 'logged-only' }));
  t.ok(
    lines.some((l) => l.includes('logged-only')),
    'the escalation is in the log',
  );
  t.throws(() => off.enqueueText('x'), /no notifier is configured/);
  const noChat = createNotifier(testConfig({ TELEGRAM_BOT_TOKEN: FAKE_TOKEN }), { log, metrics });
  t.equal(noChat.enabled, false);
  t.match(lines.at(-1), /TELEGRAM_CHAT_ID is empty/);
  t.notOk(lines.join('').includes(FAKE_TOKEN));
});
