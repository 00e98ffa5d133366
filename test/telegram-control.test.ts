// Telegram controls against the real service process, the real Docker engine and the local Bot API
// stand-in: the buttons of an escalation message tapped by an allowed user and by a stranger, the chat
// commands, and a kill -9 between a tap's receipt and its action (and between the action and the end
// of its handling): the tap is acted on exactly once.
import t from 'tap';
import type { InlineKeyboardMarkup } from '@grammyjs/types';
import { ADMIN_TOKEN } from './fixtures/app.js';
import {
  BROKEN,
  createTestContainer,
  exec,
  followEngineEvents,
  uniqueName,
  waitFor,
  waitForHealth,
} from './fixtures/docker.js';
import {
  type Delivered,
  FAKE_TOKEN,
  type FakeTelegram,
  type FakeUser,
  startFakeTelegram,
} from './fixtures/fake-telegram.js';
import { freePort, startService } from './fixtures/service.js';

const CHAT = '-1001234';
const ALICE = { id: 4242, first_name: 'Alice', username: 'alice' };
const MALLORY = { id: 777, first_name: 'Mallory' };

function envFor(fake: FakeTelegram, project: string, extra: Record<string, string> = {}) {
  return {
    WATCH_SCOPE: 'project',
    COMPOSE_PROJECT: project,
    START_PERIOD: '0',
    MAX_RESTART_ATTEMPTS: '1',
    RESTART_COOLDOWN: '1',
    VERIFY_TIMEOUT: '4',
    VERIFY_GRACE: '1',
    TELEGRAM_BOT_TOKEN: FAKE_TOKEN,
    TELEGRAM_CHAT_ID: CHAT,
    TELEGRAM_API_URL: fake.url,
    TELEGRAM_ALLOWED_USERS: String(ALICE.id),
    ...extra,
  };
}

const buttons = (d: { replyMarkup?: InlineKeyboardMarkup | undefined }) =>
  (d.replyMarkup?.inline_keyboard ?? []).flat().map((b) => ({
    text: b.text,
    data: 'callback_data' in b ? (b.callback_data as string) : '',
  }));

const dataOf = (d: Delivered, prefix: string) => {
  const b = buttons(d).find((x) => x.data.startsWith(prefix));
  if (!b) throw new Error(`no button ${prefix} in ${JSON.stringify(buttons(d))}`);
  return b.data;
};

async function admin(url: string, path: string) {
  const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  return (await res.json()) as Record<string, unknown>;
}

/** The escalation message about a container that carries buttons. */
async function escalationMessage(fake: FakeTelegram, name: string): Promise<Delivered> {
  return fake.waitFor(
    `an escalation message with buttons about ${name}`,
    () => fake.delivered.find((d) => d.plain.includes(name) && buttons(d).length > 0),
    90_000,
  );
}

/** A container broken at its first start only: a restart does not cure it, fixing the cause does. */
function brokenOnce(t: Parameters<typeof createTestContainer>[0], project: string) {
  return createTestContainer(t, {
    labels: { 'com.docker.compose.project': project },
    cmd: [
      'sh',
      '-c',
      `trap 'exit 0' TERM; [ -f /tmp/started ] || touch ${BROKEN}; touch /tmp/started; sleep 2147483 & wait`,
    ],
  });
}

/** Waits until the service has given the container up. */
function givenUp(url: string, name: string) {
  return waitFor(
    'the give-up recorded',
    async () => {
      const list = (await admin(url, '/api/v1/containers')).containers as Array<Record<string, unknown>>;
      return list.find((x) => x.name === name)?.givenUp === true;
    },
    60_000,
  );
}

t.test('buttons and commands: allowed user acts, a stranger is refused, every step audited', async (t) => {
  const fake = await startFakeTelegram(t);
  const project = uniqueName('tgctl');
  const c = await brokenOnce(t, project);
  const events = await followEngineEvents(t, {
    event: ['restart', 'kill', 'start'],
    label: [`com.docker.compose.project=${project}`],
  });
  const svc = await startService(t, envFor(fake, project));

  // The watcher restarts it once, the restart does not help, the service gives up and says so.
  const msg = await escalationMessage(fake, c.name);
  t.match(msg.plain, /Gave up|did not work/, 'an escalation asking a human to act');
  t.same(
    buttons(msg).map((b) => b.text),
    ['🔁 Retry now', '⏸ Pause 1 h', '♻️ Reset', '🔕 Silence 1 h', '✔️ Acknowledge'],
    'the five buttons',
  );
  t.ok(
    buttons(msg).every((b) => Buffer.byteLength(b.data) <= 64),
    'callback data within 64 bytes',
  );
  await givenUp(svc.url, c.name);
  const restartsBefore = events.filter((e) => e.name === c.name && e.action === 'restart').length;

  // A stranger taps Retry now: a polite refusal, nothing happens, the attempt is audited.
  const strangerTap = fake.tap(MALLORY, msg, dataOf(msg, 'ah1:rr:'));
  const refusal = await fake.waitFor('the refusal', () =>
    fake.answers.find((a) => a.callbackQueryId === `cbq-${strangerTap}`),
  );
  t.ok(refusal.showAlert, 'shown as an alert');
  t.match(refusal.text, /may not control AutoHeal-Nexus.*777.*TELEGRAM_ALLOWED_USERS/);
  await waitFor('the refusal audited', async () =>
    svc.audit().some((l) => l.event === 'telegram_refused' && l.userId === MALLORY.id),
  );
  t.equal(
    events.filter((e) => e.name === c.name && e.action === 'restart').length,
    restartsBefore,
    'no restart for a stranger',
  );
  t.equal(fake.edits.length, 0, 'the message is not edited for a refusal');

  // Alice fixes the cause, then taps Retry now: answered, restarted (forced past given_up), verified.
  await exec(c.name, ['rm', '-f', BROKEN]);
  const tapAt = Date.now();
  const retry = fake.tap(ALICE, msg, dataOf(msg, 'ah1:rr:'));
  const answer = await fake.waitFor('the answer', () =>
    fake.answers.find((a) => a.callbackQueryId === `cbq-${retry}`),
  );
  t.comment(`tap answered ${answer.at - tapAt} ms after the tap was handed out`);
  t.match(answer.text, /Retry now \(restart\)/);
  t.notOk(answer.showAlert);
  // On a failure, what the chat showed and what the service decided: the story of the run.
  t.teardown(() => {
    if (t.passing()) return;
    t.comment(
      JSON.stringify(
        [...fake.messages.values()].map((m) => m.text),
        null,
        1,
      ),
    );
    for (const l of svc.audit().filter((l) => /telegram|manual|decision|remediation/.test(String(l.event))))
      t.comment(JSON.stringify(l));
  });
  const edited = await fake.waitFor(
    'the message edited with the result',
    () => {
      const shown = fake.messages.get(`${CHAT}:${msg.messageId}`);
      return shown && /restart of .* succeeded/.test(shown.text) ? shown : undefined;
    },
    60_000,
  );
  t.match(
    edited.text,
    new RegExp(
      `restart of ${c.name} requested: remediation [0-9a-f]{8} \\(Alice \\(@alice\\), [0-9:]{8} UTC\\)`,
    ),
  );
  t.match(edited.text, /✅ restart of .* succeeded/);
  t.same(edited.replyMarkup, msg.replyMarkup, 'the buttons stay');
  t.ok(edited.entities.length > 0, 'the original formatting stays');
  await waitForHealth(c.name, 'healthy');
  t.equal(
    events.filter((e) => e.name === c.name && e.action === 'restart').length,
    restartsBefore + 1,
    'one restart',
  );
  const manual = svc.audit().find((l) => l.event === 'manual_request' && l.target === c.name);
  t.equal(manual?.requestedBy, 'telegram:4242 Alice (@alice)', 'the admin API recorded who asked');

  // Pause 1 h, Silence 1 h, Reset, Acknowledge: each through the admin API, each an edit line.
  for (const [prefix, expect] of [
    ['ah1:p:', /⏸ .* paused until [0-9:]{5} UTC/],
    ['ah1:s:', /🔕 .* silenced until [0-9:]{5} UTC/],
    ['ah1:x:', /♻️ .* reset: attempts cleared/],
    ['ah1:a:', /✔️ Acknowledged/],
  ] as const) {
    const edits = fake.edits.length;
    fake.tap(ALICE, msg, dataOf(msg, prefix));
    await fake.waitFor(`the edit after ${prefix}`, () => (fake.edits.length > edits ? true : undefined));
    t.match(fake.messages.get(`${CHAT}:${msg.messageId}`)?.text, expect, prefix);
  }
  const status = (
    (await admin(svc.url, '/api/v1/containers')).containers as Array<Record<string, unknown>>
  ).find((x) => x.name === c.name);
  t.ok(
    typeof status?.pausedUntil === 'string' &&
      Date.parse(status.pausedUntil as string) > Date.now() + 3_500_000,
    'paused for an hour',
  );
  t.equal(status?.givenUp, false, 'reset');

  // Commands.
  const reply = async (text: string, from: FakeUser = ALICE, chat: string = CHAT) => {
    const n = fake.delivered.length;
    fake.say(from, chat, text);
    return (
      await fake.waitFor(`a reply to ${text}`, () =>
        fake.delivered.slice(n).find((d) => d.parseMode === undefined),
      )
    ).plain;
  };
  t.match(await reply('/help'), /\/status.*\/incidents.*\/restart NAME.*\/pause NAME 1h.*\/resume NAME/s);
  t.match(
    await reply('/status@autoheal_test_bot'),
    new RegExp(`watched.*${c.name}: running/healthy.*paused until`, 's'),
  );
  t.match(await reply(`/resume ${c.name}`), new RegExp(`▶️ ${c.name} resumed`));
  t.match(await reply(`/pause ${c.name} 2h`), new RegExp(`⏸ ${c.name} paused until`));
  t.match(await reply(`/resume ${c.name}`), /resumed/);
  t.match(await reply('/incidents 1h'), new RegExp(`incident\\(s\\) in the last 1h.*${c.name}`, 's'));
  t.match(await reply('/pause'), /Usage: \/pause NAME 1h/);
  t.match(await reply('/pause web soon'), /"soon" is not a duration/);
  t.match(
    await reply('/restart no-such-container-xyz'),
    /restart of no-such-container-xyz not done: no container named/,
  );
  t.match(await reply('/frobnicate'), /Unknown command \/frobnicate/);
  t.match(await reply('/status', MALLORY), /may not control AutoHeal-Nexus/);
  const restartReply = await reply(`/restart ${c.name}`);
  t.match(restartReply, new RegExp(`🔁 restart of ${c.name} requested: remediation`));
  await fake.waitFor(
    'the /restart reply edited with the result',
    () =>
      [...fake.messages.values()].find((m) => m.text.startsWith('🔁 restart') && /succeeded/.test(m.text)),
    60_000,
  );

  // Ignored: a command for another bot, a command in a chat that is not configured, plain talk.
  const plainReplies = () => fake.delivered.filter((d) => d.parseMode === undefined).length;
  const before = plainReplies();
  fake.say(ALICE, CHAT, '/status@some_other_bot');
  fake.say(ALICE, '-100999', '/status');
  fake.say(ALICE, CHAT, 'thanks, all good now');
  const marker = await reply('/help');
  t.ok(marker, 'answered again');
  t.equal(plainReplies(), before + 1, 'only the last /help was answered');

  // Every accepted tap and command is an audit line naming the user; the token is in none.
  const lines = svc.audit().filter((l) => l.event === 'telegram_action');
  t.ok(lines.length >= 13, `${lines.length} telegram_action lines`);
  t.ok(lines.every((l) => l.userId === ALICE.id && l.user === 'Alice (@alice)'));
  t.notMatch(svc.output(), FAKE_TOKEN.split(':')[1] as string, 'no bot token in the output');
  const metrics = await (await fetch(`${svc.url}/metrics`)).text();
  t.match(metrics, /autoheal_telegram_updates_total\{kind="button",result="refused"\} 1/);
  t.match(metrics, /autoheal_telegram_updates_total\{kind="command",result="refused"\} 1/);
  // Each update was handed out once: the offset confirmed it.
  t.equal(new Set(fake.handedOut).size, fake.handedOut.length, 'no update handed out twice');
});

t.test('kill -9 between a tap and its action, and between the action and its end: one restart', async (t) => {
  const fake = await startFakeTelegram(t);
  const project = uniqueName('tgkill');
  const c = await brokenOnce(t, project);
  const events = await followEngineEvents(t, {
    event: ['restart'],
    label: [`com.docker.compose.project=${project}`],
  });
  const env = envFor(fake, project);
  const life1 = await startService(t, env);
  const msg = await escalationMessage(fake, c.name);
  await givenUp(life1.url, c.name);
  const restarts = () => events.filter((e) => e.name === c.name && e.action === 'restart').length;
  const before = restarts();
  await exec(c.name, ['rm', '-f', BROKEN]);

  // Life 1 receives the tap and journals it, then hangs answering it: killed before it acts.
  fake.scriptFor('answerCallbackQuery').push({ hang: true });
  const tap = fake.tap(ALICE, msg, dataOf(msg, 'ah1:rr:'));
  await fake.waitFor('the tap being answered', () =>
    fake.requests.find((r) => r.url.endsWith('/answerCallbackQuery')) ? true : undefined,
  );
  await life1.kill('SIGKILL');
  t.equal(restarts(), before, 'nothing done before the kill');

  // Life 2 finds the tap in its journal and acts on it; this time it hangs on the edit, after the
  // remediation was requested, and is killed there.
  fake.scriptFor('editMessageText').push({ hang: true });
  const life2 = await startService(t, env, life1.dir);
  await fake.waitFor(
    'the edit after the action',
    () => (fake.requests.find((r) => r.url.endsWith('/editMessageText')) ? true : undefined),
    30_000,
  );
  await waitFor('the remediation recorded', async () =>
    life2.audit().some((l) => l.event === 'manual_request' && l.target === c.name),
  );
  await life2.kill('SIGKILL');

  // Life 3 handles the tap again: the Idempotency-Key finds the remediation life 2 started.
  const life3 = await startService(t, env, life1.dir);
  await fake.waitFor(
    'the message edited by life 3',
    () => (fake.edits.length > 0 ? true : undefined),
    30_000,
  );
  await waitForHealth(c.name, 'healthy');
  await waitFor(
    'the remediation verified',
    async () => {
      const list = (await admin(life3.url, '/api/v1/containers')).containers as Array<
        Record<string, unknown>
      >;
      return list.find((x) => x.name === c.name)?.lastResult === 'succeeded';
    },
    60_000,
  );
  t.equal(restarts(), before + 1, 'exactly one restart across three lives');
  t.equal(fake.handedOut.filter((id) => id === tap).length, 1, 'Telegram handed the tap out once');
  const repeats = life3.audit().filter((l) => l.event === 'manual_request_repeat');
  t.equal(repeats.length, 1, 'life 3 got the remediation life 2 started, and started none');
  const requested = life3.audit().filter((l) => l.event === 'manual_request' && l.target === c.name);
  t.equal(requested.length, 1, 'one remediation requested in all');
});

t.test('webhook mode: updates posted with the secret token; a wrong token is refused', async (t) => {
  const fake = await startFakeTelegram(t);
  const project = uniqueName('tghook');
  const c = await createTestContainer(t, {
    labels: { 'com.docker.compose.project': project },
  });
  await waitForHealth(c.name, 'healthy');
  const secret = 'hook-secret-0123456789abcdef';
  const port = await freePort();
  const svc = await startService(
    t,
    envFor(fake, project, {
      PORT: String(port),
      TELEGRAM_UPDATES: 'webhook',
      TELEGRAM_WEBHOOK_URL: `http://127.0.0.1:${port}/telegram/webhook`,
      TELEGRAM_WEBHOOK_SECRET: secret,
    }),
  );
  await fake.waitFor('the webhook set', () => fake.webhook);
  t.equal(fake.webhook?.secret, secret, 'registered with its secret_token');
  t.equal(fake.webhook?.url, `http://127.0.0.1:${svc.port}/telegram/webhook`);

  const n = fake.delivered.length;
  fake.say(ALICE, CHAT, '/status');
  const r = await fake.waitFor('the /status reply', () => fake.delivered.slice(n)[0]);
  t.match(r.plain, new RegExp(`${c.name}: running/healthy`));

  const post = (headers: Record<string, string>, body: unknown = { update_id: 1 }) =>
    fetch(`${svc.url}/telegram/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  t.equal((await post({})).status, 401, 'no secret');
  t.equal(
    (await post({ 'x-telegram-bot-api-secret-token': 'wrong-secret-0123456789' })).status,
    401,
    'wrong secret',
  );
  t.equal(
    (await post({ 'x-telegram-bot-api-secret-token': secret }, { nope: true })).status,
    400,
    'not an update',
  );
  // An update id below the offset is a repeat: answered 200, not handled again.
  const handled = svc.audit().filter((l) => l.event === 'telegram_action').length;
  t.equal((await post({ 'x-telegram-bot-api-secret-token': secret }, { update_id: 1 })).status, 200);
  t.equal(svc.audit().filter((l) => l.event === 'telegram_action').length, handled);
  t.ok(
    svc.audit().some((l) => l.event === 'telegram_webhook_refused'),
    'refusals logged',
  );
  t.notMatch(svc.output(), secret, 'the secret is in no log line');
});
