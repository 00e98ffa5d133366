// The Telegram Bot API as a sender: one sendMessage call, classified into what the outbox should do
// next (done, retry later, give up). It owns the HTTP client (undici, injectable dispatcher, a timeout on
// every call) and keeps the bot token out of every string it returns: the token is part of the URL,
// and undici's errors and some proxies' error pages quote the URL. No configured secret leaves in a
// message either: the text is scrubbed once more right before it is sent.
import type { InlineKeyboardMarkup } from '@grammyjs/types';
import { Agent, type Dispatcher, request } from 'undici';
import { CENSOR, createScrubber } from '../logger.js';

export interface TelegramMessage {
  readonly chatId: string;
  readonly topicId?: number | undefined;
  readonly text: string;
  /** false sends the text without parse_mode (the fallback when Telegram refuses our markup). */
  readonly html: boolean;
  readonly silent?: boolean | undefined;
  /** Buttons under the message (Telegram only; other channels send the text alone). */
  readonly replyMarkup?: InlineKeyboardMarkup | undefined;
}

/** The answer to one Bot API call other than sendMessage (getUpdates, editMessageText, …). */
export type BotCall<T> =
  | { readonly ok: true; readonly result: T }
  | {
      readonly ok: false;
      /** HTTP status; absent for a network error or a timeout. */
      readonly status?: number;
      readonly reason: string;
      /** A 429's retry_after. */
      readonly retryAfterMs?: number;
    };

export type SendOutcome =
  | { readonly result: 'sent'; readonly status: number }
  /** Worth another try: network error, timeout, 5xx, 429 (with the wait it names), 401/404. */
  | {
      readonly result: 'retry';
      readonly reason: string;
      readonly status?: number;
      readonly retryAfterMs?: number;
      /**
       * The request may have reached Telegram and been delivered: it failed after the connection was
       * made (a timeout waiting for the answer, a connection closed before the answer, an abort).
       * Telegram's sendMessage has no idempotency key, so only a resend can make sure it arrives.
       */
      readonly maybeDelivered?: boolean;
    }
  /** Will never work as it is: bad chat, bot blocked or removed, message refused. */
  | {
      readonly result: 'failed';
      readonly reason: string;
      readonly status: number;
      /** Telegram could not parse the entities: the same text as plain text may still go through. */
      readonly badMarkup?: boolean;
      /** The group became a supergroup with this id. */
      readonly migrateTo?: string;
    };

export interface TelegramNotifierOptions {
  readonly token: string;
  /** Bot API base URL, without a trailing slash (a self-hosted Bot API server works the same way). */
  readonly apiUrl: string;
  /** Tests inject their own; by default an Agent with connect, header and body timeouts. */
  readonly dispatcher?: Dispatcher | undefined;
  /** Upper bound of one call, connect to last byte (ms). */
  readonly timeoutMs?: number | undefined;
  /** Every other configured secret (the webhook and admin tokens, ...): kept out of messages and logs. */
  readonly secrets?: ReadonlyArray<string | undefined> | undefined;
}

/** Errors that mean the request never left: no connection was made, so nothing can have arrived. */
const NEVER_SENT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_INVALID_ARG',
]);

export function neverSent(err: Error & { code?: string; cause?: unknown }): boolean {
  const code = err.code ?? (err.cause as { code?: string } | undefined)?.code;
  if (!code) return false;
  // A failed TLS handshake also comes before the request.
  return NEVER_SENT.has(code) || /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_)/.test(code);
}

interface BotApiReply {
  ok?: boolean;
  error_code?: number;
  description?: string;
  parameters?: { retry_after?: number; migrate_to_chat_id?: number };
}

export class TelegramNotifier {
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly timeoutMs: number;
  private readonly scrubLog: (text: string) => string;
  private readonly scrubHtml: (text: string) => string;

  constructor(private readonly o: TelegramNotifierOptions) {
    this.timeoutMs = o.timeoutMs ?? 10_000;
    this.ownsDispatcher = o.dispatcher === undefined;
    this.dispatcher =
      o.dispatcher ??
      new Agent({
        connect: { timeout: Math.min(5_000, this.timeoutMs) },
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        keepAliveTimeout: 30_000,
      });
    // Every form of the token (plain, percent-encoded as some errors print URLs, its secret half) and
    // of the other secrets; in HTML the mask must itself be valid HTML.
    const secrets = [o.token, ...(o.secrets ?? [])];
    this.scrubLog = createScrubber(secrets);
    this.scrubHtml = createScrubber(secrets, CENSOR.replace('<', '&lt;').replace('>', '&gt;'));
  }

  /** Masks every secret in any text that may reach a log line, an error, the outbox or a message. */
  scrub(text: string): string {
    return this.scrubLog(text);
  }

  /** Sends one message. Never throws and never rejects: every failure becomes an outcome. */
  async send(m: TelegramMessage, signal?: AbortSignal): Promise<SendOutcome> {
    const body: Record<string, unknown> = {
      chat_id:
        /^-?[0-9]+$/.test(m.chatId) && Number.isSafeInteger(Number(m.chatId)) ? Number(m.chatId) : m.chatId,
      // The outbox scrubbed what it was handed; this is the last line of defence.
      text: m.html ? this.scrubHtml(m.text) : this.scrubLog(m.text),
      // Links to Alertmanager and Prometheus would otherwise add a large, useless preview card.
      link_preview_options: { is_disabled: true },
    };
    if (m.html) body.parse_mode = 'HTML';
    if (m.topicId !== undefined) body.message_thread_id = m.topicId;
    if (m.silent) body.disable_notification = true;
    if (m.replyMarkup) body.reply_markup = m.replyMarkup;
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const abort = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let status: number;
    let text: string;
    try {
      const res = await request(`${this.o.apiUrl}/bot${this.o.token}/sendMessage`, {
        method: 'POST',
        dispatcher: this.dispatcher,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: abort,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      const e = err as Error & { code?: string };
      const what = timeout.aborted ? `timed out after ${this.timeoutMs} ms` : e.message;
      return {
        result: 'retry',
        reason: this.scrub(`network error: ${e.code ? `${e.code} ` : ''}${what}`),
        ...(neverSent(e) ? {} : { maybeDelivered: true }),
      };
    }
    let reply: BotApiReply = {};
    try {
      reply = JSON.parse(text) as BotApiReply;
    } catch {
      // A proxy's error page, for instance: the status code alone decides.
    }
    const description = this.scrub(
      (reply.description ?? text.slice(0, 200).replace(/\s+/g, ' ').trim()) || `HTTP ${status}`,
    );
    if (status >= 200 && status < 300 && reply.ok !== false) return { result: 'sent', status };
    if (status === 429) {
      const seconds = reply.parameters?.retry_after;
      const retryAfterMs = typeof seconds === 'number' && seconds >= 0 ? seconds * 1000 : 1000;
      return { result: 'retry', status, reason: description, retryAfterMs };
    }
    if (status >= 500) return { result: 'retry', status, reason: description };
    // 401: the token is refused; 404: the URL is wrong. Both are configuration errors that a restart
    // with a fixed setting cures, so the message waits for it rather than being thrown away.
    if (status === 401 || status === 404) return { result: 'retry', status, reason: description };
    const migrate = reply.parameters?.migrate_to_chat_id;
    return {
      result: 'failed',
      status,
      reason: description,
      badMarkup:
        status === 400 && /can't parse entities|unsupported start tag|can't find end tag/i.test(description),
      ...(migrate !== undefined ? { migrateTo: String(migrate) } : {}),
    };
  }

  /**
   * Any other Bot API method, with JSON in and out. Never throws: a network error, a timeout or a
   * refusal is an outcome whose reason holds no secret. `timeoutMs` bounds this call (a long poll
   * needs longer than the default).
   */
  async call<T>(
    method: string,
    payload: Record<string, unknown>,
    o: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<BotCall<T>> {
    const ms = o.timeoutMs ?? this.timeoutMs;
    const timeout = AbortSignal.timeout(ms);
    const abort = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
    let status: number;
    let text: string;
    try {
      const res = await request(`${this.o.apiUrl}/bot${this.o.token}/${encodeURIComponent(method)}`, {
        method: 'POST',
        dispatcher: this.dispatcher,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(payload),
        signal: abort,
        headersTimeout: ms,
        bodyTimeout: ms,
      });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      const e = err as Error & { code?: string };
      const what = timeout.aborted ? `timed out after ${ms} ms` : e.message;
      return { ok: false, reason: this.scrub(`network error: ${e.code ? `${e.code} ` : ''}${what}`) };
    }
    let reply: BotApiReply & { result?: T } = {};
    try {
      reply = JSON.parse(text) as BotApiReply & { result?: T };
    } catch {
      // not JSON: the status decides
    }
    if (status >= 200 && status < 300 && reply.ok === true) return { ok: true, result: reply.result as T };
    const reason = this.scrub(
      (reply.description ?? text.slice(0, 200).replace(/\s+/g, ' ').trim()) || `HTTP ${status}`,
    );
    const seconds = reply.parameters?.retry_after;
    return {
      ok: false,
      status,
      reason,
      ...(status === 429
        ? { retryAfterMs: typeof seconds === 'number' && seconds >= 0 ? seconds * 1000 : 1000 }
        : {}),
    };
  }

  /** Closes our own dispatcher (an injected one belongs to the caller); never waits more than a second. */
  async close(): Promise<void> {
    if (!this.ownsDispatcher) return;
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      this.dispatcher.close().then(
        () => true,
        () => true,
      ),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), 1_000);
      }),
    ]);
    clearTimeout(timer);
    if (!closed) await this.dispatcher.destroy().catch(() => undefined);
  }
}
