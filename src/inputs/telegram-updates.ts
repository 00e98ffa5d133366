// Telegram updates in: taps on the buttons of escalation messages and commands written in the chats,
// received by long polling getUpdates (no public URL needed) or through a webhook (TELEGRAM_UPDATES).
//
// Exactly once, across a kill -9: an update is journalled (DATA_DIR/telegram.*) together with the
// next offset before anything is done about it, in one write, and deleted only once it was handled.
// After a restart the journalled updates are handled first; an update Telegram hands out again (its
// offset was not confirmed yet, or a webhook delivery is retried) has an id below the stored offset
// and is dropped as a repeat. What handling an update does is made repeat-safe by its handler (the
// admin API's Idempotency-Key for remediations, a pause that ends at the same time).
//
// Updates are handled one at a time, in the order Telegram numbered them. The loop owns its timers
// and its one long-poll request, and stops on stop().
import { setTimeout as sleep } from 'node:timers/promises';
import type { Update } from '@grammyjs/types';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { Metrics } from '../metrics.js';
import type { BotCall } from '../notifiers/telegram.js';
import { Journal } from '../state/journal.js';

/** The Bot API calls this input makes (TelegramNotifier.call). */
export interface BotApi {
  call<T>(
    method: string,
    payload: Record<string, unknown>,
    o?: { timeoutMs?: number; signal?: AbortSignal },
  ): Promise<BotCall<T>>;
}

export interface TelegramUpdatesOptions {
  readonly mode: 'poll' | 'webhook';
  readonly api: BotApi;
  readonly dataDir: string;
  readonly log: Logger;
  readonly metrics: Pick<Metrics, 'chatUpdates'>;
  readonly clock: Clock;
  /** Handles one update; must not throw (a rejection is logged and the update is dropped). */
  readonly handle: (update: Update, receivedAt: number) => Promise<void>;
  /** Long-poll timeout of one getUpdates (s); Telegram allows up to 50. */
  readonly pollTimeoutSec?: number;
  /** Webhook mode: the public URL Telegram posts to, and the secret_token it sends back. */
  readonly webhook?: { readonly url: string; readonly secret: string } | undefined;
  /** First retry delay after a failed call; doubles up to 60 s (ms). */
  readonly retryBaseMs?: number;
}

interface Pending {
  readonly update: Update;
  readonly receivedAt: number;
}

/** The update kinds we act on: nothing else is asked of Telegram. */
export const ALLOWED_UPDATES = ['message', 'callback_query'] as const;

const STATE = 'state';
const PENDING = 'pending';

export class TelegramUpdates {
  private readonly journal: Journal;
  private readonly pending: Map<string, Pending>;
  private offset: number;
  private running = false;
  private stopped = false;
  private draining: Promise<void> | undefined;
  private abort = new AbortController();
  private loop: Promise<void> | undefined;
  private failures = 0;

  constructor(private readonly o: TelegramUpdatesOptions) {
    this.journal = new Journal({ dir: o.dataDir, name: 'telegram', log: o.log, compactEvery: 500 }).open();
    this.pending = this.journal.collection<Pending>(PENDING);
    this.offset = (this.journal.collection<number>(STATE).get('offset') as number | undefined) ?? 0;
  }

  /** Updates received and not yet handled (left by a crash, or waiting their turn). */
  get backlog(): number {
    return this.pending.size;
  }

  /** The offset the next getUpdates confirms: every update below it was received. */
  get nextOffset(): number {
    return this.offset;
  }

  /** Handles what a previous life left, then polls (or registers the webhook). */
  start(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    if (this.pending.size > 0) {
      this.o.log.info(
        { event: 'telegram_updates_recovered', updates: this.pending.size },
        `Telegram: handling ${this.pending.size} update(s) received before the restart`,
      );
    }
    this.drain();
    this.loop = this.o.mode === 'poll' ? this.poll() : this.registerWebhook();
  }

  /**
   * Journals updates (a getUpdates answer, or one webhook delivery) and schedules them. Returns false
   * when the journal cannot be written: nothing was accepted, and the sender should deliver again.
   * Synchronous: once it returns true, the updates survive a kill -9.
   */
  receive(updates: ReadonlyArray<Update>): boolean {
    const now = this.o.clock.now();
    const fresh = updates
      .filter((u) => Number.isSafeInteger(u.update_id) && u.update_id >= 0)
      .sort((a, b) => a.update_id - b.update_id);
    let next = this.offset;
    const take: Update[] = [];
    for (const u of fresh) {
      if (u.update_id < next) {
        this.o.metrics.chatUpdates.inc({ kind: 'update', result: 'repeat' });
        this.o.log.info(
          { event: 'telegram_update_repeat', updateId: u.update_id },
          'Telegram update received before; skipped',
        );
        continue;
      }
      take.push(u);
      next = u.update_id + 1;
    }
    if (take.length === 0) return true;
    try {
      this.journal.batch(() => {
        for (const u of take)
          this.journal.put<Pending>(PENDING, String(u.update_id), { update: u, receivedAt: now });
        this.journal.put(STATE, 'offset', next);
      });
    } catch (err) {
      this.o.log.error(
        { err, event: 'telegram_update_unrecorded' },
        'cannot record Telegram updates; they are asked for again',
      );
      return false;
    }
    this.offset = next;
    this.drain();
    return true;
  }

  /** Stops polling, lets the update being handled finish, and closes the journal. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    await this.loop?.catch(() => undefined);
    await this.draining;
    this.journal.close();
  }

  // Handling -------------------------------------------------------------------------------------

  private drain(): void {
    if (!this.running || this.draining) return;
    this.draining = (async () => {
      for (;;) {
        if (this.stopped) break;
        const next = [...this.pending.values()].sort((a, b) => a.update.update_id - b.update.update_id)[0];
        if (!next) break;
        try {
          await this.o.handle(next.update, next.receivedAt);
        } catch (err) {
          this.o.log.error({ err, updateId: next.update.update_id }, 'Telegram update handler failed');
        }
        // A kill -9 before this line hands the update to the handler again after the restart.
        try {
          this.journal.del(PENDING, String(next.update.update_id));
        } catch (err) {
          this.pending.delete(String(next.update.update_id));
          this.o.log.error({ err }, 'cannot mark a Telegram update as handled');
        }
      }
    })().finally(() => {
      this.draining = undefined;
      // Updates received while the last one was handled.
      if (this.pending.size > 0 && !this.stopped) this.drain();
    });
  }

  // Receiving ------------------------------------------------------------------------------------

  private async poll(): Promise<void> {
    const timeoutSec = this.o.pollTimeoutSec ?? 25;
    let conflictHandled = false;
    while (!this.stopped) {
      const r = await this.o.api.call<Update[]>(
        'getUpdates',
        { offset: this.offset, timeout: timeoutSec, allowed_updates: ALLOWED_UPDATES },
        { timeoutMs: (timeoutSec + 10) * 1000, signal: this.abort.signal },
      );
      if (this.stopped) return;
      if (r.ok) {
        this.failures = 0;
        if (Array.isArray(r.result) && r.result.length > 0 && !this.receive(r.result))
          await this.pause(5_000);
        continue;
      }
      if (r.status === 409 && !conflictHandled) {
        // A webhook is set for this bot (TELEGRAM_UPDATES was webhook before): polling replaces it.
        conflictHandled = true;
        this.o.log.warn(
          { event: 'telegram_webhook_removed', reason: r.reason },
          'Telegram: a webhook was set for this bot; removing it, since TELEGRAM_UPDATES=poll',
        );
        await this.o.api.call(
          'deleteWebhook',
          { drop_pending_updates: false },
          { signal: this.abort.signal },
        );
        continue;
      }
      await this.failed('getUpdates', r);
    }
  }

  private async registerWebhook(): Promise<void> {
    const hook = this.o.webhook;
    if (!hook) return;
    while (!this.stopped) {
      const r = await this.o.api.call<boolean>(
        'setWebhook',
        {
          url: hook.url,
          secret_token: hook.secret,
          allowed_updates: ALLOWED_UPDATES,
          drop_pending_updates: false,
        },
        { signal: this.abort.signal },
      );
      if (this.stopped) return;
      if (r.ok) {
        this.o.log.info(
          { event: 'telegram_webhook_set', url: new URL(hook.url).origin },
          `Telegram: updates are posted to ${new URL(hook.url).origin}`,
        );
        return;
      }
      await this.failed('setWebhook', r);
    }
  }

  private async failed(method: string, r: Extract<BotCall<unknown>, { ok: false }>): Promise<void> {
    this.failures++;
    const base = this.o.retryBaseMs ?? 1_000;
    const wait =
      r.retryAfterMs ??
      (r.status === 401 || r.status === 404 ? 60_000 : Math.min(60_000, base * 2 ** (this.failures - 1)));
    const hint = r.status === 401 ? ': the Bot API refuses the token; check TELEGRAM_BOT_TOKEN' : '';
    // The first failure and then one in ten: a long outage must not fill the log.
    if (this.failures === 1 || this.failures % 10 === 0) {
      this.o.log.warn(
        {
          event: 'telegram_updates_failed',
          method,
          status: r.status,
          reason: r.reason,
          failures: this.failures,
          retryInMs: wait,
        },
        `Telegram ${method} failed (${r.reason})${hint}; trying again in ${wait} ms`,
      );
    }
    await this.pause(wait);
  }

  private async pause(ms: number): Promise<void> {
    if (this.stopped) return;
    // Ends early, without an error, when stop() aborts.
    await sleep(ms, undefined, { signal: this.abort.signal, ref: false }).catch(() => undefined);
  }
}
