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
import { keyboardFor } from './telegram-buttons.js';
import { type WebhookKind, WebhookSender } from './webhook.js';

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

/** One channel behind its own durable outbox (Telegram, a chat webhook, Apprise). */
class OutboxNotifier implements Notifier {
  readonly enabled = true;
  constructor(
    private readonly outbox: Outbox,
    private readonly closeSender: () => Promise<void>,
    private readonly log: Logger,
    private readonly severities: ReadonlyArray<string>,
    private readonly channel: string,
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
        {
          event: 'escalation',
          escalationId: e.id,
          kind: e.kind,
          container: e.container,
          channel: this.channel,
        },
        `escalation queued for ${this.channel}: ${e.kind}${e.container ? ` ${e.container}` : ''}`,
      );
      this.outbox.addEscalation(e);
    } catch (err) {
      // raise() must never throw into the engine.
      this.log.error({ err, escalationId: e.id, channel: this.channel }, 'cannot queue an escalation');
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
    await this.closeSender();
  }
}

/** Several channels: each escalation and text goes to every one, each through its own outbox. */
class MultiNotifier implements Notifier {
  readonly enabled = true;
  constructor(private readonly channels: ReadonlyArray<Notifier>) {}
  get depth(): number {
    return this.channels.reduce((n, c) => n + c.depth, 0);
  }
  raise(e: Escalation): void {
    for (const c of this.channels) c.raise(e);
  }
  enqueueText(text: string, opts?: { silent?: boolean }): string {
    const [first, ...rest] = this.channels.map((c) => c.enqueueText(text, opts));
    return [first, ...rest].join(',');
  }
  start(): void {
    for (const c of this.channels) c.start();
  }
  async close(): Promise<void> {
    await Promise.all(this.channels.map((c) => c.close()));
  }
}

export function createNotifier(config: Config, deps: NotifierDeps): Notifier {
  const channels = [telegramChannel(config, deps), ...webhookChannels(config, deps)].filter(
    (c): c is Notifier => c !== undefined,
  );
  const [only] = channels;
  if (channels.length === 0 || !only) return new DisabledNotifier(deps.log);
  return channels.length === 1 ? only : new MultiNotifier(channels);
}

function outboxFor(
  config: Config,
  deps: NotifierDeps,
  o: {
    channel: string;
    name: string;
    chats: ReadonlyArray<{ chatId: string; topicId?: number | undefined }>;
    sender: ConstructorParameters<typeof Outbox>[0]['sender'];
    keyboard?: ConstructorParameters<typeof Outbox>[0]['keyboard'];
  },
): Outbox {
  return new Outbox({
    ...deps.tuning,
    dir: deps.dataDir ?? config.dataDir,
    log: deps.log,
    metrics: deps.metrics,
    clock: deps.clock ?? systemClock,
    chats: o.chats,
    sender: o.sender,
    channel: o.channel,
    name: o.name,
    keyboard: o.keyboard,
  });
}

/** A chat webhook (WEBHOOK_URL) and an Apprise API endpoint (APPRISE_URL), each behind its own outbox. */
function webhookChannels(config: Config, deps: NotifierDeps): Notifier[] {
  const out: Notifier[] = [];
  const made: Array<[WebhookKind, string | undefined]> = [
    ['webhook', config.notify.webhookUrl],
    ['apprise', config.notify.appriseUrl],
  ];
  for (const [kind, url] of made) {
    if (!url) continue;
    const sender = new WebhookSender({
      kind,
      url,
      jsonKey: config.notify.webhookJsonKey,
      timeoutMs: deps.timeoutMs,
      secrets: secretsOf(config),
    });
    const outbox = outboxFor(config, deps, {
      channel: kind,
      name: `outbox-${kind}`,
      chats: [{ chatId: kind }],
      sender,
    });
    deps.log.info(
      { event: 'notifier', channel: kind, enabled: true, url: sender.origin, pending: outbox.depth },
      `${kind} notifier on: ${sender.origin}`,
    );
    out.push(new OutboxNotifier(outbox, async () => undefined, deps.log, config.telegram.severities, kind));
  }
  return out;
}

function telegramChannel(config: Config, deps: NotifierDeps): Notifier | undefined {
  const { log } = deps;
  const tg = config.telegram;
  if (!tg.botToken || tg.chats.length === 0) {
    const why = !tg.botToken
      ? 'TELEGRAM_BOT_TOKEN is not set'
      : 'TELEGRAM_CHAT_ID is empty (the bot token alone names no chat)';
    const alone = !config.notify.webhookUrl && !config.notify.appriseUrl;
    log.info(
      { event: 'notifier', channel: 'telegram', enabled: false },
      `Telegram notifier off: ${why}${alone ? '; escalations go to the audit log and metrics only' : ''}`,
    );
    return undefined;
  }
  const telegram = new TelegramNotifier({
    token: tg.botToken,
    apiUrl: tg.apiUrl,
    dispatcher: deps.dispatcher,
    timeoutMs: deps.timeoutMs,
    // A token that came in through an alert label, a reason or free text never reaches a chat.
    secrets: secretsOf(config),
  });
  const outbox = outboxFor(config, deps, {
    channel: 'telegram',
    name: 'outbox',
    chats: tg.chats,
    sender: telegram,
    // With controls on (TELEGRAM_ALLOWED_USERS), escalation messages carry their buttons.
    keyboard: tg.controls ? keyboardFor : undefined,
  });
  log.info(
    {
      event: 'notifier',
      channel: 'telegram',
      enabled: true,
      chats: tg.chats.map((c) => (c.topicId === undefined ? c.chatId : `${c.chatId}:${c.topicId}`)),
      api: new URL(tg.apiUrl).origin,
      pending: outbox.depth,
      controls: tg.controls,
    },
    `Telegram notifier on: ${tg.chats.length} chat(s)${tg.controls ? `, buttons and commands for ${tg.allowedUsers.length} user(s)` : ''}`,
  );
  return new OutboxNotifier(outbox, () => telegram.close(), log, tg.severities, 'telegram');
}
