// The process: load config, build the service (service.ts), listen, start inputs, shut down gracefully.
// The only module that reads process.env or listens.
import { dirname, resolve } from 'node:path';
import { ConfigError, loadConfig } from './config.js';
import { loadRulesFile } from './inputs/rules-file.js';
import { Watcher } from './inputs/watcher/watcher.js';
import { SwarmWatcher } from './inputs/swarm-watcher.js';
import { checkScheduleTargets, parseSchedules, type ScheduleEntry, Scheduler } from './inputs/schedules.js';
import type { DockerClient } from './docker/client.js';
import { listenFailure, startupSummary } from './startup.js';
import { applyEnvFile, type EnvFileResult, envFileArg } from './env-file.js';
import { createLogger, loggerOptions } from './logger.js';
import { detectSelfContainerId } from './self.js';
import { buildService, type Service } from './service.js';
import { StateOpenError } from './state/journal.js';
import { VERSION } from './version.js';

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  let schedules: ScheduleEntry[];
  let envFile: EnvFileResult = { path: undefined, applied: [] };
  try {
    // npm start passes --dotenv=.env: the file fills in what the environment does not set.
    const envPath = envFileArg(process.argv.slice(2));
    if (envPath) envFile = applyEnvFile(envPath, process.env);
    config = loadConfig({
      ...process.env,
      SELF_CONTAINER_ID: process.env.SELF_CONTAINER_ID || detectSelfContainerId(),
    });
    schedules = parseSchedules(config.schedules);
  } catch (err) {
    if (err instanceof ConfigError) {
      const from = envFile.path ? ` (settings read from the environment and ${envFile.path})` : '';
      process.stderr.write(`autoheal-nexus: configuration error: ${err.message}${from}\n`);
      process.exit(2);
    }
    if (err instanceof Error && err.message.startsWith('--dotenv:')) {
      process.stderr.write(`autoheal-nexus: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  let log: ReturnType<typeof createLogger>;
  try {
    log = createLogger(loggerOptions(config));
  } catch (err) {
    // The audit log is where every decision is kept: without it the service does not start.
    const e = err as NodeJS.ErrnoException;
    if (typeof e.code !== 'string') throw err;
    const file = resolve(config.logFile);
    process.stderr.write(
      `autoheal-nexus: LOG_FILE ${file} cannot be written (${e.code}: ${e.message}); the audit log of ` +
        `every decision goes there. Mount a writable volume at ${dirname(file)}, set LOG_FILE to a ` +
        'writable path, or set LOG_FILE= (empty) to log to stdout only.\n',
    );
    process.exit(2);
  }
  let rules: ReturnType<typeof loadRulesFile> = [];
  if (config.rulesFile) {
    try {
      rules = loadRulesFile(config.rulesFile);
    } catch (err) {
      process.stderr.write(`autoheal-nexus: configuration error: ${(err as Error).message}\n`);
      process.exit(2);
    }
  }
  let service: Service;
  try {
    // Telegram behind a durable outbox when configured; otherwise the audit log only (said once there).
    service = await buildService(config, { log, rules, pruneOnTimer: true });
  } catch (err) {
    // Without durable state no promise holds (attempts, cooldowns, de-duplication): refuse to start.
    if (!(err instanceof StateOpenError)) throw err;
    const dir = resolve(config.dataDir);
    process.stderr.write(
      `autoheal-nexus: DATA_DIR ${dir} cannot be used (${err.message}); the service keeps its state ` +
        `there and cannot start without it. Mount a writable volume at ${dir} or set DATA_DIR to a ` +
        'writable directory.\n',
    );
    process.exit(2);
  }
  const { docker, clock, metrics, store, engine, app, updates } = service;
  metrics.buildInfo.set({ version: VERSION, node: process.version }, 1);
  // The health watcher also owns autoheal_docker_connected (engine answers and its event stream is followed).
  const watcher = new Watcher({ config, docker, engine, store, metrics, log, clock });
  // On a Swarm manager, the services and their tasks (task containers are left to Swarm).
  const swarmWatcher = new SwarmWatcher({ config, docker, engine, log, clock, metrics });
  const scheduler = new Scheduler(schedules, {
    engine,
    store,
    clock,
    log,
    metrics,
    // update:all: the check run, automatic (only autoheal.update=apply containers are updated).
    batch: (entry) =>
      updates.run({
        source: 'schedule',
        requestedBy: 'schedule',
        reason: `scheduled maintenance "${entry.text}"`,
      }),
  });

  // One line says where everything is and what is on: the audit log, the state, inputs and channels.
  const summary = startupSummary(config, {
    version: VERSION,
    schedules: schedules.length,
    rules: rules.length,
    envFile: envFile.path,
  });
  log.info(summary.fields, summary.message);
  if (!config.webhookToken)
    log.warn('WEBHOOK_TOKEN is not set: the Alertmanager webhook refuses every request');
  if (!config.adminToken) log.warn('ADMIN_TOKEN is not set: the admin API refuses every request');

  // A schedule naming a container that does not exist would fail at its time, maybe weeks from now.
  const unknown = await scheduleTargetsMissing(schedules, docker, log);
  if (unknown.length > 0) {
    process.stderr.write(`autoheal-nexus: configuration error: ${unknown.join('; ')}\n`);
    await service.close(0);
    process.exit(2);
  }

  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (err) {
    const line = listenFailure(err, config);
    if (!line) throw err;
    process.stderr.write(`autoheal-nexus: ${line}\n`);
    await service.close(0).catch(() => undefined);
    process.exit(2);
  }
  service.start();
  watcher.start();
  swarmWatcher.start();
  scheduler.start();

  let shuttingDown = false;
  const shutdown = async (sig: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info({ event: 'stopping', signal: sig }, 'shutting down: stopping inputs, finishing remediations');
    await watcher.stop();
    swarmWatcher.stop();
    scheduler.stop();
    await service.close(config.shutdownGraceMs);
    log.info({ event: 'stopped' }, 'stopped');
    log.flush?.();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

/**
 * The SCHEDULES entries whose target names no container of the engine, each in words; none when the
 * engine cannot be asked now (then said in the log: the entry is checked again at its time).
 */
async function scheduleTargetsMissing(
  schedules: ReadonlyArray<ScheduleEntry>,
  docker: Pick<DockerClient, 'listContainers'>,
  log: ReturnType<typeof createLogger>,
): Promise<string[]> {
  if (
    !schedules.some((e) => e.target !== 'all' && ['container', 'service', 'project'].includes(e.target.kind))
  )
    return [];
  let containers: Awaited<ReturnType<DockerClient['listContainers']>>;
  try {
    containers = await docker.listContainers({ all: true });
  } catch (err) {
    log.warn(
      { event: 'schedules_unchecked', err: (err as Error).message },
      'cannot check the SCHEDULES targets now (engine unreachable): each is checked at its time',
    );
    return [];
  }
  return checkScheduleTargets(schedules, containers);
}

main().catch((err) => {
  process.stderr.write(`autoheal-nexus: fatal: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
