// buildService(config, overrides): the one composition root. The process (server.ts), the benchmarks
// and the test fixtures build the service through it, so its wiring cannot drift apart between them;
// each passes only what it does differently (a stub DockerClient, a ManualClock, a captured log).
// It builds and never starts: listening, signals and the background inputs stay with the caller.
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { ActionRegistry } from './actions/handler.js';
import { defaultActions } from './actions/registry.js';
import type { Config } from './config.js';
import { type Clock, systemClock } from './core/clock.js';
import type { CompiledRule } from './core/rules.js';
import { loadRulesFile } from './inputs/rules-file.js';
import type { DockerClient } from './docker/client.js';
import { DockerodeClient } from './docker/dockerode-client.js';
import { Engine } from './engine/engine.js';
import { buildApp } from './http/app.js';
import { createLogger, loggerOptions } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import { type EscalationSink, LogEscalationSink, type TextNotifier } from './notifiers/escalation.js';
import { createNotifier, type Notifier } from './notifiers/index.js';
import type { WriteFn } from './state/journal.js';
import { ChangeFeed } from './state/change-feed.js';
import { Store } from './state/store.js';
import { ScaleDown } from './inputs/scale-down.js';
import { AlertmanagerEscalations, FanoutSink } from './notifiers/am-escalations.js';
import { AlertmanagerSilencer, endpoint } from './notifiers/silences.js';
import { UpdateChecker } from './inputs/updates.js';
import { Forecaster } from './inputs/forecasts.js';
import { TelegramUpdates } from './inputs/telegram-updates.js';
import { MutedSink } from './notifiers/escalation.js';
import { TelegramNotifier } from './notifiers/telegram.js';
import { TelegramControl } from './notifiers/telegram-control.js';
import { secretsOf } from './config.js';

export interface ServiceOverrides {
  readonly docker?: DockerClient;
  readonly clock?: Clock;
  readonly log?: Logger;
  readonly metrics?: Metrics;
  /** The engine's actions; defaultActions() unless a test or bench hands in its own. */
  readonly actions?: ActionRegistry;
  /** Compiled RULES_FILE rules; loaded from config.rulesFile when not given. */
  readonly rules?: ReadonlyArray<CompiledRule>;
  /** Builds the humans' channel (createNotifier by default); null for none. */
  readonly notifier?: ((parts: { config: Config; log: Logger; metrics: Metrics }) => Notifier) | null;
  /** Where the engine raises escalations: the notifier, or the audit log when there is none. */
  readonly escalations?: EscalationSink;
  /** Free text for the admin API: the notifier when it is on. */
  readonly textNotifier?: TextNotifier;
  /** The state journal's write port (a test's failing disk); fs.writeSync by default. */
  readonly journalWrite?: WriteFn;
  /** Prune the store now and on its timer (the process does; tests and benches prune when they say). */
  readonly pruneOnTimer?: boolean;
}

export type Service = Awaited<ReturnType<typeof buildService>>;

/**
 * Builds log, metrics, Docker client, durable state, notifier, engine and app. Throws StateOpenError
 * when DATA_DIR cannot be used (the store or the notifier's outbox).
 */
export async function buildService(config: Config, o: ServiceOverrides = {}) {
  const log = o.log ?? createLogger(loggerOptions(config));
  const metrics = o.metrics ?? createMetrics(new Registry());
  const clock = o.clock ?? systemClock;
  const docker = o.docker ?? new DockerodeClient(config.dockerHost, config.dockerTimeoutMs);
  const actions =
    o.actions ??
    defaultActions({
      updates: {
        autopatch: config.autopatch,
        // Counted; a rolled-back image is remembered, so check runs do not apply it again.
        onResult: (result, u) => {
          metrics.updates.inc({ result });
          try {
            if (result === 'rolled_back' && u.image)
              store.putRejectedUpdate(u.container, { image: u.image, at: clock.now() });
            if (result === 'updated') store.putRejectedUpdate(u.container, undefined);
          } catch (err) {
            log.error({ err, container: u.container }, 'cannot record the outcome of an update');
          }
        },
      },
    });
  // The rules name actions: checked against the ones this service has.
  const rules = o.rules ?? (config.rulesFile ? loadRulesFile(config.rulesFile, actions) : []);
  // Every durable write is also news for the status page's event stream.
  const changes = new ChangeFeed(clock);
  const store = new Store(config.dataDir, log, { write: o.journalWrite, onWrite: (c) => changes.touch(c) });
  const notifier =
    o.notifier === null
      ? undefined
      : (o.notifier?.({ config, log, metrics }) ?? createNotifier(config, { log, metrics }));
  // Caps on closed incidents and remediations, expiry of de-duplication keys: now and on a timer.
  if (o.pruneOnTimer) store.startPruning(clock);
  // With ALERTMANAGER_URL: the alert a remediation started from is silenced while it runs, and (with
  // ESCALATE_VIA=…,alertmanager) every escalation is also an AutohealEscalation alert there.
  const am = config.alertmanager.url ? endpoint(config.alertmanager.url) : undefined;
  const escalationAlerts =
    am && config.alertmanager.escalate
      ? new AlertmanagerEscalations(
          { base: am.base, authorization: am.auth, circuitCooldownMs: config.policy.circuitCooldownMs },
          { store, log, metrics, clock },
        )
      : undefined;
  const silences = config.alertmanager.url
    ? new AlertmanagerSilencer(
        {
          url: config.alertmanager.url,
          maxMs: config.alertmanager.silenceMaxMs,
          onRecovered: (key) => escalationAlerts?.resolve(key),
        },
        { store, log, metrics, clock },
      )
    : undefined;
  // Escalations about a container silenced from the chat ("Silence 1 h") are held until it ends.
  const humans = new MutedSink(
    o.escalations ?? (config.escalateViaTelegram ? notifier : undefined) ?? new LogEscalationSink(log),
    (container) => store.mute(container),
    () => clock.now(),
    log,
  );
  // Telegram controls (TELEGRAM_ALLOWED_USERS): taps and commands in, through the admin API.
  const tg = config.telegram;
  explainControls(config, log);
  const bot =
    tg.controls && tg.botToken
      ? new TelegramNotifier({ token: tg.botToken, apiUrl: tg.apiUrl, secrets: secretsOf(config) })
      : undefined;
  let control: TelegramControl | undefined;
  const telegramUpdates = bot
    ? new TelegramUpdates({
        mode: tg.updates === 'webhook' ? 'webhook' : 'poll',
        api: bot,
        dataDir: config.dataDir,
        log,
        metrics,
        clock,
        handle: async (u, at) => control?.handle(u, at),
        webhook:
          tg.updates === 'webhook' && tg.webhookUrl && tg.webhookSecret
            ? { url: tg.webhookUrl, secret: tg.webhookSecret }
            : undefined,
      })
    : undefined;
  const engine = new Engine({
    config,
    docker,
    store,
    metrics,
    log,
    clock,
    silences,
    escalations: escalationAlerts ? new FanoutSink([humans, escalationAlerts], log) : humans,
    actions,
    rules,
  });
  const updates = new UpdateChecker({ docker, engine, config, store, metrics, log, clock });
  // Services an alert scaled up step back down once it resolved (SCALE_DOWN_STABILIZATION).
  const scaleDown = new ScaleDown({ config, engine, store, clock, log });
  const textNotifier = o.textNotifier ?? (notifier?.enabled ? notifier : undefined);
  // Forecasts from Prometheus (PROMETHEUS_URL) place preventive actions before a predicted failure.
  const forecasts = new Forecaster({
    config,
    docker,
    engine,
    store,
    metrics,
    log,
    clock,
    notifier: textNotifier,
  });
  const app = await buildApp(config, {
    updates,
    docker,
    metrics,
    log,
    clock,
    store,
    engine,
    rules,
    notifier: textNotifier,
    forecasts,
    telegram:
      telegramUpdates && tg.updates === 'webhook' && tg.webhookSecret
        ? { secret: tg.webhookSecret, receive: (u) => telegramUpdates.receive(u) }
        : undefined,
    changes,
    outboxDepth: () => notifier?.depth ?? 0,
  });
  if (bot) {
    const auth = `Bearer ${config.adminToken ?? ''}`;
    control = new TelegramControl({
      api: bot,
      // In-process calls of the admin API: the same routes, checks and audit lines as curl.
      admin: async (r) => {
        const res = await app.inject({
          method: r.method,
          url: r.url,
          ...(r.body ? { payload: r.body } : {}),
          headers: { authorization: auth, ...r.headers },
        });
        let body: unknown;
        try {
          body = res.json();
        } catch {
          body = undefined;
        }
        return { status: res.statusCode, body };
      },
      log,
      metrics,
      clock,
      chats: tg.chats,
      allowedUsers: new Set(tg.allowedUsers),
      mute: (target, until, by) => store.batch(() => store.putMute(target, { until, by }, clock.now())),
      silence: silences ? (target, until, by) => silences.silenceContainer(target, until, by) : undefined,
      followMs: config.verifyTimeoutMs + 120_000,
    });
  }
  return {
    config,
    docker,
    clock,
    log,
    metrics,
    rules,
    store,
    notifier,
    engine,
    updates,
    scaleDown,
    forecasts,
    telegramUpdates,
    changes,
    app,
    /** Starts the notifier's delivery loop, the engine (replay, then intake) and the scale-down timer. */
    start(): void {
      notifier?.start();
      engine.start();
      scaleDown.start();
      forecasts.start();
      escalationAlerts?.start();
      void control?.start().finally(() => telegramUpdates?.start());
    },
    /** Stops taking requests, lets running remediations finish within graceMs, then closes the state. */
    async close(graceMs: number): Promise<void> {
      // Taps and commands first: the one being handled finishes; the rest wait in the journal.
      control?.stop();
      await telegramUpdates?.stop();
      await bot?.close();
      await app.close();
      scaleDown.stop();
      await forecasts.stop();
      await engine.stop(graceMs);
      // The last expiries of silences (a remediation that just ended) are sent before the state closes.
      await silences?.idle();
      await escalationAlerts?.stop();
      // After the engine: escalations raised while remediations finish are still journalled.
      await notifier?.close();
      store.close();
      changes.stop();
    },
  };
}

/** Says once at start-up why the chat controls are off when an allow-list asks for them. */
function explainControls(config: Config, log: Logger): void {
  const tg = config.telegram;
  if (tg.controls) {
    log.info(
      { event: 'telegram_controls', enabled: true, users: tg.allowedUsers.length, updates: tg.updates },
      `Telegram controls on: buttons and commands for ${tg.allowedUsers.length} user(s), updates by ${tg.updates === 'webhook' ? 'webhook' : 'long polling'}`,
    );
    return;
  }
  if (tg.allowedUsers.length === 0) return;
  const why = !tg.botToken
    ? 'TELEGRAM_BOT_TOKEN is not set'
    : tg.chats.length === 0
      ? 'TELEGRAM_CHAT_ID is empty'
      : tg.updates === 'off'
        ? 'TELEGRAM_UPDATES=off'
        : 'ADMIN_TOKEN is not set (a tap acts through the admin API)';
  log.warn({ event: 'telegram_controls', enabled: false, why }, `Telegram controls off: ${why}`);
}
