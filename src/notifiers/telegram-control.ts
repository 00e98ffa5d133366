// Telegram controls, carried out: a tap on a button of an escalation message or a command in a
// configured chat becomes a call of the admin API (the same routes, validation, scope, protection and
// policy as curl and the CLI; the caller recorded as `telegram:USER_ID NAME`), then an answer in the
// chat: the tap is answered at once (answerCallbackQuery), the message is edited to say who did what
// and when, and a remediation is followed until it is verified, when the message is edited again.
//
// What a previous life left is handled again after a restart (inputs/telegram-updates.ts): every call
// here is safe to repeat. A remediation carries the update's Idempotency-Key, so the admin API answers a
// repeat with the remediation it already started; a pause ends when the first one would have.
import type { MessageEntity, Update } from '@grammyjs/types';
import type { Logger } from 'pino';
import type { ContainerStatus, IncidentOut, Remediation } from '../http/admin-schemas.js';
import {
  type Actor,
  appendHistory,
  type ButtonPress,
  type ChatCommand,
  type ChatRef,
  type ControlContext,
  describeCommand,
  describePress,
  HELP_TEXT,
  interpret,
  requesterFor,
  type TappedMessage,
} from '../core/chat-control.js';
import type { Clock } from '../core/clock.js';
import type { Metrics } from '../metrics.js';
import type { BotApi } from '../inputs/telegram-updates.js';
import { incidentsReply, statusReply } from './telegram-replies.js';

/** One admin API call, made in-process with the admin token (app.inject). */
export type AdminCall = (req: {
  method: 'GET' | 'POST' | 'DELETE';
  url: string;
  body?: Record<string, unknown>;
  headers?: Record<string, string>;
}) => Promise<{ status: number; body: unknown }>;

export interface TelegramControlDeps {
  readonly api: BotApi & { scrub(text: string): string };
  readonly admin: AdminCall;
  readonly log: Logger;
  readonly metrics: Pick<Metrics, 'chatUpdates'>;
  readonly clock: Clock;
  readonly chats: ControlContext['chats'];
  readonly allowedUsers: ReadonlySet<number>;
  /** Holds the escalation messages about a container until a time ("Silence 1 h"). */
  readonly mute: (target: string, until: number, by: string) => void;
  /** With ALERTMANAGER_URL: an Alertmanager silence on the container's alerts; resolves to its id. */
  readonly silence?: ((target: string, until: number, by: string) => Promise<string>) | undefined;
  /** How long a remediation is followed for its result (ms). */
  readonly followMs?: number;
  /** How often a followed remediation is looked at (ms). */
  readonly followEveryMs?: number;
}

/** What carrying out a press or a command came to: the line added to the message, and what to follow. */
interface Outcome {
  readonly ok: boolean;
  readonly line: string;
  readonly remediationId?: string | undefined;
  readonly status?: number;
}

const time = (ms: number) => `${new Date(ms).toISOString().slice(11, 19)} UTC`;
const pathName = (s: string) => encodeURIComponent(s);

export class TelegramControl {
  private botUsername: string | undefined;
  private readonly follows = new Set<AbortController>();
  private stopped = false;

  constructor(private readonly d: TelegramControlDeps) {}

  /** Learns the bot's username, so `/status@another_bot` is left to that bot. Never throws. */
  async start(): Promise<void> {
    const me = await this.d.api.call<{ username?: string }>('getMe', {});
    if (me.ok && typeof me.result?.username === 'string') this.botUsername = me.result.username;
    else if (!me.ok)
      this.d.log.warn(
        { event: 'telegram_getme_failed', reason: me.reason },
        'Telegram getMe failed; commands for any bot name are taken',
      );
  }

  /** Stops following remediations. */
  stop(): void {
    this.stopped = true;
    for (const a of this.follows) a.abort();
  }

  /** Handles one update; never throws. */
  async handle(update: Update, receivedAt: number): Promise<void> {
    const it = interpret(update, {
      chats: this.d.chats,
      allowedUsers: this.d.allowedUsers,
      botUsername: this.botUsername,
    });
    const { log, metrics } = this.d;
    const updateId = update.update_id;
    switch (it.kind) {
      case 'ignore':
        metrics.chatUpdates.inc({ kind: 'update', result: 'ignored' });
        log.debug(
          { event: 'telegram_ignored', updateId, reason: it.reason },
          `Telegram update ignored: ${it.detail}`,
        );
        return;
      case 'refuse':
      case 'invalid': {
        const refused = it.kind === 'refuse';
        metrics.chatUpdates.inc({
          kind: it.callbackId ? 'button' : 'command',
          result: refused ? 'refused' : 'invalid',
        });
        // A refusal is an audit line: who tried what, from where.
        log[refused ? 'warn' : 'info'](
          {
            event: refused ? 'telegram_refused' : 'telegram_invalid',
            updateId,
            userId: it.actor.id,
            user: it.actor.name,
            chat: it.chat.chatId,
            what: it.what,
            ...(refused ? { reason: it.reason } : {}),
          },
          refused
            ? `Telegram: ${it.what} refused for user ${it.actor.id} (${it.actor.name}): not in TELEGRAM_ALLOWED_USERS`
            : `Telegram: ${it.what} from ${it.actor.name} not understood`,
        );
        if (it.callbackId) await this.answer(it.callbackId, it.reply, true, receivedAt);
        else await this.reply(it.chat, it.reply, it.messageId);
        return;
      }
      case 'button':
        return this.onButton(updateId, receivedAt, it.actor, it.chat, it.callbackId, it.message, it.press);
      case 'command':
        return this.onCommand(updateId, receivedAt, it.actor, it.chat, it.messageId, it.command);
    }
  }

  // Buttons --------------------------------------------------------------------------------------

  private async onButton(
    updateId: number,
    receivedAt: number,
    actor: Actor,
    chat: ChatRef,
    callbackId: string,
    message: TappedMessage,
    press: ButtonPress,
  ): Promise<void> {
    const what = describePress(press);
    // Answered before the action: Telegram shows a spinner on the button until it is answered.
    await this.answer(callbackId, `${what}: on it`, false, receivedAt);
    const outcome = await this.carryOut(press, actor, updateId, receivedAt);
    this.audit('button', updateId, actor, chat, what, outcome);
    const shown = await this.edit(chat, message, `${outcome.line} (${actor.name}, ${time(receivedAt)})`);
    if (outcome.remediationId) this.follow(outcome.remediationId, (line) => this.edit(chat, shown, line));
  }

  private async carryOut(
    press: ButtonPress,
    actor: Actor,
    updateId: number,
    receivedAt: number,
  ): Promise<Outcome> {
    const by = requesterFor(actor);
    switch (press.name) {
      case 'retry':
        return this.remediate(press.target, press.action, true, 'Retry now, from Telegram', by, updateId);
      case 'pause':
        return this.pause(press.target, receivedAt + press.forMs, 'Pause 1 h, from Telegram', by);
      case 'reset':
        return this.reset(press.target, 'Reset, from Telegram', by);
      case 'silence':
        return this.silence(press.target, receivedAt + press.forMs, by);
      default:
        return { ok: true, line: `✔️ Acknowledged${press.target ? ` ${press.target}` : ''}` };
    }
  }

  // Commands -------------------------------------------------------------------------------------

  private async onCommand(
    updateId: number,
    receivedAt: number,
    actor: Actor,
    chat: ChatRef,
    messageId: number,
    command: ChatCommand,
  ): Promise<void> {
    const by = requesterFor(actor);
    const what = describeCommand(command);
    let outcome: Outcome;
    switch (command.name) {
      case 'help':
        outcome = { ok: true, line: HELP_TEXT };
        break;
      case 'status': {
        const r = await this.d.admin({ method: 'GET', url: '/api/v1/containers' });
        outcome =
          r.status === 200
            ? {
                ok: true,
                line: statusReply(
                  (r.body as { containers: ContainerStatus[] }).containers,
                  this.d.clock.now(),
                ),
              }
            : this.refused('/status', r);
        break;
      }
      case 'incidents': {
        const r = await this.d.admin({
          method: 'GET',
          url: `/api/v1/incidents?since=${encodeURIComponent(command.since)}&limit=20`,
        });
        outcome =
          r.status === 200
            ? {
                ok: true,
                line: incidentsReply((r.body as { incidents: IncidentOut[] }).incidents, command.since),
              }
            : this.refused('/incidents', r);
        break;
      }
      case 'restart':
        outcome = await this.remediate(command.target, 'restart', false, 'from Telegram', by, updateId);
        break;
      case 'pause':
        outcome = await this.pause(command.target, receivedAt + command.forMs, 'from Telegram', by);
        break;
      case 'resume':
        outcome = await this.resume(command.target, by);
        break;
      case 'reset':
        outcome = await this.reset(command.target, 'from Telegram', by);
        break;
    }
    this.audit('command', updateId, actor, chat, what, outcome);
    const sent = await this.reply(chat, outcome.line, messageId);
    if (outcome.remediationId && sent) {
      this.follow(outcome.remediationId, (line) => this.edit(chat, sent, line));
    }
  }

  // Admin API calls ------------------------------------------------------------------------------

  private async remediate(
    target: string,
    action: string,
    force: boolean,
    reason: string,
    requestedBy: string,
    updateId: number,
  ): Promise<Outcome> {
    const r = await this.d.admin({
      method: 'POST',
      url: '/api/v1/remediations',
      body: { target, action, force, reason, requestedBy },
      // A repeat of this update (after a crash) gets the remediation the first one started.
      headers: { 'idempotency-key': `telegram-update-${updateId}` },
    });
    if (r.status !== 202) return this.refused(`${action} of ${target}`, r);
    const id = (r.body as { id: string }).id;
    return {
      ok: true,
      line: `🔁 ${action} of ${target} requested: remediation ${id.slice(0, 8)}`,
      remediationId: id,
      status: 202,
    };
  }

  private async pause(target: string, until: number, reason: string, requestedBy: string): Promise<Outcome> {
    const left = Math.ceil((until - this.d.clock.now()) / 1000);
    if (left <= 0)
      return { ok: false, line: `⏸ Pause of ${target} not applied: it would already have ended` };
    const r = await this.d.admin({
      method: 'POST',
      url: `/api/v1/containers/${pathName(target)}/pause`,
      body: { for: `${left}s`, reason, requestedBy },
    });
    if (r.status !== 200) return this.refused(`pause of ${target}`, r);
    const b = r.body as { container: string; pausedUntil: string };
    return {
      ok: true,
      line: `⏸ ${b.container} paused until ${b.pausedUntil.slice(11, 16)} UTC`,
      status: 200,
    };
  }

  private async resume(target: string, requestedBy: string): Promise<Outcome> {
    const r = await this.d.admin({
      method: 'DELETE',
      url: `/api/v1/containers/${pathName(target)}/pause`,
      headers: { 'x-requested-by': requestedBy },
    });
    if (r.status !== 200) return this.refused(`resume of ${target}`, r);
    const b = r.body as { container: string; pausedUntil: string | null; detail?: string };
    return {
      ok: true,
      line: b.pausedUntil
        ? `▶️ ${b.container}: ${b.detail ?? `still paused until ${b.pausedUntil}`}`
        : `▶️ ${b.container} resumed`,
      status: 200,
    };
  }

  private async reset(target: string, reason: string, requestedBy: string): Promise<Outcome> {
    const r = await this.d.admin({
      method: 'POST',
      url: `/api/v1/containers/${pathName(target)}/reset`,
      body: { reason, requestedBy },
    });
    if (r.status !== 200) return this.refused(`reset of ${target}`, r);
    const b = r.body as { container: string };
    return { ok: true, line: `♻️ ${b.container} reset: attempts cleared`, status: 200 };
  }

  private async silence(target: string, until: number, by: string): Promise<Outcome> {
    try {
      this.d.mute(target, until, by);
    } catch (err) {
      this.d.log.error({ err, target }, 'cannot record a Telegram silence');
      return { ok: false, line: `🔕 Silence of ${target} failed: the state cannot be written` };
    }
    let am = '';
    if (this.d.silence) {
      try {
        const id = await this.d.silence(target, until, by);
        am = `; Alertmanager silence ${id.slice(0, 8)}`;
      } catch (err) {
        am = `; Alertmanager silence failed: ${this.d.api.scrub((err as Error).message)}`;
      }
    }
    return { ok: true, line: `🔕 ${target} silenced until ${time(until).slice(0, 5)} UTC${am}` };
  }

  private refused(what: string, r: { status: number; body: unknown }): Outcome {
    const b = r.body as { message?: unknown; error?: unknown } | undefined;
    const why = typeof b?.message === 'string' ? b.message : `HTTP ${r.status}`;
    return { ok: false, line: `❌ ${what} not done: ${why}`, status: r.status };
  }

  // Following a remediation ----------------------------------------------------------------------

  /** Looks at a remediation until it is done, then reports its result; not durable, never throws. */
  private follow(id: string, report: (line: string) => Promise<unknown>): void {
    if (this.stopped) return;
    const abort = new AbortController();
    this.follows.add(abort);
    const every = this.d.followEveryMs ?? 500;
    const deadline = this.d.clock.now() + (this.d.followMs ?? 600_000);
    void (async () => {
      try {
        while (!abort.signal.aborted && this.d.clock.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, every).unref());
          if (abort.signal.aborted) return;
          const r = await this.d.admin({ method: 'GET', url: `/api/v1/remediations/${pathName(id)}` });
          if (r.status !== 200) continue;
          const rem = r.body as Remediation;
          if (!rem.done) continue;
          await report(resultLine(rem));
          return;
        }
      } catch (err) {
        this.d.log.warn({ err, remediationId: id }, 'cannot follow a remediation for Telegram');
      } finally {
        this.follows.delete(abort);
      }
    })();
  }

  // Telegram calls -------------------------------------------------------------------------------

  private audit(
    kind: 'button' | 'command',
    updateId: number,
    actor: Actor,
    chat: ChatRef,
    what: string,
    o: Outcome,
  ): void {
    this.d.metrics.chatUpdates.inc({ kind, result: o.ok ? 'accepted' : 'failed' });
    this.d.log.info(
      {
        event: 'telegram_action',
        updateId,
        userId: actor.id,
        user: actor.name,
        chat: chat.chatId,
        what,
        result: o.ok ? 'done' : 'not_done',
        status: o.status,
        remediationId: o.remediationId,
      },
      `Telegram: ${what} by ${actor.name} (${actor.id}): ${o.line.split('\n')[0]}`,
    );
  }

  /** Answers a tap; a tap older than Telegram keeps it open for (after a restart) is not answered. */
  private async answer(callbackId: string, text: string, alert: boolean, receivedAt: number): Promise<void> {
    if (this.d.clock.now() - receivedAt > 60_000) return;
    const r = await this.d.api.call(
      'answerCallbackQuery',
      { callback_query_id: callbackId, text: this.d.api.scrub(text).slice(0, 200), show_alert: alert },
      { timeoutMs: 2_000 },
    );
    if (!r.ok)
      this.d.log.info(
        { event: 'telegram_answer_failed', reason: r.reason },
        'Telegram: a tap could not be answered',
      );
  }

  /** A plain-text reply in the chat (and topic) the command came from; resolves to the message sent. */
  private async reply(chat: ChatRef, text: string, replyTo?: number): Promise<TappedMessage | undefined> {
    const clean = this.d.api.scrub(text).slice(0, 4096);
    const r = await this.d.api.call<{ message_id: number }>('sendMessage', {
      chat_id: chatIdOf(chat.chatId),
      text: clean,
      ...(chat.threadId !== undefined ? { message_thread_id: chat.threadId } : {}),
      ...(replyTo !== undefined
        ? { reply_parameters: { message_id: replyTo, allow_sending_without_reply: true } }
        : {}),
      link_preview_options: { is_disabled: true },
    });
    if (!r.ok) {
      this.d.log.warn(
        { event: 'telegram_reply_failed', chat: chat.chatId, reason: r.reason },
        'Telegram: a reply could not be sent',
      );
      return undefined;
    }
    return { messageId: r.result.message_id, text: clean, entities: [] };
  }

  /** Adds a line to a message the bot sent, keeping its text, entities and buttons; returns it as now shown. */
  private async edit(chat: ChatRef, message: TappedMessage, line: string): Promise<TappedMessage> {
    const next = appendHistory(
      { text: message.text, entities: message.entities as MessageEntity[] },
      this.d.api.scrub(line),
    );
    const r = await this.d.api.call('editMessageText', {
      chat_id: chatIdOf(chat.chatId),
      message_id: message.messageId,
      text: next.text,
      entities: next.entities,
      ...(message.replyMarkup ? { reply_markup: message.replyMarkup } : {}),
      link_preview_options: { is_disabled: true },
    });
    if (!r.ok) {
      this.d.log.warn(
        { event: 'telegram_edit_failed', chat: chat.chatId, reason: r.reason },
        'Telegram: a message could not be edited',
      );
      return message;
    }
    return { ...message, text: next.text, entities: next.entities };
  }
}

function chatIdOf(id: string): number | string {
  return /^-?[0-9]+$/.test(id) && Number.isSafeInteger(Number(id)) ? Number(id) : id;
}

/** A finished remediation in one line: its result, and the verification or the reason it was skipped. */
export function resultLine(r: Remediation): string {
  const icon = r.state === 'succeeded' ? '✅' : r.state === 'skipped' || r.state === 'dry_run' ? '⏭' : '❌';
  const why =
    r.state === 'skipped'
      ? [r.skipReason, r.detail].filter(Boolean).join(': ')
      : (r.detail ?? r.verification ?? '');
  const detail = why === r.state ? '' : why;
  return `${icon} ${r.action} of ${r.target} ${r.state}${detail ? `: ${detail.slice(0, 300)}` : ''}`;
}
