// Chat controls, the pure parts: callback data, what an update asks for and who may ask it, the history
// lines of an edited message, the keyboards of escalation messages, the replies to /status and
// /incidents, and the sink that holds a silenced container's escalations.
import type { Update } from '@grammyjs/types';
import t from 'tap';
import {
  actorName,
  appendHistory,
  BUTTON_HOLD_MS,
  callbackData,
  type ControlContext,
  interpret,
  parseCallbackData,
  requesterFor,
} from '../../src/core/chat-control.js';
import { type Escalation, MutedSink } from '../../src/notifiers/escalation.js';
import { keyboardFor } from '../../src/notifiers/telegram-buttons.js';
import { incidentsReply, statusReply } from '../../src/notifiers/telegram-replies.js';

const ctx: ControlContext = {
  chats: [{ chatId: '-100' }],
  allowedUsers: new Set([1]),
  botUsername: 'heal_bot',
};
const ALICE = { id: 1, is_bot: false, first_name: 'Alice', username: 'alice' };
const EVE = { id: 2, is_bot: false, first_name: 'Eve' };

const say = (text: string, from: object | null = ALICE, chat = -100): Update =>
  ({
    update_id: 10,
    message: {
      message_id: 5,
      date: 0,
      chat: { id: chat, type: 'supergroup' },
      text,
      ...(from ? { from } : {}),
    },
  }) as unknown as Update;
const tap = (data: string, from: object = ALICE, chat = -100): Update =>
  ({
    update_id: 11,
    callback_query: {
      id: 'q1',
      from,
      chat_instance: 'x',
      data,
      message: {
        message_id: 9,
        date: 0,
        chat: { id: chat, type: 'supergroup' },
        text: 'Gave up healing: web',
        entities: [{ type: 'bold', offset: 0, length: 15 }],
        reply_markup: { inline_keyboard: [] },
      },
    },
  }) as unknown as Update;

t.test('callback data: round trip, 64 bytes at most, stale and bad data recognised', async (t) => {
  for (const [name, action] of [
    ['retry', 'restart'],
    ['retry', 'recreate'],
    ['retry', 'stop_start'],
  ] as const) {
    const data = callbackData(name, 'web-1', action);
    t.same(parseCallbackData(data), { ok: true, press: { name: 'retry', target: 'web-1', action } });
  }
  t.same(parseCallbackData(callbackData('pause', 'web')), {
    ok: true,
    press: { name: 'pause', target: 'web', forMs: BUTTON_HOLD_MS },
  });
  t.same(parseCallbackData(callbackData('silence', 'web')), {
    ok: true,
    press: { name: 'silence', target: 'web', forMs: BUTTON_HOLD_MS },
  });
  t.same(parseCallbackData(callbackData('reset', 'web')), {
    ok: true,
    press: { name: 'reset', target: 'web' },
  });
  t.same(parseCallbackData(callbackData('ack')), { ok: true, press: { name: 'ack', target: undefined } });
  t.equal(callbackData('reset', 'x'.repeat(59)), undefined, 'a name too long for 64 bytes: no button');
  t.ok(callbackData('reset', 'x'.repeat(58)), '58 characters fit');
  t.equal(callbackData('reset', 'bad name'), undefined, 'never a name Docker would refuse');
  t.match(parseCallbackData('ah0:rr:web'), { ok: false, detail: /older version/ });
  t.match(parseCallbackData('ah1:zz:web'), { ok: false, detail: /unknown button/ });
  t.match(parseCallbackData('ah1:x:'), { ok: false, detail: /names no container/ });
  t.match(parseCallbackData('ah1:x:../etc'), { ok: false, detail: /no valid container/ });
  t.match(parseCallbackData(undefined), { ok: false });
});

t.test('interpret: chats, the allow-list, bots and senders', async (t) => {
  t.match(interpret(say('/status', ALICE, -999), ctx), { kind: 'ignore', reason: 'other_chat' });
  t.match(interpret(tap('ah1:x:web', ALICE, -999), ctx), { kind: 'ignore', reason: 'other_chat' });
  t.match(interpret(say('/status@other_bot'), ctx), { kind: 'ignore', reason: 'other_bot' });
  t.match(interpret(say('/status@Heal_Bot'), ctx), { kind: 'command', command: { name: 'status' } });
  t.match(interpret(say('hello there'), ctx), { kind: 'ignore', reason: 'not_a_command' });
  t.match(interpret(say('/status', null), ctx), { kind: 'ignore', reason: 'no_sender' });
  t.match(interpret({ update_id: 1 } as Update, ctx), { kind: 'ignore', reason: 'unsupported_update' });
  const refused = interpret(say('/restart web', EVE), ctx);
  t.match(refused, {
    kind: 'refuse',
    reason: 'not_allowed',
    actor: { id: 2, name: 'Eve' },
    what: '/restart',
  });
  t.match(refused.kind === 'refuse' ? refused.reply : '', /user id is 2.*TELEGRAM_ALLOWED_USERS/);
  t.match(interpret(tap('ah1:rr:web', EVE), ctx), {
    kind: 'refuse',
    callbackId: 'q1',
    what: 'Retry now (restart) of web',
  });
  // Allowed, but a button of an older format: said so, nothing done.
  t.match(interpret(tap('v0|web'), ctx), { kind: 'invalid', callbackId: 'q1', reply: /older version/ });
  const pressed = interpret(tap('ah1:x:web'), ctx);
  t.match(pressed, {
    kind: 'button',
    actor: { id: 1, name: 'Alice (@alice)' },
    chat: { chatId: '-100' },
    press: { name: 'reset', target: 'web' },
    message: { messageId: 9, text: 'Gave up healing: web', entities: [{ type: 'bold' }] },
  });
});

t.test('interpret: commands and their arguments', async (t) => {
  const cmd = (text: string) => {
    const it = interpret(say(text), ctx);
    return it.kind === 'command' ? it.command : it.kind === 'invalid' ? { invalid: it.reply } : it;
  };
  t.same(cmd('/help'), { name: 'help' });
  t.same(cmd('/start'), { name: 'help' });
  t.same(cmd('/incidents'), { name: 'incidents', since: '24h' });
  t.same(cmd('/incidents 7d'), { name: 'incidents', since: '7d' });
  t.match(cmd('/incidents soon'), { invalid: /Usage: \/incidents/ });
  t.same(cmd('/restart web'), { name: 'restart', target: 'web' });
  t.same(cmd('/restart service:shop/web'), { name: 'restart', target: 'service:shop/web' });
  t.match(cmd('/restart'), { invalid: 'Usage: /restart NAME' });
  t.match(cmd('/restart $(reboot)'), { invalid: /is not a container name/ });
  t.same(cmd('/pause web'), { name: 'pause', target: 'web', forMs: 3_600_000, duration: '1h' });
  t.same(cmd('/pause web 30m'), { name: 'pause', target: 'web', forMs: 1_800_000, duration: '30m' });
  t.match(cmd('/pause web 400d'), { invalid: /at most 366d/ });
  t.match(cmd('/pause web -1h'), { invalid: /not a duration/ });
  t.same(cmd('/resume web'), { name: 'resume', target: 'web' });
  t.same(cmd('/reset web'), { name: 'reset', target: 'web' });
  t.same(cmd('/STATUS'), { name: 'status' });
  t.match(cmd('/reboot_host'), { invalid: /Unknown command \/reboot_host.*\/status/s });
});

t.test('names: printable, bounded; the requester the admin API records', async (t) => {
  t.equal(
    actorName({ id: 5, first_name: 'Ada', last_name: 'Lovelace', username: 'ada' }),
    'Ada Lovelace (@ada)',
  );
  t.equal(actorName({ id: 5, first_name: 'Bob\u202e\n<b>x</b>' }), 'Bobbxb');
  t.equal(actorName({ id: 5 }), 'user 5');
  t.ok(actorName({ id: 5, first_name: 'x'.repeat(200) }).length <= 64);
  t.equal(requesterFor({ id: 5, name: 'Zoë (@zoe)' }), 'telegram:5 Zo (@zoe)');
});

t.test('appendHistory: lines appended, entities kept, bounded', async (t) => {
  const m = { text: 'Gave up healing: web', entities: [{ type: 'bold' as const, offset: 0, length: 15 }] };
  const one = appendHistory(m, 'reset by Alice');
  t.equal(one.text, 'Gave up healing: web\n\n▸ reset by Alice');
  t.same(one.entities, m.entities);
  let cur = one;
  for (let i = 0; i < 10; i++) cur = appendHistory(cur, `line ${i}`);
  const lines = cur.text.split('\n\n▸ ');
  t.equal(lines.length, 7, 'the message and six history lines');
  t.equal(lines[1], '(6 earlier)', 'counted across cuts');
  t.equal(lines.at(-1), 'line 9');
  const long = appendHistory(
    { text: 'x'.repeat(4090), entities: [{ type: 'bold', offset: 4000, length: 90 }] },
    'did it',
  );
  t.ok(long.text.length <= 4096, 'within Telegram limit');
  t.match(long.text, /▸ did it$/);
  t.same(long.entities, [], 'an entity cut by the shortening is dropped');
});

const esc = (o: Partial<Escalation>): Escalation => ({
  id: 'e1',
  kind: 'given_up',
  at: 0,
  host: 'h',
  container: 'web',
  attempts: [],
  ...o,
});

t.test('keyboards: five buttons for a container that needs a human, fewer where less applies', async (t) => {
  const k = keyboardFor([esc({})]);
  t.same(
    k?.inline_keyboard.map((r) => r.map((b) => [b.text, 'callback_data' in b ? b.callback_data : ''])),
    [
      [
        ['🔁 Retry now', 'ah1:rr:web'],
        ['⏸ Pause 1 h', 'ah1:p:web'],
      ],
      [
        ['♻️ Reset', 'ah1:x:web'],
        ['🔕 Silence 1 h', 'ah1:s:web'],
        ['✔️ Acknowledge', 'ah1:a:web'],
      ],
    ],
  );
  const recreate = keyboardFor([esc({ attempts: [{ at: 0, action: 'recreate', result: 'failed' }] })]);
  t.equal(
    recreate?.inline_keyboard[0]?.[0] && 'callback_data' in recreate.inline_keyboard[0][0]
      ? recreate.inline_keyboard[0][0].callback_data
      : '',
    'ah1:rc:web',
    'Retry repeats the action last tried',
  );
  t.equal(keyboardFor([esc({ kind: 'recovered' })]), undefined, 'no buttons on good news');
  t.same(keyboardFor([esc({ kind: 'circuit_open', container: undefined })])?.inline_keyboard, [
    [{ text: '✔️ Acknowledge', callback_data: 'ah1:a:' }],
  ]);
  const long = keyboardFor([esc({ container: 'x'.repeat(80) })]);
  t.same(
    long?.inline_keyboard.flat().map((b) => b.text),
    ['✔️ Acknowledge'],
    'a name too long: only Acknowledge',
  );
  const digest = keyboardFor([
    esc({ id: '1', container: 'a' }),
    esc({ id: '2', container: 'b', kind: 'flapping' }),
    esc({ id: '3', container: 'a', kind: 'verification_failed' }),
    esc({ id: '4', container: 'c', kind: 'recovered' }),
  ]);
  t.same(
    digest?.inline_keyboard.map((r) => r.map((b) => b.text)),
    [['🔁 a', '⏸ 1 h', '♻️'], ['🔁 b', '⏸ 1 h', '♻️'], ['✔️ Acknowledge']],
    'a digest: one row per container that needs a human',
  );
  const many = keyboardFor(Array.from({ length: 9 }, (_, i) => esc({ id: String(i), container: `c${i}` })));
  t.equal(many?.inline_keyboard.length, 6, 'at most five container rows and Acknowledge');
});

t.test('replies: /status puts the sick first; /incidents lists what was done', async (t) => {
  const c = (o: object) => ({
    name: 'x',
    id: '0123456789ab',
    image: 'i',
    state: 'running',
    health: 'healthy',
    status: 'Up',
    watched: true,
    protected: false,
    attempts: 0,
    maxAttempts: 3,
    cooldownRemainingSeconds: 0,
    pausedUntil: null,
    givenUp: false,
    ...o,
  });
  const text = statusReply(
    [
      c({ name: 'api' }),
      c({ name: 'db', health: 'unhealthy', attempts: 2 }),
      c({ name: 'old', watched: false }),
      c({ name: 'web', givenUp: true, attempts: 3 }),
    ] as never,
    Date.now(),
  );
  t.equal(
    text,
    '3 watched, 2 need attention:\n🟥 db: running/unhealthy, attempts 2/3\n🚨 web: running/healthy, attempts 3/3, given up\n✅ api: running/healthy',
  );
  t.match(statusReply([], 0), /No container is watched/);
  const big = statusReply(Array.from({ length: 400 }, (_, i) => c({ name: `container-${i}` })) as never, 0);
  t.ok(big.length <= 4096 && /… and \d+ more/.test(big), 'cut to one message');
  const inc = incidentsReply(
    [
      {
        id: 'abcdef0123',
        container: 'web',
        status: 'open',
        openedAt: '2026-12-04T05:06:07.000Z',
        alertname: 'ContainerUnhealthy',
        events: [
          { at: '', type: 'signal' },
          { at: '', type: 'action', action: 'restart', result: 'failed' },
        ],
      },
    ],
    '24h',
  );
  t.equal(
    inc,
    '1 incident(s) in the last 24h, newest first:\n🔴 web open since 05:06 UTC (ContainerUnhealthy): restart failed [abcdef01]',
  );
  t.equal(incidentsReply([], '1h'), 'No incident in the last 1h.');
});

t.test('MutedSink: a silenced container is held until its silence ends; recoveries pass', async (t) => {
  const got: Escalation[] = [];
  const logged: string[] = [];
  let now = 1_000;
  const sink = new MutedSink(
    { raise: (e) => got.push(e) },
    (c) => (c === 'web' ? { until: 5_000, by: 'telegram:1 Alice' } : undefined),
    () => now,
    { info: (_o, msg) => logged.push(msg) },
  );
  sink.raise(esc({ id: 'a' }));
  sink.raise(esc({ id: 'b', kind: 'recovered' }));
  sink.raise(esc({ id: 'c', container: 'db' }));
  sink.raise(esc({ id: 'd', container: undefined, kind: 'circuit_open' }));
  now = 5_000;
  sink.raise(esc({ id: 'e' }));
  t.same(
    got.map((e) => e.id),
    ['b', 'c', 'd', 'e'],
  );
  t.match(logged[0], /given_up of web held: silenced by telegram:1 Alice until/);
});
