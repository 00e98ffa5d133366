// The buttons under an escalation message (Telegram, with TELEGRAM_ALLOWED_USERS set): Retry now,
// Pause 1 h, Reset, Silence 1 h, Acknowledge. Pure. A button names its container in its callback data
// (core/chat-control.ts), so a tap needs no state kept for it; a name too long for Telegram's 64 bytes
// leaves that container's buttons out, and Acknowledge stays.
import type { InlineKeyboardButton, InlineKeyboardMarkup } from '@grammyjs/types';
import { type ButtonName, callbackData, type RetryAction } from '../core/chat-control.js';
import type { EscalationKind } from '../core/escalation.js';
import type { Escalation } from './escalation.js';

/** Kinds that ask a human to act on one container: they get the full set of buttons. */
const ACTIONABLE: ReadonlySet<EscalationKind> = new Set([
  'given_up',
  'verification_failed',
  'flapping',
  'crash_loop',
  'alert',
]);
/** Good news, and lists with nothing to act on: no buttons. */
const NONE: ReadonlySet<EscalationKind> = new Set(['recovered', 'updates_available']);
/** A digest shows buttons for at most this many containers (a message is not a control panel). */
const DIGEST_ROWS = 5;

const LABELS: Record<ButtonName, string> = {
  retry: '🔁 Retry now',
  pause: '⏸ Pause 1 h',
  reset: '♻️ Reset',
  silence: '🔕 Silence 1 h',
  ack: '✔️ Acknowledge',
};

const button = (text: string, data: string | undefined): InlineKeyboardButton[] =>
  data === undefined ? [] : [{ text, callback_data: data }];

/** The action Retry now repeats: the container action last tried, restart by default. */
function retryAction(e: Escalation): RetryAction {
  for (let i = e.attempts.length - 1; i >= 0; i--) {
    const a = e.attempts[i]?.action;
    if (a === 'restart' || a === 'stop_start' || a === 'recreate') return a;
  }
  return 'restart';
}

/** The keyboard of a message made from these escalations; undefined for none. */
export function keyboardFor(group: ReadonlyArray<Escalation>): InlineKeyboardMarkup | undefined {
  const asking = group.filter((e) => !NONE.has(e.kind));
  if (asking.length === 0) return undefined;
  if (group.length === 1) {
    const e = asking[0] as Escalation;
    const c = e.container;
    if (!c || !ACTIONABLE.has(e.kind)) return { inline_keyboard: [button(LABELS.ack, callbackData('ack'))] };
    const rows = [
      [
        ...button(LABELS.retry, callbackData('retry', c, retryAction(e))),
        ...button(LABELS.pause, callbackData('pause', c)),
      ],
      [
        ...button(LABELS.reset, callbackData('reset', c)),
        ...button(LABELS.silence, callbackData('silence', c)),
        ...button(LABELS.ack, callbackData('ack', c) ?? callbackData('ack')),
      ],
    ].filter((r) => r.length > 0);
    return { inline_keyboard: rows };
  }
  // A digest: one row per container that asks for action, then one Acknowledge for the message.
  const seen = new Set<string>();
  const rows: InlineKeyboardButton[][] = [];
  for (const e of asking) {
    const c = e.container;
    if (!c || !ACTIONABLE.has(e.kind) || seen.has(c)) continue;
    seen.add(c);
    if (rows.length >= DIGEST_ROWS) break;
    const row = [
      ...button(`🔁 ${shortName(c)}`, callbackData('retry', c, retryAction(e))),
      ...button('⏸ 1 h', callbackData('pause', c)),
      ...button('♻️', callbackData('reset', c)),
    ];
    if (row.length > 0) rows.push(row);
  }
  rows.push(button(LABELS.ack, callbackData('ack')));
  return { inline_keyboard: rows };
}

/** A container name short enough for a button's face. */
function shortName(name: string): string {
  return name.length <= 24 ? name : `${name.slice(0, 23)}…`;
}
