// Chat controls, decided: what a Telegram update asks for (a command written in a chat, a tap on a button
// of an escalation message), whether its sender may ask it, and what to answer. Pure: the update is
// read, never trusted (every field is checked), and the result is an intent with a reason, never a
// bare boolean. The effects (the admin API call, the answer, the edit) are the caller's.
import type { MessageEntity, Update } from '@grammyjs/types';
import { parseDuration } from './duration.js';

/** The actions behind the buttons of an escalation message. */
export type ButtonName = 'retry' | 'pause' | 'reset' | 'silence' | 'ack';
/** The container actions "Retry now" may repeat. */
export type RetryAction = 'restart' | 'stop_start' | 'recreate';

export type ChatCommand =
  | { readonly name: 'help' }
  | { readonly name: 'status' }
  | { readonly name: 'incidents'; readonly since: string }
  | { readonly name: 'restart'; readonly target: string }
  | { readonly name: 'pause'; readonly target: string; readonly forMs: number; readonly duration: string }
  | { readonly name: 'resume'; readonly target: string }
  | { readonly name: 'reset'; readonly target: string };

export type ButtonPress =
  | { readonly name: 'retry'; readonly target: string; readonly action: RetryAction }
  | { readonly name: 'pause'; readonly target: string; readonly forMs: number }
  | { readonly name: 'reset'; readonly target: string }
  | { readonly name: 'silence'; readonly target: string; readonly forMs: number }
  | { readonly name: 'ack'; readonly target?: string | undefined };

/** Who wrote or tapped: the Telegram user id, and a printable name for audit lines and edits. */
export interface Actor {
  readonly id: number;
  /** "Alice (@alice)", printable ASCII and Unicode letters only, at most 64 characters. */
  readonly name: string;
}

/** Where to answer: the chat, and the forum topic the update came from. */
export interface ChatRef {
  readonly chatId: string;
  readonly threadId?: number | undefined;
}

/** The bot's message a button belongs to, as Telegram handed it back (to be edited). */
export interface TappedMessage {
  readonly messageId: number;
  readonly text: string;
  readonly entities: ReadonlyArray<MessageEntity>;
  readonly replyMarkup?: unknown;
}

/** An update that gets an answer and nothing else: from whom, where, what was asked, what to say. */
export interface AnswerOnly {
  readonly actor: Actor;
  readonly chat: ChatRef;
  readonly what: string;
  /** A tap: answered with an alert. */
  readonly callbackId?: string | undefined;
  /** A command: replied to. */
  readonly messageId?: number | undefined;
  readonly reply: string;
}

export type Interpretation =
  /** Nothing to do or answer (not for us, not a command, not from a configured chat). */
  | { readonly kind: 'ignore'; readonly reason: IgnoreReason; readonly detail: string }
  /** A sender not on the allow-list: a polite refusal, nothing else happens. */
  | (AnswerOnly & { readonly kind: 'refuse'; readonly reason: 'not_allowed' })
  /** From an allowed sender, but not understood (unknown command, missing argument, stale button). */
  | (AnswerOnly & { readonly kind: 'invalid' })
  | {
      readonly kind: 'command';
      readonly actor: Actor;
      readonly chat: ChatRef;
      readonly messageId: number;
      readonly command: ChatCommand;
    }
  | {
      readonly kind: 'button';
      readonly actor: Actor;
      readonly chat: ChatRef;
      readonly callbackId: string;
      readonly message: TappedMessage;
      readonly press: ButtonPress;
    };

export type IgnoreReason = 'unsupported_update' | 'other_chat' | 'not_a_command' | 'other_bot' | 'no_sender';

export interface ControlContext {
  /** The configured chats (TELEGRAM_CHAT_ID): updates from any other chat are ignored. */
  readonly chats: ReadonlyArray<{ readonly chatId: string }>;
  /** TELEGRAM_ALLOWED_USERS. */
  readonly allowedUsers: ReadonlySet<number>;
  /** The bot's own username (from getMe): `/status@other_bot` is for another bot. */
  readonly botUsername?: string | undefined;
}

/** How long the buttons pause and silence for. */
export const BUTTON_HOLD_MS = 3_600_000;
/** The longest pause a command may ask for (as the admin API allows). */
const MAX_PAUSE_MS = 366 * 86_400_000;
/** Telegram's limit on callback_data, in bytes. */
export const CALLBACK_DATA_LIMIT = 64;
/** The version prefix of our callback data: buttons of an older format are recognised as stale. */
const PREFIX = 'ah1';

const CODES: Record<string, { name: ButtonName; action?: RetryAction }> = {
  rr: { name: 'retry', action: 'restart' },
  rs: { name: 'retry', action: 'stop_start' },
  rc: { name: 'retry', action: 'recreate' },
  p: { name: 'pause' },
  x: { name: 'reset' },
  s: { name: 'silence' },
  a: { name: 'ack' },
};

/** A container name as Docker allows it; what a button or a command may name. */
const TARGET = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** What a command may name: a container, or a selector the admin API knows (service:…, stack:…). */
const SELECTOR = /^[a-zA-Z0-9][a-zA-Z0-9_.:/-]{0,254}$/;

/**
 * The callback data of a button; undefined when it would exceed Telegram's 64 bytes (a very long
 * container name), so the caller leaves that button out rather than sending a message Telegram refuses.
 */
export function callbackData(name: ButtonName, target?: string, action?: RetryAction): string | undefined {
  const code =
    name === 'retry'
      ? action === 'stop_start'
        ? 'rs'
        : action === 'recreate'
          ? 'rc'
          : 'rr'
      : { pause: 'p', reset: 'x', silence: 's', ack: 'a' }[name];
  if (target !== undefined && !TARGET.test(target)) return undefined;
  const data = `${PREFIX}:${code}:${target ?? ''}`;
  return Buffer.byteLength(data) <= CALLBACK_DATA_LIMIT ? data : undefined;
}

/** The button a callback data names, or why it names none. */
export function parseCallbackData(
  data: unknown,
): { ok: true; press: ButtonPress } | { ok: false; detail: string } {
  if (typeof data !== 'string' || data.length === 0)
    return { ok: false, detail: 'the button carries no data' };
  const [prefix, code = '', ...rest] = data.split(':');
  const target = rest.join(':');
  if (prefix !== PREFIX)
    return { ok: false, detail: 'this button belongs to an older version of the service' };
  const c = CODES[code];
  if (!c) return { ok: false, detail: `unknown button "${code.slice(0, 8)}"` };
  if (target !== '' && !TARGET.test(target))
    return { ok: false, detail: 'the button names no valid container' };
  if (c.name === 'ack') return { ok: true, press: { name: 'ack', target: target || undefined } };
  if (target === '') return { ok: false, detail: 'the button names no container' };
  switch (c.name) {
    case 'retry':
      return { ok: true, press: { name: 'retry', target, action: c.action ?? 'restart' } };
    case 'pause':
      return { ok: true, press: { name: 'pause', target, forMs: BUTTON_HOLD_MS } };
    case 'silence':
      return { ok: true, press: { name: 'silence', target, forMs: BUTTON_HOLD_MS } };
    default:
      return { ok: true, press: { name: 'reset', target } };
  }
}

export const HELP_TEXT = [
  'AutoHeal-Nexus commands:',
  '/status: the watched containers and their health',
  '/incidents [24h]: recent incidents, newest first',
  '/restart NAME: restart a container (through the policy, like the API)',
  '/pause NAME 1h: hold all healing of a container for a while',
  '/resume NAME: resume healing of a paused container',
  '/reset NAME: clear attempts and a given-up state',
  '/help: this list',
  'The buttons under an escalation do the same: Retry now, Pause 1 h, Reset, Silence 1 h, Acknowledge.',
].join('\n');

/** A printable name for a Telegram user: never control characters, never longer than 64 characters. */
export function actorName(from: {
  id: number;
  first_name?: unknown;
  last_name?: unknown;
  username?: unknown;
}): string {
  const clean = (v: unknown) =>
    typeof v === 'string'
      ? v
          .replace(/[^\p{L}\p{N}\p{Zs}._'-]/gu, '')
          .replace(/\s+/g, ' ')
          .trim()
      : '';
  const full = [clean(from.first_name), clean(from.last_name)].filter(Boolean).join(' ');
  const user = clean(from.username).replace(/[^A-Za-z0-9_]/g, '');
  const name = [full, user ? `(@${user})` : ''].filter(Boolean).join(' ') || `user ${from.id}`;
  return name.slice(0, 64);
}

/** The requester the admin API records for a Telegram user: `telegram:ID NAME`, printable ASCII. */
export function requesterFor(actor: Actor): string {
  const ascii = actor.name.replace(/[^\x20-\x7e]/g, '').trim();
  return `telegram:${actor.id}${ascii ? ` ${ascii}` : ''}`.slice(0, 128);
}

/** The polite refusal of a sender not on the allow-list: it names their id, so an operator can add it. */
function refusal(o: Omit<AnswerOnly, 'reply'>): Interpretation {
  return {
    kind: 'refuse',
    reason: 'not_allowed',
    ...o,
    reply:
      `Sorry, you may not control AutoHeal-Nexus from this chat (your Telegram user id is ${o.actor.id}). ` +
      'An operator can add it to TELEGRAM_ALLOWED_USERS.',
  };
}

/** What an update asks for, whether its sender may ask it, and what to answer. */
export function interpret(update: Update, ctx: ControlContext): Interpretation {
  const cq = update.callback_query;
  if (cq) {
    const from = cq.from;
    if (!from || !Number.isSafeInteger(from.id))
      return { kind: 'ignore', reason: 'no_sender', detail: 'a tap without a sender' };
    const actor: Actor = { id: from.id, name: actorName(from) };
    const msg = cq.message;
    const chatId = msg?.chat?.id;
    if (!msg || chatId === undefined || !isConfigured(String(chatId), ctx)) {
      return {
        kind: 'ignore',
        reason: 'other_chat',
        detail: `a tap in chat ${chatId ?? '(inline)'}, which is not in TELEGRAM_CHAT_ID`,
      };
    }
    const chat: ChatRef = { chatId: String(chatId), threadId: threadOf(msg) };
    const pressed = parseCallbackData(cq.data);
    const what = pressed.ok ? describePress(pressed.press) : 'a button';
    if (!ctx.allowedUsers.has(from.id)) {
      return refusal({ actor, chat, what, callbackId: cq.id });
    }
    if (!pressed.ok) return { kind: 'invalid', actor, chat, what, callbackId: cq.id, reply: pressed.detail };
    const text = 'text' in msg && typeof msg.text === 'string' ? msg.text : '';
    const entities = 'entities' in msg && Array.isArray(msg.entities) ? msg.entities : [];
    return {
      kind: 'button',
      actor,
      chat,
      callbackId: cq.id,
      press: pressed.press,
      message: {
        messageId: msg.message_id,
        text,
        entities,
        replyMarkup: 'reply_markup' in msg ? msg.reply_markup : undefined,
      },
    };
  }
  const msg = update.message;
  if (!msg) return { kind: 'ignore', reason: 'unsupported_update', detail: 'neither a message nor a tap' };
  if (!isConfigured(String(msg.chat.id), ctx)) {
    return {
      kind: 'ignore',
      reason: 'other_chat',
      detail: `a message in chat ${msg.chat.id}, which is not in TELEGRAM_CHAT_ID`,
    };
  }
  const text = typeof msg.text === 'string' ? msg.text.trim() : '';
  const m = /^\/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{1,64}))?(?:\s+([\s\S]*))?$/.exec(text);
  if (!m) return { kind: 'ignore', reason: 'not_a_command', detail: 'not a command' };
  const [, rawName = '', bot, rest = ''] = m;
  if (bot && ctx.botUsername && bot.toLowerCase() !== ctx.botUsername.toLowerCase()) {
    return { kind: 'ignore', reason: 'other_bot', detail: `a command for @${bot}` };
  }
  const from = msg.from;
  if (!from || !Number.isSafeInteger(from.id))
    return { kind: 'ignore', reason: 'no_sender', detail: 'a command without a sender (a channel post)' };
  const actor: Actor = { id: from.id, name: actorName(from) };
  const chat: ChatRef = { chatId: String(msg.chat.id), threadId: threadOf(msg) };
  const name = rawName.toLowerCase();
  const what = `/${name}`;
  if (!ctx.allowedUsers.has(from.id)) {
    return refusal({ actor, chat, what, messageId: msg.message_id });
  }
  const parsed = parseCommand(name, rest.trim().split(/\s+/).filter(Boolean));
  if (!parsed.ok)
    return { kind: 'invalid', actor, chat, what, messageId: msg.message_id, reply: parsed.reply };
  return { kind: 'command', actor, chat, messageId: msg.message_id, command: parsed.command };
}

function parseCommand(
  name: string,
  args: ReadonlyArray<string>,
): { ok: true; command: ChatCommand } | { ok: false; reply: string } {
  const usage = (u: string) => ({ ok: false as const, reply: `Usage: ${u}` });
  const target = (u: string): string | { ok: false; reply: string } => {
    const t = args[0];
    if (t === undefined) return usage(u);
    if (!SELECTOR.test(t)) return { ok: false, reply: `"${t.slice(0, 64)}" is not a container name` };
    return t;
  };
  switch (name) {
    case 'help':
    case 'start':
      return { ok: true, command: { name: 'help' } };
    case 'status':
      return { ok: true, command: { name: 'status' } };
    case 'incidents': {
      const since = args[0] ?? '24h';
      const ms = parseDuration(since);
      if (ms === undefined || ms <= 0) return usage('/incidents [24h | 7d | …]');
      return { ok: true, command: { name: 'incidents', since } };
    }
    case 'restart':
    case 'resume':
    case 'reset': {
      const t = target(`/${name} NAME`);
      if (typeof t !== 'string') return t;
      return { ok: true, command: { name, target: t } };
    }
    case 'pause': {
      const t = target('/pause NAME 1h');
      if (typeof t !== 'string') return t;
      const duration = args[1] ?? '1h';
      const ms = parseDuration(duration);
      if (ms === undefined || ms <= 0 || ms > MAX_PAUSE_MS)
        return {
          ok: false,
          reply: `"${duration.slice(0, 32)}" is not a duration: use 30m, 1h, 2d, … (at most 366d)`,
        };
      return { ok: true, command: { name: 'pause', target: t, forMs: ms, duration } };
    }
    default:
      return { ok: false, reply: `Unknown command /${name.slice(0, 32)}. ${HELP_TEXT}` };
  }
}

function isConfigured(chatId: string, ctx: ControlContext): boolean {
  return ctx.chats.some((c) => c.chatId === chatId);
}

function threadOf(msg: unknown): number | undefined {
  const m = msg as { message_thread_id?: unknown; is_topic_message?: unknown };
  return typeof m.message_thread_id === 'number' && m.is_topic_message !== false
    ? m.message_thread_id
    : undefined;
}

/** A press in words, for audit lines and answers: "Retry now (restart) of web". */
export function describePress(p: ButtonPress): string {
  switch (p.name) {
    case 'retry':
      return `Retry now (${p.action}) of ${p.target}`;
    case 'pause':
      return `Pause 1 h of ${p.target}`;
    case 'reset':
      return `Reset of ${p.target}`;
    case 'silence':
      return `Silence 1 h of ${p.target}`;
    default:
      return p.target ? `Acknowledge of ${p.target}` : 'Acknowledge';
  }
}

/** A command in words: "/pause web 2h". */
export function describeCommand(c: ChatCommand): string {
  switch (c.name) {
    case 'pause':
      return `/pause ${c.target} ${c.duration}`;
    case 'restart':
    case 'resume':
    case 'reset':
      return `/${c.name} ${c.target}`;
    case 'incidents':
      return `/incidents ${c.since}`;
    default:
      return `/${c.name}`;
  }
}

/** The most history lines an edited message keeps; older ones are summarised in one line. */
const HISTORY_LINES = 6;
const HISTORY_MARK = '\u25b8 ';

/**
 * The text of a tapped message after an action: the original (its entities untouched, since lines are
 * only appended) with one line per action taken from it, at most HISTORY_LINES of them and within
 * Telegram's 4,096 characters.
 */
export function appendHistory(
  message: { text: string; entities: ReadonlyArray<MessageEntity> },
  line: string,
  limit = 4096,
): { text: string; entities: MessageEntity[] } {
  const [body = '', ...history] = message.text.split(`\n\n${HISTORY_MARK}`);
  // An earlier cut left "(N earlier)" as the first history line: the count goes on from it.
  const summary = /^\((\d+) earlier\)$/.exec(history[0] ?? '');
  const earlier = summary ? Number(summary[1]) : 0;
  if (summary) history.shift();
  const lines = [...history, line.replace(/\s+/g, ' ').trim()];
  let kept = lines;
  if (earlier > 0 || lines.length > HISTORY_LINES) {
    const drop = Math.max(0, lines.length - (HISTORY_LINES - 1));
    kept = [`(${earlier + drop} earlier)`, ...lines.slice(drop)];
  }
  let suffix = kept.map((l) => `\n\n${HISTORY_MARK}${l}`).join('');
  let text = body + suffix;
  let base = body;
  if (text.length > limit) {
    // The history wins over the end of the original text: it says what was done.
    suffix = suffix.slice(0, limit - 1);
    base = body.slice(0, Math.max(0, limit - suffix.length - 1));
    text = `${base}…${suffix}`.slice(0, limit);
  }
  const entities = message.entities
    .filter((e) => e.offset + e.length <= base.length)
    .map((e) => ({ ...e }) as MessageEntity);
  return { text, entities };
}
