// The durable outbox between the engine and a chat channel, and the loop that empties it.
//
// raise() writes the escalation to its own journal (DATA_DIR/outbox.*) before returning, so nothing
// raised is lost by a crash; it never waits for the network. Escalations that arrive close together
// are held for a short quiet window and become one digest message; the messages, one per chat, are
// journalled too and deleted only once the channel accepted them, so a restart delivers what was
// pending. Every secret is scrubbed from what is handed in before it is journalled or formatted.
//
// Delivery is at least once: no page is lost to a fault, and a page can arrive twice. Telegram's
// sendMessage has no idempotency key, so when it is unknown whether an attempt arrived, the message
// is sent again rather than risk a lost page: an on-call engineer can dismiss a repeat, not read a
// message that never came. The cases that can repeat a message, and only these:
//   - an attempt that timed out after the connection was made (no answer in time), or whose
//     connection closed before the answer: Telegram may have delivered it;
//   - an attempt cut short by close() (shutdown) after its grace, or by a crash (kill -9, power) while
//     it was in flight or after Telegram's answer and before our delete;
//   - a 5xx from a proxy in front of the Bot API that had in fact passed the message on.
// Each attempt is journalled as in flight before it starts, so after all but the last case the resend
// carries a note saying it may be a repeat. Failures before a connection (refused, DNS, connect
// timeout, TLS) and answers that refuse the message (429, 4xx, Telegram's own 5xx) repeat nothing.
//
// Delivery: at most one message per interval per chat, in order; network errors and 5xx retried with
// back-off; a 429 waits the retry_after it names; messages that can never go through are dropped,
// logged and counted. The loop owns its timers (unref'd) and stops on close().
import { randomUUID } from 'node:crypto';
import type { InlineKeyboardMarkup } from '@grammyjs/types';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { Metrics } from '../metrics.js';
import { scrubDeep } from '../logger.js';
import { Journal } from '../state/journal.js';
import type { Escalation } from './escalation.js';
import { formatDigest, formatEscalation, formatText, htmlToPlain, markResent } from './format.js';
import type { SendOutcome, TelegramMessage } from './telegram.js';

export interface OutboxChat {
  readonly chatId: string;
  readonly topicId?: number | undefined;
}

export interface OutboxMessage {
  /** `${notificationId}:${chat index}`: one notification becomes one message per chat. */
  readonly id: string;
  readonly notificationId: string;
  readonly seq: number;
  readonly chatId: string;
  readonly topicId?: number | undefined;
  readonly text: string;
  readonly html: boolean;
  readonly silent: boolean;
  /** Buttons under the message (Telegram controls); kept with the message so a resend has them too. */
  readonly replyMarkup?: InlineKeyboardMarkup | undefined;
  readonly createdAt: number;
  readonly attempts: number;
  /** Not before this time (back-off or a 429's retry_after); epoch ms, so it survives a restart. */
  readonly notBefore?: number | undefined;
  /** notBefore comes from a 429: it holds across a restart (the back-off of other errors does not). */
  readonly rateLimited?: boolean | undefined;
  /** The escalations this message carries: after a crash they are not batched a second time. */
  readonly sources: ReadonlyArray<string>;
  readonly lastError?: string | undefined;
  /** An attempt is under way (journalled before it starts): found after a restart, it may have arrived. */
  readonly sending?: boolean | undefined;
  /** An earlier attempt may have arrived: what is sent next says it may be a repeat. */
  readonly uncertain?: boolean | undefined;
}

interface PendingEscalation {
  readonly escalation: Escalation;
  readonly receivedAt: number;
  readonly seq: number;
}

export interface Sender {
  send(m: TelegramMessage, signal?: AbortSignal): Promise<SendOutcome>;
  /** Masks secrets in text that is about to be logged or stored. */
  scrub(text: string): string;
}

export interface OutboxTuning {
  /** Quiet time: a batch is sent once no escalation arrived for this long (ms). */
  readonly batchWindowMs?: number;
  /** A batch is never held longer than this after its first escalation (ms). */
  readonly batchMaxMs?: number;
  /** A batch of this many escalations or more becomes one digest; fewer go out as full messages. */
  readonly digestFrom?: number;
  /** Minimum time between two messages to one chat (Telegram: about one per second) (ms). */
  readonly minIntervalMs?: number;
  /** First retry delay after a network error or 5xx; doubles per failure (ms). */
  readonly retryBaseMs?: number;
  /** Cap of the retry delay (ms). */
  readonly retryMaxMs?: number;
  /** A message still undelivered after this long is dropped, logged and counted (ms). */
  readonly maxAgeMs?: number;
  /** How long close() lets a message in flight finish before aborting it (ms). */
  readonly closeGraceMs?: number;
}

export interface OutboxOptions extends OutboxTuning {
  readonly dir: string;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly chats: ReadonlyArray<OutboxChat>;
  readonly sender: Sender;
  /** The channel label of autoheal_notifications_total. */
  readonly channel?: string;
  /** The journal's file name in dir (one outbox per channel); `outbox` by default. */
  readonly name?: string;
  /** The buttons of a message made from these escalations (Telegram with controls on). */
  readonly keyboard?: ((group: ReadonlyArray<Escalation>) => InlineKeyboardMarkup | undefined) | undefined;
}

const ESCALATIONS = 'escalations';
const MESSAGES = 'messages';
/** Ids of escalations already taken, so a replayed signal (after a crash) does not notify twice. */
const SEEN = 'seen';
const SEEN_TTL_MS = 24 * 3600 * 1000;

export class Outbox {
  private readonly journal: Journal;
  private readonly escalations: Map<string, PendingEscalation>;
  private readonly messages: Map<string, OutboxMessage>;
  private readonly chatNextAt = new Map<string, number>();
  private readonly inflight = new Map<string, { abort: AbortController; done: Promise<void> }>();
  private readonly channel: string;
  private readonly t: Required<OutboxTuning>;
  private seq = 0;
  private batchStartedAt: number | undefined;
  private batchLastAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private closed = false;
  private writeErrorLogged = false;

  constructor(private readonly o: OutboxOptions) {
    this.channel = o.channel ?? 'telegram';
    this.t = {
      batchWindowMs: o.batchWindowMs ?? 5_000,
      batchMaxMs: o.batchMaxMs ?? 60_000,
      digestFrom: o.digestFrom ?? 3,
      minIntervalMs: o.minIntervalMs ?? 1_000,
      retryBaseMs: o.retryBaseMs ?? 1_000,
      retryMaxMs: o.retryMaxMs ?? 60_000,
      maxAgeMs: o.maxAgeMs ?? 24 * 3600_000,
      closeGraceMs: o.closeGraceMs ?? 3_000,
    };
    // Opened at construction so that raise() is durable even before the loop starts.
    this.journal = new Journal({
      dir: o.dir,
      name: o.name ?? 'outbox',
      log: o.log,
      compactEvery: 1000,
    }).open();
    this.escalations = this.journal.collection<PendingEscalation>(ESCALATIONS);
    this.messages = this.journal.collection<OutboxMessage>(MESSAGES);
    for (const m of this.messages.values()) this.seq = Math.max(this.seq, m.seq);
    for (const p of this.escalations.values()) this.seq = Math.max(this.seq, p.seq);
    // A crash between writing a batch's messages and deleting its escalations must not send them twice.
    const batched = new Set<string>();
    for (const m of this.messages.values()) for (const id of m.sources) batched.add(id);
    for (const id of [...this.escalations.keys()]) if (batched.has(id)) this.remove(ESCALATIONS, id);
    // A restart is when a fixed setting or a recovered network shows: try at once, except where
    // Telegram named a wait (breaking a 429's retry_after earns longer bans). An attempt that was in
    // flight when the process stopped may have arrived: the resend says so.
    for (const m of this.messages.values()) {
      const retryNow = m.notBefore !== undefined && !m.rateLimited;
      if (retryNow || m.sending) {
        this.messages.set(m.id, {
          ...m,
          notBefore: retryNow ? undefined : m.notBefore,
          sending: undefined,
          uncertain: m.uncertain || m.sending,
        });
      }
    }
    if (this.escalations.size > 0 || this.messages.size > 0) {
      o.log.info(
        { event: 'outbox_recovered', escalations: this.escalations.size, messages: this.messages.size },
        'notification outbox: delivering what was pending before the restart',
      );
    }
    this.gauge();
  }

  /** Messages and escalations not yet delivered. */
  get depth(): number {
    return this.messages.size + this.escalations.size;
  }

  /** What waits, oldest first (for tests and the admin API). */
  pending(): OutboxMessage[] {
    return [...this.messages.values()].sort((a, b) => a.seq - b.seq);
  }

  /** Durably records an escalation for the next batch. Synchronous, never throws, never waits. */
  addEscalation(raised: Escalation): void {
    // A token in a label, a reason or a health-check output is masked before it is written anywhere.
    const e = scrubDeep(raised, (text) => this.o.sender.scrub(text)) as Escalation;
    if (this.closed) {
      this.o.log.warn(
        { event: 'notification', result: 'dropped', escalation: e },
        'notifier is closed: escalation kept in this log line only',
      );
      this.o.metrics.notifications.inc({ channel: this.channel, result: 'dropped' });
      return;
    }
    const now = this.o.clock.now();
    const seen = this.journal.collection<number>(SEEN);
    if (seen.has(e.id)) {
      this.o.log.info(
        { event: 'escalation_duplicate', escalationId: e.id },
        'escalation already queued once; skipped',
      );
      return;
    }
    for (const [id, at] of seen) if (now - at > SEEN_TTL_MS) this.remove(SEEN, id);
    this.persist(SEEN, e.id, now);
    this.persist(ESCALATIONS, e.id, { escalation: e, receivedAt: now, seq: ++this.seq });
    this.batchStartedAt ??= now;
    this.batchLastAt = now;
    this.gauge();
    this.pump();
  }

  /** Durably queues free text for every chat; returns the notification id. */
  addText(text: string, opts: { silent?: boolean } = {}): string {
    const id = randomUUID();
    if (this.closed) throw new Error('the notifier is closed');
    this.queue(id, formatText(this.o.sender.scrub(text)), true, opts.silent ?? false, []);
    this.pump();
    return id;
  }

  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    // Escalations left from before a restart form a batch that starts now: the engine's own replay
    // may add to it.
    if (this.escalations.size > 0) {
      this.batchStartedAt = this.o.clock.now();
      this.batchLastAt = this.batchStartedAt;
    }
    this.pump();
  }

  /** Stops the loop, lets a message in flight finish for a moment, and closes the journal. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    const running = [...this.inflight.values()];
    if (running.length) {
      let grace: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled(running.map((r) => r.done)),
        new Promise((resolve) => {
          grace = setTimeout(resolve, this.t.closeGraceMs);
        }),
      ]);
      clearTimeout(grace);
      // Aborted messages stay in the journal and go out after the next start.
      for (const r of this.inflight.values()) r.abort.abort();
      await Promise.allSettled([...this.inflight.values()].map((r) => r.done));
    }
    this.journal.close();
  }

  // The loop -----------------------------------------------------------------------------------------

  private pump(): void {
    if (!this.started || this.closed) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    const now = this.o.clock.now();
    let wake = Number.POSITIVE_INFINITY;
    if (this.escalations.size > 0) {
      const flushAt = this.flushAt();
      if (flushAt <= now) this.flushBatch();
      else wake = flushAt;
    }
    const heads = new Map<string, OutboxMessage>();
    for (const m of this.messages.values()) {
      const h = heads.get(m.chatId);
      if (!h || m.seq < h.seq) heads.set(m.chatId, m);
    }
    for (const [chat, m] of heads) {
      if (this.inflight.has(chat)) continue;
      if (now - m.createdAt > this.t.maxAgeMs) {
        this.drop(m, `undelivered after ${Math.round(this.t.maxAgeMs / 1000)}s`);
        wake = now; // the next message of this chat is due at once
        continue;
      }
      const due = Math.max(m.notBefore ?? 0, this.chatNextAt.get(chat) ?? 0);
      if (due <= now) this.deliver(chat, m, now);
      else wake = Math.min(wake, due);
    }
    if (wake !== Number.POSITIVE_INFINITY) {
      this.timer = setTimeout(() => this.pump(), Math.max(0, wake - now));
      this.timer.unref();
    }
  }

  private flushAt(): number {
    const start = this.batchStartedAt ?? this.o.clock.now();
    return Math.min(this.batchLastAt + this.t.batchWindowMs, start + this.t.batchMaxMs);
  }

  /** The batch becomes messages (one digest, or one message per escalation when few). */
  private flushBatch(): void {
    const list = [...this.escalations.values()].sort((a, b) => a.seq - b.seq).map((p) => p.escalation);
    this.batchStartedAt = undefined;
    if (list.length === 0) return;
    const groups = list.length >= this.t.digestFrom ? [list] : list.map((e) => [e]);
    for (const group of groups) {
      const first = group[0] as Escalation;
      const text = group.length === 1 ? formatEscalation(first) : formatDigest(group);
      // Good news alone need not wake anyone.
      const silent = group.every((e) => e.kind === 'recovered');
      this.queue(
        group.length === 1 ? first.id : randomUUID(),
        text,
        true,
        silent,
        group.map((e) => e.id),
        this.o.keyboard?.(group),
      );
    }
    // Only after the messages are written: a crash in between is handled at the next open.
    for (const e of list) this.remove(ESCALATIONS, e.id);
    this.o.log.info(
      {
        event: 'notification_batch',
        escalations: list.length,
        messages: groups.length * this.o.chats.length,
        digest: groups.length === 1 && list.length > 1,
      },
      `notification batch: ${list.length} escalations in ${groups.length} message(s) per chat`,
    );
    this.gauge();
  }

  private queue(
    notificationId: string,
    text: string,
    html: boolean,
    silent: boolean,
    sources: ReadonlyArray<string>,
    replyMarkup?: InlineKeyboardMarkup,
  ): void {
    const now = this.o.clock.now();
    this.o.chats.forEach((chat, i) => {
      const m: OutboxMessage = {
        id: `${notificationId}:${i}`,
        notificationId,
        seq: ++this.seq,
        chatId: chat.chatId,
        topicId: chat.topicId,
        text,
        html,
        silent,
        ...(replyMarkup ? { replyMarkup } : {}),
        createdAt: now,
        attempts: 0,
        sources,
      };
      this.persist(MESSAGES, m.id, m);
    });
    this.gauge();
  }

  private deliver(chat: string, queued: OutboxMessage, now: number): void {
    const abort = new AbortController();
    this.chatNextAt.set(chat, now + this.t.minIntervalMs);
    // Journalled as in flight first: after a crash from here on, the message may have arrived.
    const m: OutboxMessage = { ...queued, sending: true };
    this.persist(MESSAGES, m.id, m);
    const text = m.uncertain ? markResent(m.text, m.html) : m.text;
    const done = this.o.sender
      .send(
        {
          chatId: m.chatId,
          topicId: m.topicId,
          text,
          html: m.html,
          silent: m.silent,
          replyMarkup: m.replyMarkup,
        },
        abort.signal,
      )
      .catch(
        (err: unknown): SendOutcome => ({
          result: 'retry',
          reason: this.o.sender.scrub(`send failed: ${(err as Error)?.message ?? String(err)}`),
        }),
      )
      .then((outcome) => {
        this.inflight.delete(chat);
        // Aborted by close(): the message stays in the journal, marked in flight (it may have arrived).
        if (abort.signal.aborted) return;
        this.settle(m, outcome);
        this.pump();
      });
    this.inflight.set(chat, { abort, done });
  }

  private settle(m: OutboxMessage, outcome: SendOutcome): void {
    const { log, metrics } = this.o;
    const now = this.o.clock.now();
    const attempts = m.attempts + 1;
    const base = { event: 'notification', channel: this.channel, messageId: m.id, chat: m.chatId, attempts };
    if (outcome.result === 'sent') {
      this.remove(MESSAGES, m.id);
      metrics.notifications.inc({ channel: this.channel, result: 'sent' });
      log.info({ ...base, result: 'sent' }, `notification sent to chat ${m.chatId}`);
      this.gauge();
      return;
    }
    if (outcome.result === 'retry') {
      const backoff = Math.min(this.t.retryMaxMs, this.t.retryBaseMs * 2 ** (attempts - 1));
      // A little jitter so that chats failing together do not retry in lockstep.
      const delay = outcome.retryAfterMs ?? Math.round(backoff * (1 + Math.random() * 0.1));
      const notBefore = now + delay;
      if (outcome.retryAfterMs !== undefined)
        this.chatNextAt.set(m.chatId, Math.max(this.chatNextAt.get(m.chatId) ?? 0, notBefore));
      this.persist(MESSAGES, m.id, {
        ...m,
        attempts,
        notBefore,
        rateLimited: outcome.retryAfterMs !== undefined,
        lastError: outcome.reason,
        sending: undefined,
        uncertain: m.uncertain || outcome.maybeDelivered,
      });
      metrics.notifications.inc({ channel: this.channel, result: 'retried' });
      if (outcome.maybeDelivered) {
        log.warn(
          { ...base, result: 'retried', reason: outcome.reason, retryInMs: delay, maybeDelivered: true },
          `notification to chat ${m.chatId}: no answer after it was sent (${outcome.reason}), so it may ` +
            `have arrived; sending it again in ${delay} ms, marked as a possible repeat`,
        );
        return;
      }
      const hint =
        outcome.status === 401
          ? ': the Bot API refuses the token; check TELEGRAM_BOT_TOKEN (the message waits for a restart)'
          : outcome.status === 404
            ? ': the Bot API URL or token is wrong; check TELEGRAM_API_URL and TELEGRAM_BOT_TOKEN'
            : '';
      log.warn(
        { ...base, result: 'retried', status: outcome.status, reason: outcome.reason, retryInMs: delay },
        `notification to chat ${m.chatId} not delivered, retrying in ${delay} ms${hint}`,
      );
      return;
    }
    if (outcome.badMarkup && m.html) {
      // Our escaping should make this impossible; if Telegram disagrees, the words still get through.
      this.persist(MESSAGES, m.id, {
        ...m,
        attempts,
        html: false,
        text: htmlToPlain(m.text),
        lastError: outcome.reason,
        sending: undefined,
      });
      metrics.notifications.inc({ channel: this.channel, result: 'retried' });
      log.warn(
        { ...base, result: 'retried', status: outcome.status, reason: outcome.reason },
        'Telegram refused the message markup: sending it as plain text',
      );
      return;
    }
    if (outcome.migrateTo && outcome.migrateTo !== m.chatId) {
      this.persist(MESSAGES, m.id, {
        ...m,
        attempts,
        chatId: outcome.migrateTo,
        lastError: outcome.reason,
        sending: undefined,
      });
      metrics.notifications.inc({ channel: this.channel, result: 'retried' });
      log.warn(
        { ...base, result: 'retried', migrateTo: outcome.migrateTo },
        `chat ${m.chatId} became supergroup ${outcome.migrateTo}: sending there; set TELEGRAM_CHAT_ID to it`,
      );
      return;
    }
    this.remove(MESSAGES, m.id);
    metrics.notifications.inc({ channel: this.channel, result: 'failed' });
    log.error(
      { ...base, result: 'failed', status: outcome.status, reason: outcome.reason, sources: m.sources },
      `notification to chat ${m.chatId} refused (${outcome.status} ${outcome.reason}); not retried`,
    );
    this.gauge();
  }

  private drop(m: OutboxMessage, why: string): void {
    this.remove(MESSAGES, m.id);
    this.o.metrics.notifications.inc({ channel: this.channel, result: 'dropped' });
    this.o.log.error(
      {
        event: 'notification',
        channel: this.channel,
        result: 'dropped',
        messageId: m.id,
        chat: m.chatId,
        attempts: m.attempts,
        lastError: m.lastError,
        text: htmlToPlain(m.text).slice(0, 500),
      },
      `notification to chat ${m.chatId} dropped: ${why}`,
    );
    this.gauge();
  }

  // Durable writes that degrade to memory: a full disk must not stop the on-call hearing about it.

  private persist<T>(collection: string, key: string, value: T): void {
    try {
      this.journal.put(collection, key, value);
    } catch (err) {
      this.journal.collection<T>(collection).set(key, value);
      this.writeFailed(err);
    }
  }

  private remove(collection: string, key: string): void {
    try {
      this.journal.del(collection, key);
    } catch (err) {
      this.journal.collection(collection).delete(key);
      this.writeFailed(err);
    }
  }

  private writeFailed(err: unknown): void {
    this.o.metrics.stateErrors.inc({ op: 'write' });
    if (this.writeErrorLogged) return;
    this.writeErrorLogged = true;
    this.o.log.error(
      { err, event: 'outbox_write_failed' },
      'cannot write the notification outbox: notifications are kept in memory until the disk recovers',
    );
  }

  private gauge(): void {
    this.o.metrics.notificationQueueDepth.set(this.depth);
  }
}
