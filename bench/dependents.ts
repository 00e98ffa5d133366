// Dependents benchmark on the real Docker engine and a real Compose project (docker-compose 1.29,
// network_mode: none, the locally built test image with a 250 ms health check): a chain of three,
// db ← api ← web, each `depends_on` the one before with condition service_healthy and restart: true
// (docker-compose 1.29 refuses `restart:` in depends_on and writes no depends_on label, so the
// `autoheal.depends_on` label carries it, as the guide says for Compose v1). A `restart` of db is asked
// through the admin API (POST /api/v1/remediations) of a service built by the composition root; timed
// from the request to the moment all three are healthy again, by the engine's own `health_status:
// healthy` event timestamps. The baseline, in the same run: what an operator does by hand, `docker
// restart` of db, api and web one at a time in dependency order, each only once the one before is
// healthy (taken from the same event stream, so the operator reacts at once: the baseline's best case).
// Run: npm run bench:dependents   (about a minute; BENCH_TRIALS=5 by default; everything it makes is removed)
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { stringify } from 'yaml';
import { loadConfig } from '../src/config.js';
import { CONTAINER_LABELS } from '../src/core/labels.js';
import { createLogger } from '../src/logger.js';
import { createMetrics } from '../src/metrics.js';
import { buildService } from '../src/service.js';
import {
  describeTimeline,
  ensureTestImage,
  followEngineEvents,
  type SeenEvent,
  TEST_IMAGE,
} from '../test/fixtures/docker.js';
import { TEST_LABEL } from '../test/fixtures/labels.js';
import { median, waitUntil } from './common.js';

const run = promisify(execFile);
const TRIALS = Number(process.env.BENCH_TRIALS ?? 5);
const DOCKER_HOST = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';
const project = `ahbenchdeps${process.pid}`;
const CHAIN = ['db', 'api', 'web'] as const;
type Service = (typeof CHAIN)[number];
const nameOf = (s: Service) => `${project}_${s}_1`;
const HEALTHY = 'health_status: healthy';

const ms = (x: number) => `${Math.round(x).toLocaleString('en-US')} ms`;

/** One service of the chain; sh as PID 1 traps TERM so a restart is quick. */
function service(dependsOn?: Service) {
  return {
    image: TEST_IMAGE,
    network_mode: 'none',
    command: ['sh', '-c', "trap 'exit 0' TERM; sleep 2147483 & wait"],
    stop_grace_period: '2s',
    labels: {
      [TEST_LABEL]: 'true',
      'autoheal.enable': 'true',
      ...(dependsOn ? { [CONTAINER_LABELS.dependsOn]: `${dependsOn}:service_healthy:true` } : {}),
    },
    healthcheck: { test: ['CMD', 'true'], interval: '250ms', timeout: '2s', retries: 1 },
    ...(dependsOn ? { depends_on: { [dependsOn]: { condition: 'service_healthy' } } } : {}),
  };
}

async function main(): Promise<void> {
  await ensureTestImage();
  const dir = mkdtempSync(join(tmpdir(), 'autoheal-bench-deps-'));
  const file = join(dir, 'docker-compose.yml');
  writeFileSync(
    file,
    stringify({ version: '2.4', services: { db: service(), api: service('db'), web: service('api') } }),
  );
  const compose = (...args: string[]) => run('docker-compose', ['-p', project, '-f', file, ...args]);
  const config = loadConfig({
    DOCKER_HOST,
    ADMIN_TOKEN,
    WATCH_SCOPE: 'project',
    COMPOSE_PROJECT: project,
    DATA_DIR: join(dir, 'data'),
    LOG_FILE: '',
    LOG_LEVEL: 'warn',
    RESTART_COOLDOWN: '0',
    MAX_RESTART_ATTEMPTS: '100',
    CIRCUIT_MAX_ACTIONS: '100000',
    VERIFY_TIMEOUT: '30',
  });
  const log = createLogger({ level: config.logLevel, file: config.logFile });
  const metrics = createMetrics(new Registry(), { defaultMetrics: false });
  const svc = await buildService(config, { log, metrics, notifier: null });
  svc.start();
  // The fixture's stream ends with the run: its teardowns are called in the finally below.
  const teardowns: Array<() => unknown> = [];
  const seen = await followEngineEvents(
    { teardown: (fn) => teardowns.push(fn) },
    { label: [`com.docker.compose.project=${project}`] },
  );
  /** When `name` was healthy again after a start that came after `after` (engine clock, ms). */
  const healthyAgain = (name: string, after: number): number | undefined => {
    const start = seen.find((e) => e.name === name && e.action === 'start' && e.at >= after);
    return start && seen.find((e) => e.name === name && e.action === HEALTHY && e.at >= start.at)?.at;
  };
  /** All three healthy again after `after`: the latest of their returns, or undefined. */
  const chainHealthy = (after: number): number | undefined => {
    const ats = CHAIN.map((s) => healthyAgain(nameOf(s), after));
    return ats.every((a) => a !== undefined) ? Math.max(...(ats as number[])) : undefined;
  };
  /** From the first kill to the last return to healthy, by the engine's clock alone. */
  const engineSpan = (after: number, end: number) => {
    const kill = seen.find((e) => e.action === 'kill' && e.at >= after);
    return kill ? end - kill.at : Number.NaN;
  };
  const ours: number[] = [];
  const oursSpan: number[] = [];
  const baseline: number[] = [];
  const baselineSpan: number[] = [];
  let oursTimeline = '';
  let baselineTimeline = '';
  const timeline = (from: number, to: number) =>
    describeTimeline(
      seen.filter((e) => e.at >= from && e.at <= to),
      (e: SeenEvent) => e.name.replace(`${project}_`, '').replace(/_1$/, ''),
      [{ at: from, what: 'asked' }],
    );
  try {
    await compose('up', '-d');
    await waitUntil('the chain healthy', () => chainHealthy(0));
    for (let i = 0; i < TRIALS; i++) {
      // Ours: a restart of db through the admin API; api and web follow as its dependents.
      const sent = Date.now();
      const res = await svc.app.inject({
        method: 'POST',
        url: '/api/v1/remediations',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        payload: { target: nameOf('db'), action: 'restart', reason: `bench trial ${i + 1}` },
      });
      if (res.statusCode !== 202) throw new Error(`POST remediations: ${res.statusCode} ${res.body}`);
      const id = String((JSON.parse(res.body) as { id: string }).id);
      const done = await waitUntil('our chain healthy', () => chainHealthy(sent), 60_000, 10);
      const record = await waitUntil('the remediation to end', () => {
        const r = svc.store.remediation(id);
        return r && !['queued', 'running'].includes(r.state) ? r : undefined;
      });
      if (record.state !== 'succeeded') throw new Error(`remediation ${record.state}: ${record.detail}`);
      ours.push(done - sent);
      oursSpan.push(engineSpan(sent, done));
      oursTimeline = timeline(sent, done);
      await svc.engine.idle();

      // The baseline: the same three by hand, in dependency order, each once the one before is healthy.
      const invoked = Date.now();
      let last = invoked;
      for (const s of CHAIN) {
        const from = Date.now();
        await run('docker', ['restart', '-t', '2', nameOf(s)]);
        last = await waitUntil(`${s} healthy by hand`, () => healthyAgain(nameOf(s), from), 60_000, 10);
      }
      baseline.push(last - invoked);
      baselineSpan.push(engineSpan(invoked, last));
      baselineTimeline = timeline(invoked, last);
    }
  } finally {
    for (const fn of teardowns) await fn();
    await svc.close(5000);
    await compose('down', '--timeout', '1').catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
  const lines = [
    `Dependent chain of three (db ← api ← web, depends_on service_healthy + restart: true), ${TRIALS} trials each (${new Date().toISOString().slice(0, 10)}):`,
    `  restart db via POST /api/v1/remediations → all three healthy (AutoHeal-Nexus): median ${ms(median(ours))}, max ${ms(Math.max(...ours))}`,
    `  docker restart db, api, web one at a time by hand → all three healthy (baseline): median ${ms(median(baseline))}, max ${ms(Math.max(...baseline))}`,
    `  ratio (ours / baseline, medians): ${(median(ours) / median(baseline)).toFixed(2)}`,
    `  each trial, ours / baseline: ${ours.map((x, i) => `${ms(x)} / ${ms(baseline[i] ?? Number.NaN)}`).join(', ')}`,
    `  engine only (first kill → last healthy): ours median ${ms(median(oursSpan))}, baseline median ${ms(median(baselineSpan))}`,
    `  last trial, ours:     ${oursTimeline}`,
    `  last trial, by hand:  ${baselineTimeline}`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

main().catch((err) => {
  process.stderr.write(`${err?.stack ?? err}\n`);
  process.exit(1);
});
