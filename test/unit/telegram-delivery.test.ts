// Delivery through the outbox to a fake Bot API on 127.0.0.1: 429 waits its retry_after, 5xx and
// network errors are retried with back-off, 403 is given up and counted, timeouts fire, each message
// arrives once, one chat gets at most about one message a second, and the token leaks nowhere.
//
// Times are asserted in the outbox's own (injected) clock, never as gaps between arrivals at the fake:
// arrival times add the client's and the server's scheduling delays, which a loaded machine stretches
// unevenly (a 1 000 ms interval once arrived as a 977 ms gap). What the outbox promises is when it
// decides to send, and that is what `sends` records.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import { Agent, type Dispatcher, MockAgent } from 'undici';
import type { Clock } from '../../src/core/clock.js';
import { createMetrics } from '../../src/metrics.js';
import type { Escalation } from '../../src/notifiers/escalation.js';
import { createNotifier, type NotifierDeps } from '../../src/notifiers/index.js';
import { RESENT_NOTE } from '../../src/notifiers/format.js';
import type { OutboxTuning } from '../../src/notifiers/outbox.js';
import { testConfig } from '../fixtures/config.js';
import { FAKE_TOKEN, type FakeTelegram, startFakeTelegram } from '../fixtures/fake-telegram.js';

type Teardown = { teardown(fn: () => unknown): void };

/**
 * The system clock, with two test controls: it can be held still and moved by hand (so a burst "spread
 * over 200 ms" is 200 ms to the outbox however slow the machine is), and it remembers its last reading.
 * The outbox reads the clock once per pass and sends with nothing else reading it in between, so the
 * reading before a send is the time the outbox chose to send.
 */
class TestClock implements Clock {
  last = 0;
  private offset = 0;
  private heldAt: number | undefined;
  now(): number {
    this.last = this.heldAt ?? Date.now() + this.offset;
    return this.last;
  }
  hold(): void {
    this.heldAt = this.now();
  }
  advance(ms: number): void {
    if (this.heldAt !== undefined) this.heldAt += ms;
    else this.offset += ms;
  }
  release(): void {
    if (this.heldAt === undefined) return;
    this.offset = this.heldAt - Date.now();
    this.heldAt = undefined;
  }
}

interface Send {
  /** The outbox's clock when it sent (see TestClock). */
  readonly at: number;
  readonly chatId: unknown;
  readonly text: unknown;
}

/** The Bot API client's dispatcher, noting each call as it is handed over (synchronously from the send). */
class RecordingAgent extends Agent {
  readonly sends: Send[] = [];
  constructor(private readonly clock: TestClock) {
    super();
  }
  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    let body: { chat_id?: unknown; text?: unknown } = {};
    try {
      body = JSON.parse(String(opts.body)) as typeof body;
    } catch {
      // not a sendMessage body
    }
    this.sends.push({ at: this.clock.last, chatId: body.chat_id, text: body.text });
    return super.dispatch(opts, handler);
  }
}

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
  const clock = new TestClock();
  const agent = new RecordingAgent(clock);
  t.teardown(() => agent.close());
  const notifier = createNotifier(config, {
    log,
    metrics,
    clock,
    dispatcher: agent,
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
  /** The log lines of one result (retried, sent, failed, ...), parsed. */
  const logged = (result: string) =>
    lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.result === result);
  return { fake, dir, notifier, lines, metrics, metric, count, clock, sends: agent.sends, logged };
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
  const delivered = await s.fake.waitForDelivered(1);
  t.equal(s.fake.requests.length, 2, 'two requests');
  // The wait the outbox chose is retry_after itself, not a back-off; and it kept to it (its clock).
  t.same(
    s.logged('retried').map((l) => l.retryInMs),
    [2_000],
    'retry scheduled after retry_after (2 s)',
  );
  const [first, second] = s.sends;
  const waited = (second?.at ?? 0) - (first?.at ?? 0);
  t.ok(waited >= 2_000, `the retry was sent ${waited} ms after the first try (outbox clock)`);
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
  // The back-off the outbox chose doubles from retryBaseMs (100) with up to 10% jitter, and each retry
  // went out no earlier than its back-off (outbox clock).
  const delays = s.logged('retried').map((l) => Number(l.retryInMs));
  t.equal(delays.length, 3, 'three back-offs');
  delays.forEach((d, i) => {
    const base = 100 * 2 ** i;
    t.ok(d >= base && d <= Math.round(base * 1.1), `back-off ${i + 1}: ${d} ms (base ${base} ms)`);
  });
  t.equal(s.sends.length, 4);
  const gaps = s.sends.slice(1).map((x, i) => x.at - (s.sends[i]?.at ?? 0));
  for (const [i, g] of gaps.entries()) {
    t.ok(g >= (delays[i] ?? 0), `retry ${i + 1} sent ${g} ms after the try before`);
  }
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
  // The fake never answers the hung call: only the call's own timeout lets the third request happen, so
  // waitForDelivered's bound (15 s) is a hang check, not a speed check. The reason says which timeout.
  await s.fake.waitForDelivered(1);
  t.equal(s.fake.requests.length, 3, 'dropped connection, hung call, success');
  const reasons = s.logged('retried');
  t.equal(reasons.length, 2);
  t.match(reasons[1]?.reason, /timed out after 300 ms/, 'the hung call was abandoned after its timeout');
  const [, hung, third] = s.sends;
  t.ok(
    (third?.at ?? 0) - (hung?.at ?? 0) >= 300,
    'the next try came after the 300 ms timeout (outbox clock)',
  );
  await sleep(300);
  t.equal(s.fake.delivered.length, 1, 'delivered once');
});

t.test('a call that hangs past the timeout is sent again, marked as a possible repeat', async (t) => {
  const s = await setup(t, { deps: { timeoutMs: 300 } });
  s.fake.script.push({ hang: true });
  s.notifier.raise(escalation({ container: 'web-hang' }));
  const [d] = await s.fake.waitForDelivered(1);
  const [first, second] = s.fake.requests;
  t.equal(s.fake.requests.length, 2, 'the hung call and one resend');
  // The fake read the whole first request before hanging: Telegram could have delivered it.
  t.notOk(String(first?.body.text).includes(RESENT_NOTE), 'the first attempt is the message as it is');
  t.ok(String(second?.body.text).startsWith(String(first?.body.text).slice(0, 40)), 'the same message');
  t.match(d?.plain, 'web-hang');
  t.ok(d?.plain.endsWith(RESENT_NOTE), 'the resend says it may be a repeat');
  const line = s.lines.map((l) => JSON.parse(l)).find((l) => l.maybeDelivered === true);
  t.match(line, { level: 40, result: 'retried' }, 'logged as maybe delivered');
  t.match(line?.msg, /may have arrived.*marked as a possible repeat/);
  // The fake counts a delivery when it has read the request; the outbox drops the entry on the answer.
  await waitUntil('the outbox to empty', () => s.notifier.depth === 0);
  t.equal(s.notifier.depth, 0);
});

t.test('an attempt in flight when the process dies is marked as a possible repeat after it', async (t) => {
  const fake = await startFakeTelegram(t);
  const dir = mkdtempSync(join(tmpdir(), 'autoheal-tg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  fake.fallback = { hang: true };
  // Life 1: the request reaches Telegram and the process dies before any answer (no close()).
  const a = await setup(t, { fake, dir, deps: { timeoutMs: 60_000 } });
  a.notifier.enqueueText('in flight at the crash');
  await fake.waitForRequests(1);
  fake.fallback = { status: 200 };
  // Life 2 reads the journal as the crash left it.
  await setup(t, { fake, dir });
  const [d] = await fake.waitForDelivered(1);
  t.match(d?.plain, /^in flight at the crash/);
  t.ok(d?.plain.endsWith(RESENT_NOTE), 'the resend says it may be a repeat');
  t.equal(fake.requests.length, 2);
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
  t.notOk(fake.delivered[0]?.plain.includes(RESENT_NOTE), 'nothing can have arrived: no repeat note');
  t.match(JSON.parse(s.lines.find((l) => l.includes('"retried"')) ?? '{}').reason, /ECONNREFUSED/);
});

t.test('a burst of 30 escalations becomes one digest per chat; chats and topics', async (t) => {
  const s = await setup(t, { chats: '-1001,-1002:77', tuning: { batchWindowMs: 300 } });
  // Spread over 200 ms of the outbox's clock, as a real burst is; held while raising, so that a slow
  // machine cannot stretch the 100 ms steps past the 300 ms quiet window.
  s.clock.hold();
  for (let i = 0; i < 30; i++) {
    s.notifier.raise(escalation({ container: `burst-${i}` }));
    if (i % 10 === 9) {
      s.clock.advance(100);
      await sleep(10);
    }
  }
  s.clock.release();
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
  // When the outbox sent, in its own clock: the interval holds exactly, whatever the machine's load.
  const sent42 = s.sends.filter((x) => x.chatId === 42);
  const sent43 = s.sends.filter((x) => x.chatId === 43);
  t.equal(sent42.length, 3, 'three sends to chat 42');
  const gaps = sent42.slice(1).map((x, i) => x.at - (sent42[i]?.at ?? 0));
  for (const g of gaps) t.ok(g >= 1_000, `sent ${g} ms after the one before (outbox clock) >= 1 s`);
  // Side by side: the first message of chat 43 does not wait for chat 42's interval.
  t.ok(
    (sent43[0]?.at ?? Number.POSITIVE_INFINITY) - (sent42[0]?.at ?? 0) < 1_000,
    'chats are served side by side',
  );
  const order = s.sends.map((x) => `${x.chatId}:${x.text}`);
  t.ok(order.indexOf('43:one') < order.indexOf('42:two'), 'chat 43 got its first before chat 42 its second');
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
  await waitUntil('both outboxes to empty', () => a2.notifier.depth + b2.notifier.depth === 0);
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
