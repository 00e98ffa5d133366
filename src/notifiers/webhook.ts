// Chat webhooks as senders for the durable outbox: a generic JSON webhook compatible with
// docker-autoheal's WEBHOOK_URL / WEBHOOK_JSON_KEY (a Discord, Slack or ntfy incoming webhook takes
// `{"<key>": "<text>"}`), and an Apprise API endpoint (APPRISE_URL: `{"title", "body", "type"}`). Each
// POST is classified as the outbox expects (sent, retry later, or failed for good). The URL itself is a
// secret (a Discord or Slack webhook URL carries its token in the path): it is scrubbed from every
// string this returns, and only its origin is ever logged.
import { createScrubber } from '../logger.js';
import { htmlToPlain } from './format.js';
import { neverSent, type SendOutcome, type TelegramMessage } from './telegram.js';

export type WebhookKind = 'webhook' | 'apprise';

/** The longest text sent (Discord's limit, less a margin); a longer one is cut. */
export const MAX_TEXT = 1990;

export interface WebhookSenderOptions {
  readonly kind: WebhookKind;
  readonly url: string;
  /** The JSON key of the text (WEBHOOK_JSON_KEY; Discord takes `content`, Slack `text`). */
  readonly jsonKey?: string;
  readonly timeoutMs?: number;
  readonly secrets?: ReadonlyArray<string | undefined>;
}

/** Retry-After as seconds or an HTTP date, in ms; 1 s when absent or unreadable. */
export function retryAfterMs(header: string | null, now: number): number {
  if (!header) return 1000;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? 1000 : Math.max(0, at - now);
}

export class WebhookSender {
  private readonly scrubText: (text: string) => string;
  private readonly timeoutMs: number;
  readonly origin: string;

  constructor(private readonly o: WebhookSenderOptions) {
    this.timeoutMs = o.timeoutMs ?? 10_000;
    this.origin = new URL(o.url).origin;
    const path = new URL(o.url).pathname;
    this.scrubText = createScrubber([o.url, path.length > 1 ? path : undefined, ...(o.secrets ?? [])]);
  }

  scrub(text: string): string {
    return this.scrubText(text);
  }

  /** The JSON body for one message: plain text, never HTML. */
  body(m: TelegramMessage): Record<string, string> {
    const full = this.scrubText(m.html ? htmlToPlain(m.text) : m.text);
    // Discord refuses more than 2,000 characters; the others take at least this many.
    const text = full.length > MAX_TEXT ? `${full.slice(0, MAX_TEXT - 1)}…` : full;
    if (this.o.kind === 'apprise') return { title: 'AutoHeal-Nexus', body: text, type: 'warning' };
    return { [this.o.jsonKey ?? 'text']: text };
  }

  /** Sends one message. Never throws: every failure becomes an outcome. */
  async send(m: TelegramMessage, signal?: AbortSignal): Promise<SendOutcome> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const abort = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.o.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(this.body(m)),
        redirect: 'error',
        signal: abort,
      });
      text = await res.text();
    } catch (err) {
      const e = err as Error & { code?: string; cause?: { code?: string } };
      const code = e.code ?? e.cause?.code;
      const what = timeout.aborted ? `timed out after ${this.timeoutMs} ms` : e.message;
      return {
        result: 'retry',
        reason: this.scrub(`network error: ${code ? `${code} ` : ''}${what}`),
        ...(neverSent(e) ? {} : { maybeDelivered: true }),
      };
    }
    const status = res.status;
    const reason = this.scrub(text.slice(0, 200).replace(/\s+/g, ' ').trim() || `HTTP ${status}`);
    if (status >= 200 && status < 300) return { result: 'sent', status };
    if (status === 429)
      return {
        result: 'retry',
        status,
        reason,
        retryAfterMs: retryAfterMs(res.headers.get('retry-after'), Date.now()),
      };
    if (status >= 500) return { result: 'retry', status, reason };
    return { result: 'failed', status, reason };
  }
}
