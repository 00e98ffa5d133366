// createNotifier(config, deps): the humans' channel the engine and the admin API are handed. With a
// bot token and at least one chat it is Telegram behind a durable outbox; otherwise it is off, says
// so once at start-up, and escalations stay in the audit log and the metrics.
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { type Config, secretsOf } from '../config.js';
import { type Clock, systemClock } from '../core/clock.js';
import type { Metrics } from '../metrics.js';
import { type Escalation, type EscalationSink, LogEscalationSink, type TextNotifier } from './escalation.js';
import { Outbox, type OutboxTuning } from './outbox.js';
import { TelegramNotifier } from './telegram.js';

export interface Notifier extends EscalationSink, TextNotifier {
  /** Starts the delivery loop (server.ts; tests that want delivery). */
  start(): void;
  /** Stops the loop and closes the outbox; what was pending is delivered after the next start. */
  close(): Promise<void>;
  /** Messages and escalations waiting in the outbox. */
  readonly depth: number;
}

export interface NotifierDeps {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly clock?: Clock;
  /** undici dispatcher for the Bot API (tests); by default one with timeouts. */
  readonly dispatcher?: Dispatcher;
  /** Timeout of one Bot API call (ms). */
  readonly timeoutMs?: number;
  /** Batching, rate and retry settings; the defaults suit production. */
  readonly tuning?: OutboxTuning;
  /** Where the outbox journal lives; config.dataDir by default. */
  readonly dataDir?: string;
}

/** Escalations go where the engine's LogEscalationSink sends them; free text is refused. */
class DisabledNotifier implements Notifier {
  readonly enabled = false;
  readonly depth = 0;
  private readonly sink: LogEscalationSink;
  constructor(log: Logger) {
    this.sink = new LogEscalationSink(log);
  }
  raise(e: Escalation): void {
    this.sink.raise(e);
  }
  enqueueText(): string {
    throw new Error('no notifier is configured (TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID)');
  }
  start(): void {}
  async close(): Promise<void> {}
}

class TelegramOutboxNotifier implements Notifier {
  readonly enabled = true;
  constructor(
    private readonly outbox: Outbox,
    private readonly telegram: TelegramNotifier,
    private readonly log: Logger,
    private readonly severities: ReadonlyArray<string>,
  ) {}

  get depth(): number {
    return this.outbox.depth;
  }

  raise(e: Escalation): void {
    try {
      // The engine filters alerts by severity as well; the channel repeats the check so that no other
      // caller can page someone with a severity the operator did not ask for.
      if (e.kind === 'alert' && e.severity && !this.severities.includes(e.severity)) return;
      this.log.info(
        { event: 'escalation', escalationId: e.id, kind: e.kind, container: e.container },
        `escalation queued for Telegram: ${e.kind}${e.container ? ` ${e.container}` : ''}`,
      );
      this.outbox.addEscalation(e);
    } catch (err) {
      // raise() must never throw into the engine.
      this.log.error({ err, escalationId: e.id }, 'cannot queue an escalation');
    }
  }

  enqueueText(text: string, opts?: { silent?: boolean }): string {
    return this.outbox.addText(text, opts);
  }

  start(): void {
    this.outbox.start();
  }

  async close(): Promise<void> {
    await this.outbox.close();
    await this.telegram.close();
  }
}

export function createNotifier(config: Config, deps: NotifierDeps): Notifier {
  const { log } = deps;
  const tg = config.telegram;
  if (!tg.botToken || tg.chats.length === 0) {
    const why = !tg.botToken
      ? 'TELEGRAM_BOT_TOKEN is not set'
      : 'TELEGRAM_CHAT_ID is empty (the bot token alone names no chat)';
    log.info(
      { event: 'notifier', channel: 'telegram', enabled: false },
      `Telegram notifier off: ${why}; escalations go to the audit log and metrics only`,
    );
    return new DisabledNotifier(log);
  }
  const telegram = new TelegramNotifier({
    token: tg.botToken,
    apiUrl: tg.apiUrl,
    dispatcher: deps.dispatcher,
    timeoutMs: deps.timeoutMs,
    // A token that came in through an alert label, a reason or free text never reaches a chat.
    secrets: secretsOf(config),
  });
  const outbox = new Outbox({
    ...deps.tuning,
    dir: deps.dataDir ?? config.dataDir,
    log,
    metrics: deps.metrics,
    clock: deps.clock ?? systemClock,
    chats: tg.chats,
    sender: telegram,
  });
  log.info(
    {
      event: 'notifier',
      channel: 'telegram',
      enabled: true,
      chats: tg.chats.map((c) => (c.topicId === undefined ? c.chatId : `${c.chatId}:${c.topicId}`)),
      api: new URL(tg.apiUrl).origin,
      pending: outbox.depth,
    },
    `Telegram notifier on: ${tg.chats.length} chat(s)`,
  );
  return new TelegramOutboxNotifier(outbox, telegram, log, tg.severities);
}
