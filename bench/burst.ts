// Burst benchmark on the real Docker engine: BENCH_BURST (100) watched containers whose PID 1 ignores
// SIGTERM, so every stop waits its whole stop timeout (as many real images do), all made unhealthy at
// once. Three ways of healing the same burst, in the same run:
//   1. the service as it is: every stop signal goes out at once, MAX_PARALLEL bounds only the starts;
//   2. the earlier design, kept here as a baseline: each restart (stop timeout included) inside one of
//      MAX_PARALLEL slots, so the 17th container's stop signal waits for the first sixteen's timeouts;
//   3. one container at a time, the way docker-autoheal heals (BENCH_SERIAL=0 skips it: it is long).
// Timed by the engine's own event timestamps (timeNano): each container's `health_status: unhealthy`
// to its first `kill`, and the burst's first unhealthy to the last container healthy again. During the
// first two, the webhook is posted to 20 times a second and its latency kept: the burst must not starve
// the event loop.
// Run: npm run bench:burst   (BENCH_BURST, BENCH_STOP_TIMEOUT, BENCH_SERIAL, MAX_PARALLEL)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';
import { Registry } from 'prom-client';
import { request } from 'undici';
import type { ActionHandler } from '../src/actions/handler.js';
import { defaultActions } from '../src/actions/registry.js';
import { restartAction } from '../src/actions/restart.js';
import { loadConfig } from '../src/config.js';
import { CONTAINER_LABELS } from '../src/core/labels.js';
import type { DockerEvent } from '../src/docker/client.js';
import { Watcher } from '../src/inputs/watcher/watcher.js';
import { createLogger } from '../src/logger.js';
import { createMetrics } from '../src/metrics.js';
import { buildService } from '../src/service.js';
import { ensureTestImage, TEST_IMAGE } from '../test/fixtures/docker.js';
import { TEST_LABEL } from '../test/fixtures/labels.js';
import { alertGroupPayload, BENCH_TOKEN, median, observeProject, waitUntil } from './common.js';

const BURST = Number(process.env.BENCH_BURST ?? 100);
const STOP_TIMEOUT_S = Number(process.env.BENCH_STOP_TIMEOUT ?? 5);
const SERIAL = process.env.BENCH_SERIAL !== '0';
const MAX_PARALLEL = process.env.MAX_PARALLEL ?? '16';
// Health checks every 2 s: a hundred containers' checks are execs the engine runs on these two cores.
const HEALTH_INTERVAL_MS = 2000;
const WEBHOOK_EVERY_MS = 50;

const DOCKER_HOST = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
const raw = new Docker({ socketPath: new URL(DOCKER_HOST).pathname });
const project = `ahburst${process.pid}`;
const names = Array.from({ length: BURST }, (_, i) => `${project}-${i}`);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};
/** Nanosecond event times as milliseconds (numbers, for Math.min and Math.max). */
const msOf = (nano: bigint) => Number(nano) / 1e6;
const ms = (x: number) => `${Math.round(x).toLocaleString('en-US')} ms`;

async function makeContainer(name: string): Promise<void> {
  const c = await raw.createContainer({
    name,
    Image: TEST_IMAGE,
    // TERM ignored: a stop waits its whole timeout, then kills. The start clears the breakage.
    Cmd: ['sh', '-c', "trap '' TERM; rm -f /tmp/broken; sleep 2147483 & wait; sleep 2147483"],
    Labels: {
      [TEST_LABEL]: 'true',
      [CONTAINER_LABELS.composeProject]: project,
      [CONTAINER_LABELS.composeService]: 'burst',
    },
    StopTimeout: STOP_TIMEOUT_S,
    Healthcheck: {
      Test: ['CMD-SHELL', 'test ! -f /tmp/broken'],
      Interval: HEALTH_INTERVAL_MS * 1_000_000,
      Timeout: 5_000_000_000,
      Retries: 1,
    },
    HostConfig: { NetworkMode: 'none', RestartPolicy: { Name: 'no' } },
  });
  await c.start();
}

async function inBatches<T>(xs: ReadonlyArray<T>, n: number, fn: (x: T) => Promise<unknown>) {
  for (let i = 0; i < xs.length; i += n) await Promise.all(xs.slice(i, i + n).map(fn));
}

async function removeAll(): Promise<void> {
  const list = await raw.listContainers({
    all: true,
    filters: JSON.stringify({ label: [`${CONTAINER_LABELS.composeProject}=${project}`] }),
  });
  await inBatches(list, 16, (c) =>
    raw
      .getContainer(c.Id)
      .remove({ force: true })
      .catch(() => undefined),
  );
}

/** Every container's health check fails from now on (until its next start). */
async function breakAll(): Promise<void> {
  await inBatches(names, 25, async (n) => {
    const e = await raw.getContainer(n).exec({ Cmd: ['touch', '/tmp/broken'] });
    await e.start({ Detach: true });
  });
}

interface Round {
  readonly label: string;
  readonly reaction: number[];
  readonly allHealthyMs: number;
  readonly webhook: number[];
}

/** Breaks every container at once and waits until all are healthy again; what the engine's events say. */
async function burstRound(
  label: string,
  timeline: Map<string, DockerEvent[]>,
  webhookPort: number | undefined,
): Promise<Round> {
  const from = new Map(names.map((n) => [n, timeline.get(n)?.at(-1)?.timeNano ?? 0n]));
  const after = (n: string) => (timeline.get(n) ?? []).filter((e) => e.timeNano > (from.get(n) ?? 0n));
  const sickAt = (n: string) => after(n).find((e) => e.action === 'health_status: unhealthy')?.timeNano;
  const healedAt = (n: string) => {
    const sick = sickAt(n);
    return sick === undefined
      ? undefined
      : after(n).find((e) => e.timeNano > sick && e.action === 'health_status: healthy')?.timeNano;
  };
  // The webhook, posted to while the burst is healed (a new group each time: never a duplicate).
  const webhook: number[] = [];
  const webhookFailures: string[] = [];
  let posting = webhookPort !== undefined;
  const poster = (async () => {
    let seq = 0;
    while (posting) {
      const body = JSON.stringify(
        alertGroupPayload(seq++, {
          size: 1,
          container: () => `${project}-nobody`,
          annotations: () => ({ summary: 'a container no one has' }),
          startsAt: new Date().toISOString(),
        }),
      );
      const t0 = performance.now();
      try {
        const r = await request(`http://127.0.0.1:${webhookPort}/webhooks/alertmanager`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${BENCH_TOKEN}` },
          body,
        });
        await r.body.dump();
        if (r.statusCode === 200) webhook.push(performance.now() - t0);
        else webhookFailures.push(`answered ${r.statusCode}`);
      } catch (err) {
        webhookFailures.push((err as Error).message);
      }
      await sleep(WEBHOOK_EVERY_MS);
    }
  })();
  try {
    await breakAll();
    await waitUntil(
      `${label}: all healthy again`,
      () => (names.every((n) => healedAt(n) !== undefined) ? true : undefined),
      30 * 60_000,
      200,
    );
  } finally {
    posting = false;
    await poster;
  }
  const reaction = names.map((n) => {
    const sick = sickAt(n) as bigint;
    const kill = after(n).find((e) => e.timeNano > sick && (e.action === 'kill' || e.action === 'stop'));
    return kill ? Number(kill.timeNano - sick) / 1e6 : Number.NaN;
  });
  const firstSick = Math.min(...names.map((n) => msOf(sickAt(n) as bigint)));
  const lastHealed = Math.max(...names.map((n) => msOf(healedAt(n) as bigint)));
  if (webhookFailures.length)
    process.stdout.write(
      `  ${label}: ${webhookFailures.length} webhook posts failed (${webhookFailures[0]})\n`,
    );
  return { label, reaction, allHealthyMs: lastHealed - firstSick, webhook };
}

/** A service healing the burst with these actions; the round, then the service closed. */
async function serviceRound(
  label: string,
  timeline: Map<string, DockerEvent[]>,
  env: Record<string, string>,
  restart: ActionHandler,
): Promise<Round> {
  const dir = mkdtempSync(join(tmpdir(), 'autoheal-burst-'));
  const config = loadConfig({
    DOCKER_HOST,
    WATCH_SCOPE: 'project',
    COMPOSE_PROJECT: project,
    WATCHDOG_INTERVAL: '30',
    DATA_DIR: join(dir, 'data'),
    LOG_FILE: process.env.BENCH_LOG_FILE ?? '',
    LOG_LEVEL: process.env.BENCH_LOG_FILE ? 'info' : 'warn',
    WEBHOOK_TOKEN: BENCH_TOKEN,
    RESTART_COOLDOWN: '0',
    MAX_RESTART_ATTEMPTS: '100',
    CIRCUIT_MAX_ACTIONS: '100000',
    VERIFY_TIMEOUT: '120',
    VERIFY_GRACE: '1',
    // The containers' own timeout applies; the client's covers the engine's start under load.
    DOCKER_TIMEOUT: '60',
    MAX_PARALLEL,
    ...env,
  });
  const log = createLogger({ level: config.logLevel, file: config.logFile });
  const metrics = createMetrics(new Registry(), { defaultMetrics: false });
  const actions = new Map(defaultActions());
  actions.set('restart', restart);
  const service = await buildService(config, { log, metrics, notifier: null, actions });
  const watcher = new Watcher({
    config,
    docker: service.docker,
    engine: service.engine,
    store: service.store,
    metrics,
    log,
    clock: service.clock,
  });
  try {
    await service.app.listen({ host: '127.0.0.1', port: 0 });
    const port = (service.app.server.address() as { port: number }).port;
    service.engine.start();
    watcher.start();
    await waitUntil('the watcher to connect', () => (watcher.connected ? true : undefined));
    await watcher.reconcile();
    return await burstRound(label, timeline, port);
  } finally {
    await watcher.stop();
    await service.close(5000);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** docker-autoheal's way: one container at a time, each restarted and waited for before the next. */
async function serialRound(timeline: Map<string, DockerEvent[]>): Promise<Round> {
  const from = new Map(names.map((n) => [n, timeline.get(n)?.at(-1)?.timeNano ?? 0n]));
  const after = (n: string) => (timeline.get(n) ?? []).filter((e) => e.timeNano > (from.get(n) ?? 0n));
  await breakAll();
  await waitUntil(
    'all unhealthy',
    () =>
      names.every((n) => after(n).some((e) => e.action === 'health_status: unhealthy')) ? true : undefined,
    120_000,
    200,
  );
  for (const n of names) {
    await raw.getContainer(n).restart({ t: STOP_TIMEOUT_S });
    await waitUntil(
      `${n} healthy`,
      () => (after(n).some((e) => e.action === 'health_status: healthy') ? true : undefined),
      120_000,
      50,
    );
  }
  const sick = names.map(
    (n) => after(n).find((e) => e.action === 'health_status: unhealthy')?.timeNano ?? 0n,
  );
  const reaction = names.map((n, i) => {
    const kill = after(n).find((e) => e.timeNano > (sick[i] ?? 0n) && e.action === 'kill');
    return kill ? Number(kill.timeNano - (sick[i] ?? 0n)) / 1e6 : Number.NaN;
  });
  const healed = names.map(
    (n) => after(n).find((e) => e.action === 'health_status: healthy')?.timeNano ?? 0n,
  );
  const first = Math.min(...sick.map(msOf));
  const last = Math.max(...healed.map(msOf));
  return {
    label: 'one at a time (docker-autoheal)',
    reaction,
    allHealthyMs: last - first,
    webhook: [],
  };
}

/** The earlier design: the whole restart, its stop timeout included, inside a slot. */
const restartInASlot: ActionHandler = { ...restartAction, boundsItself: false };

async function main(): Promise<void> {
  await ensureTestImage();
  const obs = observeProject(DOCKER_HOST, project);
  try {
    const t0 = performance.now();
    await inBatches(names, 8, makeContainer);
    process.stdout.write(
      `${BURST} containers created in ${((performance.now() - t0) / 1000).toFixed(0)} s\n`,
    );
    const allHealthy = async () =>
      (
        await Promise.all(names.map(async (n) => (await raw.getContainer(n).inspect()).State.Health?.Status))
      ).every((s) => s === 'healthy');
    const settle = async () => {
      const end = Date.now() + 120_000;
      while (!(await allHealthy())) {
        if (Date.now() > end) throw new Error('the containers did not all become healthy');
        await sleep(500);
      }
    };
    await settle();
    const rounds: Round[] = [];
    rounds.push(await serviceRound('AutoHeal-Nexus (stops at once)', obs.timeline, {}, restartAction));
    await settle();
    rounds.push(await serviceRound('earlier design (restart in a slot)', obs.timeline, {}, restartInASlot));
    if (SERIAL) {
      await settle();
      rounds.push(await serialRound(obs.timeline));
    }
    const [ours] = rounds as [Round];
    const lines = [
      '',
      `Burst of ${BURST} unhealthy containers at once (PID 1 ignores SIGTERM, stop timeout ${STOP_TIMEOUT_S} s, MAX_PARALLEL=${MAX_PARALLEL}; engine event timestamps)`,
      ...rounds.flatMap((r) => [
        `  ${r.label}:`,
        `    unhealthy → first kill: median ${ms(median(r.reaction))}, max ${ms(Math.max(...r.reaction))}`,
        `    first unhealthy → all ${BURST} healthy: ${ms(r.allHealthyMs)} (${(r.allHealthyMs / ours.allHealthyMs).toFixed(2)}× ours)`,
        ...(r.webhook.length
          ? [
              `    webhook during the burst (${r.webhook.length} posts): p50 ${ms(pct(r.webhook, 50))}, p99 ${pct(r.webhook, 99).toFixed(1)} ms, max ${Math.max(...r.webhook).toFixed(1)} ms`,
            ]
          : []),
      ]),
      `  goals: median ≤ 50 ms, max ≤ 500 ms, webhook p99 ≤ 50 ms -> ${
        median(ours.reaction) <= 50 && Math.max(...ours.reaction) <= 500 && pct(ours.webhook, 99) <= 50
          ? 'met'
          : 'NOT met'
      }`,
      '',
    ];
    process.stdout.write(lines.join('\n'));
  } finally {
    await removeAll();
    await obs.stop();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
    removeAll().finally(() => process.exit(1));
  },
);
