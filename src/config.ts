// The service's configuration: one TypeBox schema for the environment, validated once at start-up.
// loadConfig(env) is the only reader of environment variables; everything else receives a frozen Config.
import { readFileSync } from 'node:fs';
import { Cron } from 'croner';
import { type Static, Type } from 'typebox';
import { Value } from 'typebox/value';
import type { ForecastGuards } from './core/forecast.js';
import type { PolicyConfig } from './core/policy.js';
import type { WatchScope } from './core/scope.js';
import type { UpdateMode } from './core/updates.js';
import { dockerConfigDir } from './registry/auth.js';

const Bool = (def: boolean, description: string) =>
  Type.Union([Type.Literal('true'), Type.Literal('false'), Type.Literal('1'), Type.Literal('0')], {
    default: String(def),
    description,
  });

const Seconds = (def: number, description: string, minimum = 0, maximum = 31_536_000) =>
  Type.Integer({ minimum, maximum, default: def, description: `${description} (seconds)` });

/** Every variable the service reads, with its default. `.env.example` and the README table follow this. */
export const EnvSchema = Type.Object({
  PORT: Type.Integer({ minimum: 1, maximum: 65535, default: 9095, description: 'HTTP port' }),
  HOST: Type.String({
    default: '127.0.0.1',
    minLength: 1,
    description: 'Address to listen on (0.0.0.0 inside a container)',
  }),
  DOCKER_HOST: Type.String({
    default: 'unix:///var/run/docker.sock',
    pattern: '^(unix|tcp|http|https)://.+',
    description: 'Docker engine address: unix:///path or tcp://host:port',
  }),
  DOCKER_TIMEOUT: Seconds(
    10,
    'Timeout of single Docker API calls (stop/restart get their stop timeout on top)',
    1,
  ),
  WEBHOOK_TOKEN: Type.Optional(
    Type.String({
      minLength: 16,
      description: 'Token Alertmanager must send (Bearer or basic-auth password)',
    }),
  ),
  WEBHOOK_TOKEN_FILE: Type.Optional(Type.String({ minLength: 1, description: 'File holding WEBHOOK_TOKEN' })),
  WEBHOOK_BODY_LIMIT: Type.Integer({
    minimum: 1024,
    maximum: 67_108_864,
    default: 1_048_576,
    description: 'Largest accepted webhook body (bytes)',
  }),
  HTTP_REQUEST_TIMEOUT: Seconds(
    30,
    'Time a client has to send one whole request, body included; then it is cut off',
    1,
    86_400,
  ),
  HTTP_HEADERS_TIMEOUT: Seconds(
    10,
    'Time a client has to send the request headers (at most HTTP_REQUEST_TIMEOUT)',
    1,
    86_400,
  ),
  HTTP_KEEP_ALIVE_TIMEOUT: Seconds(65, 'An idle keep-alive connection is closed after this time', 1, 86_400),
  HTTP_MAX_CONNECTIONS: Type.Integer({
    minimum: 1,
    maximum: 65_535,
    default: 256,
    description: 'Open HTTP connections in all; more are closed at once (file descriptors stay for Docker)',
  }),
  HTTP_MAX_CONNECTIONS_PER_CLIENT: Type.Integer({
    minimum: 1,
    maximum: 65_535,
    default: 32,
    description: 'Open HTTP connections from one address (IPv6: one /64); more are closed at once',
  }),
  ADMIN_TOKEN: Type.Optional(
    Type.String({ minLength: 16, description: 'Token for the admin API and the CLI' }),
  ),
  ADMIN_TOKEN_FILE: Type.Optional(Type.String({ minLength: 1, description: 'File holding ADMIN_TOKEN' })),
  WATCH_SCOPE: Type.Union([Type.Literal('label'), Type.Literal('project'), Type.Literal('all')], {
    default: 'label',
    description: 'Which containers may be healed: label (autoheal.enable=true), project, all',
  }),
  COMPOSE_PROJECT: Type.Optional(
    Type.String({ minLength: 1, description: 'Compose project watched when WATCH_SCOPE=project' }),
  ),
  WATCHDOG_INTERVAL: Seconds(30, 'Reconcile poll interval', 1),
  WATCHER_HEAL: Bool(true, 'Heal unhealthy/exited containers seen by the health watcher (off: metrics only)'),
  START_PERIOD: Seconds(0, 'Default grace period after a container starts before the watcher heals it'),
  MAX_RESTART_ATTEMPTS: Type.Integer({
    minimum: 1,
    maximum: 100,
    default: 3,
    description: 'Actions without recovery before a container is given up',
  }),
  RESTART_COOLDOWN: Seconds(60, 'Base cooldown between actions on one container; doubles per failure'),
  BACKOFF_MAX: Seconds(600, 'Cap of the growing cooldown'),
  STABLE_PERIOD: Seconds(600, 'Healthy this long and the attempt counter resets'),
  VERIFY_TIMEOUT: Seconds(120, 'How long a remediation may take to show a healthy container', 1),
  VERIFY_GRACE: Seconds(10, 'Running this long counts as recovered for containers without a health check'),
  DEFAULT_STOP_TIMEOUT: Seconds(10, 'Stop timeout when the container sets none'),
  MAX_PARALLEL: Type.Integer({
    minimum: 1,
    maximum: 256,
    default: 16,
    description:
      "Engine actions at the same time; a restart's stop signal never waits for a slot, only its start does",
  }),
  CIRCUIT_MAX_ACTIONS: Type.Integer({
    minimum: 1,
    maximum: 100_000,
    default: 30,
    description: 'Automatic actions per CIRCUIT_WINDOW before the breaker opens',
  }),
  CIRCUIT_WINDOW: Seconds(300, 'Circuit breaker window', 1),
  CIRCUIT_COOLDOWN: Seconds(900, 'How long an open breaker pauses automatic actions', 1),
  RULES_FILE: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'YAML file mapping alerts without a remediation label to actions',
    }),
  ),
  CLEANUP_PRUNE_UNTIL: Type.String({
    default: '24h',
    pattern: '^[0-9]+(s|m|h)$',
    description: 'Prune only objects older than this (Docker until filter)',
  }),
  CLEANUP_PRUNE_VOLUMES: Bool(false, 'Let cleanup prune unused volumes'),
  CLEANUP_LOG_MAX_BYTES: Type.Integer({
    minimum: 0,
    default: 104_857_600,
    description: 'json-file logs of watched containers above this size are truncated by cleanup (0: never)',
  }),
  SCHEDULES: Type.String({
    default: '',
    description: 'Scheduled maintenance: "CRON=action[:target]" entries separated by ";"',
  }),
  AUTOPATCH: Type.Union([Type.Literal('apply'), Type.Literal('notify'), Type.Literal('off')], {
    default: 'off',
    description:
      'Image updates for containers without an autoheal.update label: apply (update, roll back when unhealthy), notify (list only), off',
  }),
  SCALE_MIN: Type.Integer({
    minimum: 0,
    maximum: 1000,
    default: 1,
    description: 'Fewest replicas scale_down leaves a service without an autoheal.scale.min label',
  }),
  SCALE_MAX: Type.Integer({
    minimum: 1,
    maximum: 1000,
    default: 5,
    description: 'Most replicas scale_up gives a service without an autoheal.scale.max label',
  }),
  PROMETHEUS_URL: Type.Optional(
    Type.String({
      minLength: 1,
      pattern: '^https?://',
      description:
        'Prometheus base URL the service reads forecasts from (memory against its limit, disk filling); unset: no forecasts',
    }),
  ),
  FORECAST_INTERVAL: Seconds(300, 'How often the forecasts run', 1),
  FORECAST_WINDOW: Seconds(21600, 'The window of samples a forecast fits a trend to', 10),
  FORECAST_HORIZON: Seconds(86400, 'Only a failure predicted within this long is acted on', 60),
  FORECAST_LEAD: Seconds(
    3600,
    'A preventive action comes at the latest this long before the predicted failure',
    0,
  ),
  FORECAST_MIN_POINTS: Type.Integer({
    minimum: 3,
    maximum: 10_000,
    default: 20,
    description: 'A forecast needs at least this many samples in its window',
  }),
  FORECAST_MIN_R2: Type.String({
    default: '0.9',
    pattern: '^(0(\\.[0-9]+)?|1(\\.0+)?)$',
    description: 'A forecast is acted on only when its fit explains this share of the variance (R², 0 to 1)',
  }),
  FORECAST_AGREE_RUNS: Type.Integer({
    minimum: 1,
    maximum: 100,
    default: 3,
    description: 'Consecutive forecast runs that must agree before a preventive action',
  }),
  FORECAST_MAX_ACTIONS: Type.Integer({
    minimum: 0,
    maximum: 1000,
    default: 3,
    description: 'At most this many preventive actions per day on this host (0: forecasts only, no action)',
  }),
  MAINTENANCE_WINDOW: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        'Cron expression of the times preventive actions may start (5 or 6 fields, local time); unset: as soon as the guards allow',
    }),
  ),
  SCALE_DOWN_STABILIZATION: Seconds(
    300,
    'After the alerts that scaled a service up resolve, it steps down one replica per this long',
    1,
  ),
  ALERTMANAGER_URL: Type.Optional(
    Type.String({
      minLength: 1,
      pattern: '^https?://',
      description:
        'Alertmanager base URL: an alert is silenced while the remediation it started runs (unset: no silences)',
    }),
  ),
  ESCALATE_VIA: Type.String({
    default: 'telegram',
    pattern: '^(telegram|alertmanager)(,(telegram|alertmanager))*$',
    description:
      'Where escalations go, comma separated: telegram (with a bot token) and alertmanager (an AutohealEscalation alert, with ALERTMANAGER_URL)',
  }),
  ALERTMANAGER_SILENCE_MAX: Seconds(
    3600,
    'The longest a silence can last, if the service never comes back to expire it',
    60,
  ),
  DOCKER_CONFIG: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'Directory of the Docker config.json whose registry credentials updates use (read only)',
    }),
  ),
  DATA_DIR: Type.String({ default: './data', minLength: 1, description: 'Durable state directory' }),
  LOG_FILE: Type.String({
    default: './logs/auto_repair.log',
    description: 'Audit log (JSON lines); empty: stdout only',
  }),
  LOG_MAX_BYTES: Type.Integer({
    minimum: 4096,
    maximum: 68_719_476_736,
    default: 52_428_800,
    description: 'The audit log is rotated before it grows past this size (bytes)',
  }),
  LOG_MAX_FILES: Type.Integer({
    minimum: 1,
    maximum: 1000,
    default: 5,
    description: 'Audit log files kept, the current one included (LOG_FILE, LOG_FILE.1, ...)',
  }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info', description: 'Log level' },
  ),
  DRY_RUN: Bool(false, 'Decide, log and count, but touch nothing'),
  NODE_NAME: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'This Docker host; alerts labelled for another host are ignored',
    }),
  ),
  SELF_CONTAINER_ID: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'The service own container id or name (auto-detected inside Docker)',
    }),
  ),
  TELEGRAM_BOT_TOKEN: Type.Optional(Type.String({ minLength: 1, description: 'Telegram bot token' })),
  TELEGRAM_BOT_TOKEN_FILE: Type.Optional(
    Type.String({ minLength: 1, description: 'File holding TELEGRAM_BOT_TOKEN' }),
  ),
  TELEGRAM_CHAT_ID: Type.String({
    default: '',
    pattern: '^$|^-?[0-9]+(:[0-9]+)?(,-?[0-9]+(:[0-9]+)?)*$',
    description: 'Chat ids, comma separated; chat:topic for a forum topic',
  }),
  TELEGRAM_API_URL: Type.String({
    default: 'https://api.telegram.org',
    pattern: '^https?://',
    description: 'Bot API base URL (a self-hosted Bot API server works too)',
  }),
  TELEGRAM_ALLOWED_USERS: Type.String({
    default: '',
    pattern: '^$|^[0-9]{1,15}(,[0-9]{1,15})*$',
    description:
      'Telegram user ids that may act from the chat (buttons and commands), comma separated; empty: nobody, and no buttons',
  }),
  TELEGRAM_UPDATES: Type.Union([Type.Literal('poll'), Type.Literal('webhook'), Type.Literal('off')], {
    default: 'poll',
    description:
      'How taps and commands arrive: poll (getUpdates, no public URL needed), webhook (Telegram posts to TELEGRAM_WEBHOOK_URL), off',
  }),
  TELEGRAM_WEBHOOK_URL: Type.Optional(
    Type.String({
      minLength: 1,
      pattern: '^https?://',
      description:
        'TELEGRAM_UPDATES=webhook: the public URL Telegram posts updates to, ending in /telegram/webhook (behind your TLS proxy)',
    }),
  ),
  TELEGRAM_WEBHOOK_SECRET: Type.Optional(
    Type.String({
      minLength: 16,
      maxLength: 256,
      pattern: '^[A-Za-z0-9_-]+$',
      description:
        'TELEGRAM_UPDATES=webhook: the secret_token Telegram sends with every update (16-256 of A-Z a-z 0-9 _ -)',
    }),
  ),
  TELEGRAM_WEBHOOK_SECRET_FILE: Type.Optional(
    Type.String({ minLength: 1, description: 'File holding TELEGRAM_WEBHOOK_SECRET' }),
  ),
  WEBHOOK_URL: Type.Optional(
    Type.String({
      minLength: 1,
      pattern: '^https?://',
      description:
        'A chat webhook (Discord, Slack, ntfy, …) escalations are also posted to as JSON, as docker-autoheal does',
    }),
  ),
  WEBHOOK_JSON_KEY: Type.String({
    default: 'text',
    pattern: '^[A-Za-z0-9_.-]{1,64}$',
    description: 'The JSON key WEBHOOK_URL gets the text under (Slack: text, Discord: content)',
  }),
  APPRISE_URL: Type.Optional(
    Type.String({
      minLength: 1,
      pattern: '^https?://',
      description: 'An Apprise API notify endpoint escalations are also posted to (title, body)',
    }),
  ),
  NOTIFY_SEVERITIES: Type.String({
    default: 'critical',
    description: 'Alert severities forwarded to Telegram, comma separated',
  }),
  SHUTDOWN_GRACE: Seconds(30, 'How long in-flight remediations may run on shutdown', 0),
});
export type Env = Static<typeof EnvSchema>;

export type { PolicyConfig, WatchScope };

// core/scope.ts writes the scopes out (core imports nothing from here); this fails the type check the
// day the schema's WATCH_SCOPE and core's WatchScope stop being the same set.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const scopesAgree: Same<Env['WATCH_SCOPE'], WatchScope> = true;
void scopesAgree;
const modesAgree: Same<Env['AUTOPATCH'], UpdateMode> = true;
void modesAgree;

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly dockerHost: string;
  readonly dockerTimeoutMs: number;
  readonly webhookToken: string | undefined;
  readonly webhookBodyLimit: number;
  readonly adminToken: string | undefined;
  readonly http: HttpLimits;
  readonly scope: WatchScope;
  readonly composeProject: string | undefined;
  readonly nodeName: string | undefined;
  readonly selfContainerId: string | undefined;
  readonly dryRun: boolean;
  readonly watchdogIntervalMs: number;
  readonly watcherHeal: boolean;
  readonly startPeriodMs: number;
  readonly policy: PolicyConfig;
  readonly verifyTimeoutMs: number;
  readonly verifyGraceMs: number;
  readonly defaultStopTimeoutSec: number;
  readonly maxParallel: number;
  readonly rulesFile: string | undefined;
  readonly cleanup: CleanupConfig;
  readonly schedules: string;
  /** Image updates (auto_patcher): the mode of a container without an autoheal.update label. */
  readonly autopatch: UpdateMode;
  /** Alertmanager's API (silences while the service heals); undefined url: off. */
  readonly alertmanager: {
    readonly url: string | undefined;
    readonly silenceMaxMs: number;
    /** ESCALATE_VIA has alertmanager: escalations are also posted as alerts. */
    readonly escalate: boolean;
  };
  /** ESCALATE_VIA has telegram: escalations go to the Telegram notifier (when it is configured). */
  readonly escalateViaTelegram: boolean;
  /** Scaling (auto_scaler): default limits, and the window between steps back down. */
  readonly scale: ScaleConfig;
  /** Forecasts (predictive_repair_agent); prometheusUrl undefined: off. */
  readonly forecast: ForecastConfig;
  /** Where the Docker config.json with registry credentials is (DOCKER_CONFIG, else ~/.docker). */
  readonly dockerConfigDir: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly logMaxBytes: number;
  readonly logMaxFiles: number;
  readonly logLevel: Env['LOG_LEVEL'];
  readonly telegram: TelegramConfig;
  /** Channels beyond Telegram, each behind its own outbox (undefined: off). */
  readonly notify: {
    readonly webhookUrl: string | undefined;
    readonly webhookJsonKey: string;
    readonly appriseUrl: string | undefined;
  };
  readonly shutdownGraceMs: number;
}

/** What one client, and all clients together, may hold of the HTTP server (ms and counts). */
export interface HttpLimits {
  readonly requestTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerClient: number;
}

export interface ScaleConfig {
  readonly min: number;
  readonly max: number;
  readonly downStabilizationMs: number;
}

export interface CleanupConfig {
  readonly pruneUntil: string;
  readonly pruneVolumes: boolean;
  readonly logMaxBytes: number;
}

export interface ForecastConfig {
  readonly prometheusUrl: string | undefined;
  readonly intervalMs: number;
  readonly windowMs: number;
  readonly maintenanceWindow: string | undefined;
  readonly guards: ForecastGuards;
}

export interface TelegramConfig {
  readonly botToken: string | undefined;
  readonly chats: ReadonlyArray<{ readonly chatId: string; readonly topicId: number | undefined }>;
  readonly apiUrl: string;
  readonly severities: ReadonlyArray<string>;
  /** TELEGRAM_ALLOWED_USERS: who may act from the chat. */
  readonly allowedUsers: ReadonlyArray<number>;
  readonly updates: 'poll' | 'webhook' | 'off';
  readonly webhookUrl: string | undefined;
  readonly webhookSecret: string | undefined;
  /**
   * Buttons and commands are on: a bot token, a chat, an allow-list, an update mode, and ADMIN_TOKEN
   * (a tap acts through the admin API, as an operator's curl would).
   */
  readonly controls: boolean;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const truthy = (v: string) => v === 'true' || v === '1';

function readSecret(env: Record<string, string | undefined>, name: string): string | undefined {
  const direct = env[name];
  const file = env[`${name}_FILE`];
  if (direct !== undefined && direct !== '' && file !== undefined && file !== '') {
    throw new ConfigError(`${name} and ${name}_FILE are both set: set only one`);
  }
  if (file === undefined || file === '') return direct === '' ? undefined : direct;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${name}_FILE: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  const value = text.trim();
  if (value.length < 16 && name !== 'TELEGRAM_BOT_TOKEN') {
    throw new ConfigError(
      `${name}_FILE: the token in ${file} is ${value.length} characters; it needs at least 16 (make one with: openssl rand -hex 24)`,
    );
  }
  if (value === '') throw new ConfigError(`${name}_FILE: ${file} is empty`);
  return value;
}

/**
 * What a right value of a patterned setting looks like, in words and an example: the message for a
 * wrong one says this instead of the pattern (test/unit/config.test.ts: every pattern has one).
 */
export const VALUE_HINTS: Readonly<Record<string, string>> = {
  DOCKER_HOST: 'an engine address such as unix:///var/run/docker.sock or tcp://127.0.0.1:2375',
  CLEANUP_PRUNE_UNTIL: 'an age in seconds, minutes or hours such as 90s, 30m or 24h',
  PROMETHEUS_URL: 'an http(s) URL such as http://127.0.0.1:9090',
  FORECAST_MIN_R2: 'a number from 0 to 1 such as 0.9',
  ALERTMANAGER_URL: 'an http(s) URL such as http://127.0.0.1:9093',
  ESCALATE_VIA: 'telegram, alertmanager, or both comma separated (telegram,alertmanager)',
  TELEGRAM_CHAT_ID:
    "a chat id is a number: a private chat's is your user id (e.g. 123456789), a group's or channel's is negative (e.g. -1001234567890), not its @name; several are comma separated, and chat:topic (e.g. -1001234567890:42) names a forum topic. Send the bot a message and read chat.id from https://api.telegram.org/bot<token>/getUpdates",
  TELEGRAM_API_URL: 'an http(s) URL such as https://api.telegram.org',
  TELEGRAM_ALLOWED_USERS:
    'Telegram user ids (numbers such as 123456789, not @names), comma separated; @userinfobot tells yours',
  TELEGRAM_WEBHOOK_URL:
    'the public https URL of /telegram/webhook, e.g. https://heal.example.org/telegram/webhook',
  TELEGRAM_WEBHOOK_SECRET: '16 to 256 characters of A-Z, a-z, 0-9, _ and -',
  WEBHOOK_URL: 'an http(s) URL such as https://discord.com/api/webhooks/ID/TOKEN',
  WEBHOOK_JSON_KEY:
    'a JSON key of up to 64 characters of A-Z, a-z, 0-9, _ . and - (Slack: text, Discord: content)',
  APPRISE_URL: 'an http(s) URL such as http://apprise:8000/notify/autoheal',
};

/** The one-line message of a setting whose value the schema refused. Tokens are never echoed. */
function invalidValue(key: string, schema: unknown, value: string | undefined): string {
  const s = schema as {
    anyOf?: Array<{ const?: unknown }>;
    type?: string;
    minimum?: number;
    maximum?: number;
    minLength?: number;
    maxLength?: number;
    pattern?: string;
  };
  const secret = /TOKEN|SECRET/.test(key);
  const got = secret ? '' : `, got ${JSON.stringify(value)}`;
  if (
    s.type === 'string' &&
    typeof value === 'string' &&
    s.minLength !== undefined &&
    value.length < s.minLength
  ) {
    const make = secret ? ` (make one with: openssl rand -hex 24)` : '';
    return `${key} is ${value.length} character${value.length === 1 ? '' : 's'}; it needs at least ${s.minLength}${make}`;
  }
  if (
    s.type === 'string' &&
    typeof value === 'string' &&
    s.maxLength !== undefined &&
    value.length > s.maxLength
  ) {
    return `${key} is ${value.length} characters; it may have at most ${s.maxLength}`;
  }
  if (s.anyOf)
    return `${key}: expected one of ${s.anyOf.map((o) => JSON.stringify(o.const)).join(', ')}${got}`;
  if (s.type === 'integer') {
    const range =
      s.minimum !== undefined && s.maximum !== undefined
        ? ` from ${s.minimum} to ${s.maximum}`
        : s.minimum !== undefined
          ? ` >= ${s.minimum}`
          : '';
    return `${key}: expected an integer${range}${got}`;
  }
  const hint = VALUE_HINTS[key];
  if (hint)
    return `${key}: ${secret ? 'not valid' : `${JSON.stringify(value)} is not valid`}; expected ${hint}`;
  return `${key}: expected a ${s.type ?? 'value'}${got}`;
}

/** Validates the environment and returns a frozen Config, or throws ConfigError naming the variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(EnvSchema.properties)) {
    const v = env[key];
    // An empty value means "unset" so that `FOO=` in an env file takes the default.
    if (v !== undefined && (v !== '' || key === 'LOG_FILE')) raw[key] = v;
  }
  const withDefaults = Value.Default(EnvSchema, Value.Clone(raw));
  const converted = Value.Convert(EnvSchema, withDefaults);
  if (!Value.Check(EnvSchema, converted)) {
    const [first] = Value.Errors(EnvSchema, converted);
    const key = first?.instancePath.replace(/^\//, '').split('/')[0] ?? '';
    const props = EnvSchema.properties as Record<string, unknown>;
    throw new ConfigError(
      key
        ? invalidValue(key, props[key], env[key])
        : `invalid configuration: ${first?.message ?? 'unknown error'}`,
    );
  }
  const e = converted as Env;
  if (e.WATCH_SCOPE === 'project' && !e.COMPOSE_PROJECT) {
    throw new ConfigError('COMPOSE_PROJECT: required when WATCH_SCOPE=project');
  }
  if (e.ESCALATE_VIA.split(',').includes('alertmanager') && !e.ALERTMANAGER_URL) {
    throw new ConfigError('ESCALATE_VIA: alertmanager needs ALERTMANAGER_URL');
  }
  if (e.SCALE_MIN > e.SCALE_MAX) {
    throw new ConfigError(`SCALE_MIN: must not exceed SCALE_MAX (${e.SCALE_MAX}), got ${e.SCALE_MIN}`);
  }
  if (e.HTTP_HEADERS_TIMEOUT > e.HTTP_REQUEST_TIMEOUT) {
    throw new ConfigError(
      `HTTP_HEADERS_TIMEOUT: must not exceed HTTP_REQUEST_TIMEOUT (${e.HTTP_REQUEST_TIMEOUT}), got ${e.HTTP_HEADERS_TIMEOUT}`,
    );
  }
  if (e.HTTP_MAX_CONNECTIONS_PER_CLIENT > e.HTTP_MAX_CONNECTIONS) {
    throw new ConfigError(
      `HTTP_MAX_CONNECTIONS_PER_CLIENT: must not exceed HTTP_MAX_CONNECTIONS (${e.HTTP_MAX_CONNECTIONS}), got ${e.HTTP_MAX_CONNECTIONS_PER_CLIENT}`,
    );
  }
  const webhookToken = readSecret(env, 'WEBHOOK_TOKEN');
  const adminToken = readSecret(env, 'ADMIN_TOKEN');
  const botToken = readSecret(env, 'TELEGRAM_BOT_TOKEN');
  const webhookSecret = readSecret(env, 'TELEGRAM_WEBHOOK_SECRET');
  if (webhookSecret !== undefined && !/^[A-Za-z0-9_-]{16,256}$/.test(webhookSecret)) {
    throw new ConfigError(
      'TELEGRAM_WEBHOOK_SECRET: 16 to 256 characters of A-Z, a-z, 0-9, _ and - (what Telegram accepts as secret_token)',
    );
  }
  if (
    e.TELEGRAM_UPDATES === 'webhook' &&
    e.TELEGRAM_ALLOWED_USERS !== '' &&
    (!e.TELEGRAM_WEBHOOK_URL || !webhookSecret)
  ) {
    throw new ConfigError(
      'TELEGRAM_UPDATES=webhook needs TELEGRAM_WEBHOOK_URL (the public URL of /telegram/webhook) and TELEGRAM_WEBHOOK_SECRET',
    );
  }
  if (e.MAINTENANCE_WINDOW !== undefined) {
    try {
      // Parsed only: a job without a callback starts no timer.
      new Cron(e.MAINTENANCE_WINDOW, { mode: '5-or-6-parts', paused: true });
    } catch (err) {
      throw new ConfigError(
        `MAINTENANCE_WINDOW: "${e.MAINTENANCE_WINDOW}" is not a cron expression (${(err as Error).message}); e.g. "0 3 * * *" for 03:00 every day`,
      );
    }
  }
  const allowedUsers = e.TELEGRAM_ALLOWED_USERS.split(',').filter(Boolean).map(Number);
  const chats = e.TELEGRAM_CHAT_ID.split(',')
    .filter(Boolean)
    .map((entry) => {
      const [chatId = '', topic] = entry.split(':');
      return Object.freeze({ chatId, topicId: topic === undefined ? undefined : Number(topic) });
    });
  const config: Config = {
    port: e.PORT,
    host: e.HOST,
    dockerHost: e.DOCKER_HOST,
    dockerTimeoutMs: e.DOCKER_TIMEOUT * 1000,
    webhookToken,
    webhookBodyLimit: e.WEBHOOK_BODY_LIMIT,
    adminToken,
    http: Object.freeze({
      requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT * 1000,
      headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT * 1000,
      keepAliveTimeoutMs: e.HTTP_KEEP_ALIVE_TIMEOUT * 1000,
      maxConnections: e.HTTP_MAX_CONNECTIONS,
      maxConnectionsPerClient: e.HTTP_MAX_CONNECTIONS_PER_CLIENT,
    }),
    scope: e.WATCH_SCOPE,
    composeProject: e.COMPOSE_PROJECT,
    nodeName: e.NODE_NAME,
    selfContainerId: e.SELF_CONTAINER_ID,
    dryRun: truthy(e.DRY_RUN),
    watchdogIntervalMs: e.WATCHDOG_INTERVAL * 1000,
    watcherHeal: truthy(e.WATCHER_HEAL),
    startPeriodMs: e.START_PERIOD * 1000,
    policy: Object.freeze({
      maxAttempts: e.MAX_RESTART_ATTEMPTS,
      cooldownMs: e.RESTART_COOLDOWN * 1000,
      backoffMaxMs: Math.max(e.BACKOFF_MAX, e.RESTART_COOLDOWN) * 1000,
      stablePeriodMs: e.STABLE_PERIOD * 1000,
      circuitMaxActions: e.CIRCUIT_MAX_ACTIONS,
      circuitWindowMs: e.CIRCUIT_WINDOW * 1000,
      circuitCooldownMs: e.CIRCUIT_COOLDOWN * 1000,
    }),
    verifyTimeoutMs: e.VERIFY_TIMEOUT * 1000,
    verifyGraceMs: e.VERIFY_GRACE * 1000,
    defaultStopTimeoutSec: e.DEFAULT_STOP_TIMEOUT,
    maxParallel: e.MAX_PARALLEL,
    rulesFile: e.RULES_FILE,
    cleanup: Object.freeze({
      pruneUntil: e.CLEANUP_PRUNE_UNTIL,
      pruneVolumes: truthy(e.CLEANUP_PRUNE_VOLUMES),
      logMaxBytes: e.CLEANUP_LOG_MAX_BYTES,
    }),
    schedules: e.SCHEDULES,
    autopatch: e.AUTOPATCH,
    alertmanager: Object.freeze({
      url: e.ALERTMANAGER_URL,
      silenceMaxMs: e.ALERTMANAGER_SILENCE_MAX * 1000,
      escalate: e.ESCALATE_VIA.split(',').includes('alertmanager'),
    }),
    escalateViaTelegram: e.ESCALATE_VIA.split(',').includes('telegram'),
    scale: Object.freeze({
      min: e.SCALE_MIN,
      max: e.SCALE_MAX,
      downStabilizationMs: e.SCALE_DOWN_STABILIZATION * 1000,
    }),
    forecast: Object.freeze({
      prometheusUrl: e.PROMETHEUS_URL?.replace(/\/+$/, ''),
      intervalMs: e.FORECAST_INTERVAL * 1000,
      windowMs: e.FORECAST_WINDOW * 1000,
      maintenanceWindow: e.MAINTENANCE_WINDOW,
      guards: Object.freeze({
        minPoints: e.FORECAST_MIN_POINTS,
        minR2: Number(e.FORECAST_MIN_R2),
        agreeRuns: e.FORECAST_AGREE_RUNS,
        horizonMs: e.FORECAST_HORIZON * 1000,
        maxActionsPerDay: e.FORECAST_MAX_ACTIONS,
        leadMs: e.FORECAST_LEAD * 1000,
      }),
    }),
    dockerConfigDir: dockerConfigDir({ DOCKER_CONFIG: e.DOCKER_CONFIG }),
    dataDir: e.DATA_DIR,
    logFile: e.LOG_FILE,
    logMaxBytes: e.LOG_MAX_BYTES,
    logMaxFiles: e.LOG_MAX_FILES,
    logLevel: e.LOG_LEVEL,
    notify: Object.freeze({
      webhookUrl: e.WEBHOOK_URL,
      webhookJsonKey: e.WEBHOOK_JSON_KEY,
      appriseUrl: e.APPRISE_URL,
    }),
    telegram: Object.freeze({
      botToken,
      chats: Object.freeze(chats),
      apiUrl: e.TELEGRAM_API_URL.replace(/\/+$/, ''),
      severities: Object.freeze(
        e.NOTIFY_SEVERITIES.split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      ),
      allowedUsers: Object.freeze(allowedUsers),
      updates: e.TELEGRAM_UPDATES,
      webhookUrl: e.TELEGRAM_WEBHOOK_URL,
      webhookSecret,
      controls: Boolean(
        botToken && chats.length > 0 && allowedUsers.length > 0 && e.TELEGRAM_UPDATES !== 'off' && adminToken,
      ),
    }),
    shutdownGraceMs: e.SHUTDOWN_GRACE * 1000,
  };
  return Object.freeze(config);
}

/**
 * Every secret the service knows, for the scrubbers of the log and of the notifiers: the tokens, and
 * the password of a URL that carries one (a Bot API proxy, a Docker engine or Alertmanager behind basic
 * auth).
 */
export function secretsOf(config: Config): string[] {
  const out: string[] = [];
  for (const s of [
    config.webhookToken,
    config.adminToken,
    config.telegram.botToken,
    config.telegram.webhookSecret,
  ])
    if (s) out.push(s);
  // A chat webhook's URL carries its token (Discord, Slack): the whole URL is a secret.
  for (const u of [config.notify.webhookUrl, config.notify.appriseUrl]) if (u) out.push(u);
  for (const u of [config.telegram.apiUrl, config.dockerHost, config.alertmanager.url ?? '']) {
    try {
      const url = new URL(u);
      if (url.password) out.push(decodeURIComponent(url.password));
    } catch {
      // not a URL with credentials
    }
  }
  return out;
}
