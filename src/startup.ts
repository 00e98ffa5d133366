// What the process says at start-up, written as pure functions so each message is tested on its own
// (test/unit/startup.test.ts) and by a spawned server (test/startup.test.ts): the one start-up line
// (where the audit log and the state live, which inputs and channels are on), a port that cannot be
// bound, and an engine socket this process may not open.
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Config } from './config.js';
import { detectSelfContainerId } from './self.js';

export interface StartupSummary {
  /** The fields of the `starting` log line. */
  readonly fields: Record<string, unknown>;
  /** The same in one sentence. */
  readonly message: string;
}

/** Why a channel or input is off, or undefined when it is on. */
function telegramOff(config: Config): string | undefined {
  const tg = config.telegram;
  if (!tg.botToken) return 'TELEGRAM_BOT_TOKEN is not set';
  if (tg.chats.length === 0) return 'TELEGRAM_CHAT_ID is empty';
  if (!config.escalateViaTelegram) return 'ESCALATE_VIA has no telegram';
  return undefined;
}

/**
 * The start-up line: version, where it listens, where the audit log and the state are, and each input
 * and channel on or off (telegram is on only when it can deliver: a bot token and a chat).
 */
export function startupSummary(
  config: Config,
  o: { version: string; schedules: number; rules: number; cwd?: string; envFile?: string | undefined },
): StartupSummary {
  const cwd = o.cwd ?? process.cwd();
  const auditLog = config.logFile === '' ? 'stdout only' : resolve(cwd, config.logFile);
  const state = resolve(cwd, config.dataDir);
  const tgOff = telegramOff(config);
  const inputs = {
    webhook: config.webhookToken ? 'on' : 'off (WEBHOOK_TOKEN is not set)',
    admin: config.adminToken ? 'on' : 'off (ADMIN_TOKEN is not set)',
    watcher: config.watcherHeal ? 'heals' : 'metrics only (WATCHER_HEAL=false)',
    schedules: o.schedules > 0 ? `${o.schedules} entr${o.schedules === 1 ? 'y' : 'ies'}` : 'off',
    rules: config.rulesFile ? `${o.rules} from ${config.rulesFile}` : 'off',
    forecasts: config.forecast.prometheusUrl ? 'on' : 'off',
    autopatch: config.autopatch,
  };
  const channels = {
    telegram: tgOff ? `off (${tgOff})` : `on (${config.telegram.chats.length} chat(s))`,
    telegramControls: config.telegram.controls ? 'on' : 'off',
    webhook: config.notify.webhookUrl ? 'on' : 'off',
    apprise: config.notify.appriseUrl ? 'on' : 'off',
    alertmanager: config.alertmanager.url ? 'on' : 'off',
  };
  const fields = {
    event: 'starting',
    version: o.version,
    listen: `http://${config.host}:${config.port}`,
    envFile: o.envFile === undefined ? 'none' : resolve(cwd, o.envFile),
    auditLog,
    state,
    scope: config.scope,
    dryRun: config.dryRun,
    webhookAuth: Boolean(config.webhookToken),
    adminAuth: Boolean(config.adminToken),
    telegram: tgOff === undefined,
    inputs,
    channels,
    self: config.selfContainerId,
  };
  const on = (r: Record<string, string>) =>
    Object.entries(r)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  const message =
    `autoheal-nexus ${o.version} starting on http://${config.host}:${config.port}` +
    `${config.dryRun ? ' (DRY_RUN: touches nothing)' : ''}; audit log: ${auditLog}; state: ${state}; ` +
    `${o.envFile === undefined ? '' : `settings also from ${resolve(cwd, o.envFile)}; `}` +
    `scope: ${config.scope}; inputs: ${on(inputs)}; channels: ${on(channels)}`;
  return { fields, message };
}

/**
 * The one line for a port the server cannot listen on (EADDRINUSE, EACCES, EADDRNOTAVAIL), naming the
 * settings and what to do; undefined for any other error.
 */
export function listenFailure(err: unknown, config: Pick<Config, 'host' | 'port'>): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const at = `${config.host}:${config.port}`;
  const compose = ' (in docker-compose.yml the published port is AUTOHEAL_PORT, its address BIND_ADDRESS)';
  switch (code) {
    case 'EADDRINUSE':
      return (
        `PORT ${config.port} on HOST ${config.host} is already in use by another program (another ` +
        `autoheal-nexus?): stop it (\`ss -ltnp 'sport = :${config.port}'\` shows which) or set PORT to a free port${compose}`
      );
    case 'EACCES':
      return `cannot listen on ${at}: ports below 1024 need privileges; set PORT to 1024 or above (the default is 9095)${compose}`;
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${at}: HOST ${config.host} is not an address of this machine; set HOST to one of its addresses (127.0.0.1, 0.0.0.0 for all)${compose}`;
    default:
      return undefined;
  }
}

export interface SocketFacts {
  /** The socket's group id, or undefined when it cannot be read. */
  readonly gid: number | undefined;
  readonly uid: number;
  readonly groups: ReadonlyArray<number>;
  /** Running in a container (the fix is then a run flag, not a host group). */
  readonly inContainer: boolean;
}

/** The socket path of a unix:// DOCKER_HOST, else undefined. */
export function socketPath(dockerHost: string): string | undefined {
  return dockerHost.startsWith('unix://') ? dockerHost.slice('unix://'.length) : undefined;
}

/**
 * For an engine error that is a permission refusal on its unix socket: the socket's group and the
 * exact fix. undefined when the error is something else.
 */
export function socketPermissionHint(
  dockerHost: string,
  reason: string,
  facts: SocketFacts,
): string | undefined {
  const path = socketPath(dockerHost);
  if (!path || !/EACCES|EPERM|permission denied/i.test(reason)) return undefined;
  const who = `this process (uid ${facts.uid}, groups ${facts.groups.join(',') || 'none'})`;
  if (facts.gid === undefined) {
    return `${who} may not open ${path}: give it the group that owns the socket (stat -c %g ${path})`;
  }
  const gid = facts.gid;
  const fix = facts.inContainer
    ? `run the container with --group-add ${gid} (docker-compose.yml: DOCKER_GID=${gid} in .env)`
    : `add the user to that group (sudo usermod -aG $(stat -c %G ${path}) $USER, then log in again), or run the container with --group-add ${gid} (compose: DOCKER_GID=${gid} in .env)`;
  return `${path} belongs to group ${gid} and ${who} is not in it: ${fix}`;
}

/** The facts socketPermissionHint needs, read from this machine (the socket's stat, this process). */
export function socketFacts(path: string): SocketFacts {
  let gid: number | undefined;
  try {
    gid = statSync(path).gid;
  } catch {
    gid = undefined;
  }
  return {
    gid,
    uid: process.getuid?.() ?? -1,
    groups: process.getgroups?.() ?? [],
    inContainer: existsSync('/.dockerenv') || detectSelfContainerId() !== undefined,
  };
}

/** An engine error, with the socket's group and the fix appended when it is a permission refusal. */
export function explainEngineError(dockerHost: string, reason: string): string {
  const path = socketPath(dockerHost);
  if (!path || !/EACCES|EPERM|permission denied/i.test(reason)) return reason;
  const hint = socketPermissionHint(dockerHost, reason, socketFacts(path));
  return hint ? `${reason}: ${hint}` : reason;
}
