// Scale-up benchmark on the real Docker engine and a real Compose project (docker-compose 1.29): the
// time from a firing alert posted to the webhook to the new replica's `health_status: healthy` event
// (the engine's own timestamp), next to the same step done by hand with `docker-compose up -d
// --no-recreate --scale web=N+1` in the same run (the baseline: Compose's own scale-up, from its
// invocation to the same event). Each trial starts from one replica; the replica is removed after it.
// Run: npm run bench:scale   (about a minute; BENCH_TRIALS=5 by default; everything it makes is removed)
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { Registry } from 'prom-client';
import { stringify } from 'yaml';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createMetrics } from '../src/metrics.js';
import { buildService } from '../src/service.js';
import { amPayload } from '../test/fixtures/app.js';
import { ensureTestImage, followEngineEvents, TEST_IMAGE } from '../test/fixtures/docker.js';
import { TEST_LABEL } from '../test/fixtures/labels.js';
import { BENCH_TOKEN, median, waitUntil } from './common.js';

const run = promisify(execFile);
const TRIALS = Number(process.env.BENCH_TRIALS ?? 5);
const DOCKER_HOST = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
const raw = new Docker({ socketPath: new URL(DOCKER_HOST).pathname });
const project = `ahbenchscale${process.pid}`;

const ms = (x: number) => `${Math.round(x)} ms`;

/** `health_status: healthy` events of the project's containers: the first of a name after a time (ms). */
async function healthyEvents(t: { teardown(fn: () => unknown): void }) {
  const seen = await followEngineEvents(t, {
    label: [`com.docker.compose.project=${project}`],
    event: ['health_status'],
  });
  return (name: string, after: number) =>
    seen.find((e) => e.action === 'health_status: healthy' && e.name === name && e.at >= after)?.at;
}

async function main(): Promise<void> {
  await ensureTestImage();
  const dir = mkdtempSync(join(tmpdir(), 'autoheal-bench-scale-'));
  const file = join(dir, 'docker-compose.yml');
  writeFileSync(
    file,
    stringify({
      version: '2.4',
      services: {
        web: {
          image: TEST_IMAGE,
          network_mode: 'none',
          command: ['sh', '-c', "trap 'exit 0' TERM; sleep 2147483 & wait"],
          stop_grace_period: '2s',
          labels: { [TEST_LABEL]: 'true', 'autoheal.enable': 'true', 'autoheal.scale.max': '10' },
          healthcheck: { test: ['CMD', 'true'], interval: '250ms', timeout: '2s', retries: 1 },
        },
      },
    }),
  );
  const compose = (...args: string[]) => run('docker-compose', ['-p', project, '-f', file, ...args]);
  const config = loadConfig({
    DOCKER_HOST,
    WEBHOOK_TOKEN: BENCH_TOKEN,
    WATCH_SCOPE: 'project',
    COMPOSE_PROJECT: project,
    DATA_DIR: join(dir, 'data'),
    LOG_FILE: '',
    LOG_LEVEL: 'warn',
    RESTART_COOLDOWN: '1',
    MAX_RESTART_ATTEMPTS: '100',
    VERIFY_TIMEOUT: '30',
  });
  const log = createLogger({ level: config.logLevel, file: config.logFile });
  const metrics = createMetrics(new Registry(), { defaultMetrics: false });
  const service = await buildService(config, { log, metrics, notifier: null });
  service.start();
  // The fixture's stream ends with the run: its teardowns are called in the finally below.
  const teardowns: Array<() => unknown> = [];
  const healthyAt = await healthyEvents({ teardown: (fn) => teardowns.push(fn) });
  const ours: number[] = [];
  const baseline: number[] = [];
  const second = `${project}_web_2`;
  const removeSecond = async () => {
    await raw
      .getContainer(second)
      .remove({ force: true })
      .catch(() => undefined);
  };
  try {
    await compose('up', '-d');
    await waitUntil('the first replica healthy', () => healthyAt(`${project}_web_1`, 0));
    for (let i = 0; i < TRIALS; i++) {
      // Ours: a firing alert through the webhook, to the new replica healthy.
      const labels = {
        alertname: 'ComposeServiceCpuSaturated',
        remediation: 'scale_up',
        container_label_com_docker_compose_project: project,
        container_label_com_docker_compose_service: 'web',
      };
      const sent = Date.now();
      const res = await service.app.inject({
        method: 'POST',
        url: '/webhooks/alertmanager',
        headers: { authorization: `Bearer ${BENCH_TOKEN}` },
        payload: amPayload([{ labels, fingerprint: `bench-${i}`, startsAt: new Date(sent).toISOString() }]),
      });
      if (res.statusCode !== 200) throw new Error(`webhook: ${res.statusCode} ${res.body}`);
      ours.push((await waitUntil('our replica healthy', () => healthyAt(second, sent))) - sent);
      await service.engine.idle();
      await removeSecond();
      // The baseline: docker-compose's own scale-up of the same service, by hand.
      const invoked = Date.now();
      await compose('up', '-d', '--no-recreate', '--scale', 'web=2');
      baseline.push((await waitUntil('compose replica healthy', () => healthyAt(second, invoked))) - invoked);
      await removeSecond();
      // The service's cooldown per service (RESTART_COOLDOWN=1) is over by the next trial.
      await new Promise((r) => setTimeout(r, Math.max(0, 1100 - (Date.now() - sent))));
    }
  } finally {
    for (const fn of teardowns) await fn();
    await service.close(5000);
    await compose('down', '--timeout', '1').catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
  const lines = [
    `Scale-up of a Compose service by one replica, ${TRIALS} trials each (${new Date().toISOString().slice(0, 10)}):`,
    `  alert → new replica healthy (AutoHeal-Nexus):     median ${ms(median(ours))}, max ${ms(Math.max(...ours))}`,
    `  docker-compose up --scale → healthy (baseline):   median ${ms(median(baseline))}, max ${ms(Math.max(...baseline))}`,
    `  ratio (ours / baseline, medians):                  ${(median(ours) / median(baseline)).toFixed(2)}`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

main().catch((err) => {
  process.stderr.write(`${err?.stack ?? err}\n`);
  process.exit(1);
});
