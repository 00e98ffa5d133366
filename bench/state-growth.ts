// State growth benchmark: N unique alerts (default 50,000) through the real webhook route (buildApp,
// Engine, Store on disk; app.inject, 10 alerts per request as Alertmanager groups them), spread over
// DAYS simulated days by an injected clock, plus manual requests (engine.request, the path of the admin
// API, CLI and schedules) that each leave a remediation record. Docker is a stub that knows no
// containers, so every alert is decided `target_not_found`: what stays is the state it leaves.
//
// Two runs in the same invocation, each in its own process so their memory figures do not mix:
//   no-prune  the state as the service kept it before pruning was wired in (the baseline);
//   prune     Store.prune on the PRUNE_INTERVAL of simulated time (what the store's timer calls) and
//             at start-up (Store.startPruning, as server.ts does).
// Prints RSS before/after feeding, the state files on disk, and start-up: a fresh process opening the
// state (and, for "prune", pruning it at start).
// Run: npx tsx bench/state-growth.ts   (env: N, DAYS, REQUESTS; about a minute for the defaults)
import { fork } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { loadConfig } from '../src/config.js';
import { createMetrics } from '../src/metrics.js';
import { buildService } from '../src/service.js';
import { PRUNE_INTERVAL_MS, Store } from '../src/state/store.js';
import { ManualClock } from '../test/fixtures/clock.js';
import { alertGroupPayload, BENCH_TOKEN, stubDocker } from './common.js';

const N = Number(process.env.N ?? 50_000);
const DAYS = Number(process.env.DAYS ?? 30);
const REQUESTS = Number(process.env.REQUESTS ?? Math.round(N / 5));
const PER_REQUEST = 10;
const START = Date.UTC(2026, 0, 1);
const END = START + DAYS * 24 * 3600 * 1000;

type Variant = 'no-prune' | 'prune';

interface FeedResult {
  rssBeforeMb: number;
  rssAfterMb: number;
  heapAfterMb: number;
  feedMs: number;
  prunes: number;
  pruneMs: number;
  files: Record<string, number>;
}

interface OpenResult {
  openMs: number;
  rssMb: number;
  files: Record<string, number>;
  entries: Record<string, number>;
}

const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

function rss(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().rss;
}

function stateFiles(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of readdirSync(dir)) if (f.startsWith('state.')) out[f] = statSync(join(dir, f)).size;
  return out;
}

/** A group of new alerts over 500 containers, each alert firing at `at` (simulated time). */
const payload = (seq: number, at: number) =>
  alertGroupPayload(seq, {
    size: PER_REQUEST,
    container: (i) => `web-${(seq * PER_REQUEST + i) % 500}`,
    annotations: () => ({
      summary: 'Container is unhealthy',
      description: 'The health check has failed for 30s; AutoHeal-Nexus will restart it.',
    }),
    startsAt: new Date(at).toISOString(),
  });

async function feed(variant: Variant, dir: string): Promise<FeedResult> {
  const config = loadConfig({ WEBHOOK_TOKEN: BENCH_TOKEN, DATA_DIR: dir, LOG_FILE: '', LOG_LEVEL: 'silent' });
  const log = pino({ level: 'silent' });
  const clock = new ManualClock(START);
  const metrics = createMetrics(new Registry(), { defaultMetrics: false });
  const service = await buildService(config, { docker: stubDocker, clock, log, metrics, notifier: null });
  const { app, engine, store } = service;
  engine.start();
  const rssBefore = rss();
  const started = performance.now();
  const batches = Math.ceil(N / PER_REQUEST);
  const step = (END - START) / batches;
  let nextPrune = START + PRUNE_INTERVAL_MS;
  let requests = 0;
  let prunes = 0;
  let pruneMs = 0;
  for (let b = 0; b < batches; b++) {
    clock.set(Math.round(START + b * step));
    const res = await app.inject({
      method: 'POST',
      url: '/webhooks/alertmanager',
      payload: payload(b, clock.now()),
      headers: { authorization: `Bearer ${BENCH_TOKEN}` },
    });
    if (res.statusCode !== 200) throw new Error(`webhook answered ${res.statusCode}: ${res.body}`);
    // Manual requests spread evenly over the alerts.
    while (requests < Math.round(((b + 1) * REQUESTS) / batches)) {
      requests++;
      engine.request({
        id: `req-${requests}`,
        source: 'manual',
        status: 'firing',
        receivedAt: clock.now(),
        condition: 'requested',
        target: { kind: 'container', name: `web-${b % 500}` },
        action: 'restart',
        params: {},
        labels: {},
        annotations: {},
        requestedBy: 'bench',
        reason: 'state growth benchmark',
      });
    }
    if (variant === 'prune' && clock.now() >= nextPrune) {
      const t0 = performance.now();
      store.prune(clock.now()); // what the store's timer runs every PRUNE_INTERVAL_MS
      pruneMs += performance.now() - t0;
      prunes++;
      nextPrune += PRUNE_INTERVAL_MS;
    }
    // Let the engine decide what was accepted (it starts on the next turn of the loop).
    if (b % 50 === 0) await new Promise((r) => setImmediate(r));
  }
  while (store.pending().length > 0) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 50)); // background compaction, marks of processed signals
  const feedMs = performance.now() - started;
  const rssAfter = rss();
  const heapAfter = process.memoryUsage().heapUsed;
  await service.close(1000);
  return {
    rssBeforeMb: mb(rssBefore),
    rssAfterMb: mb(rssAfter),
    heapAfterMb: mb(heapAfter),
    feedMs: Math.round(feedMs),
    prunes,
    pruneMs,
    files: stateFiles(dir),
  };
}

function open(variant: Variant, dir: string): OpenResult {
  const log = pino({ level: 'silent' });
  const started = performance.now();
  const store = new Store(dir, log);
  if (variant === 'prune') {
    store.startPruning(new ManualClock(END));
    store.stopPruning();
  }
  const openMs = performance.now() - started;
  const entries: Record<string, number> = {};
  for (const c of ['dedup', 'inbox', 'incidents', 'remediations', 'containers']) {
    entries[c] = store.journal.collection(c).size;
  }
  const result = { openMs: Math.round(openMs), rssMb: mb(rss()), files: stateFiles(dir), entries };
  store.close();
  return result;
}

function child<T>(args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const p = fork(new URL(import.meta.url).pathname, args, {
      execArgv: ['--import', 'tsx', '--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    p.once('message', (m) => resolve(m as T));
    p.once('exit', (code) => {
      if (code !== 0) reject(new Error(`${args.join(' ')} exited with ${code}`));
    });
  });
}

const sum = (files: Record<string, number>) => Object.values(files).reduce((a, b) => a + b, 0);
const journalBytes = (files: Record<string, number>) =>
  (files['state.journal'] ?? 0) + (files['state.journal.prev'] ?? 0);

async function main(): Promise<void> {
  const [role, variant, dir] = process.argv.slice(2) as [string?, Variant?, string?];
  if (role === 'feed' && variant && dir) {
    process.send?.(await feed(variant, dir));
    return;
  }
  if (role === 'open' && variant && dir) {
    process.send?.(open(variant, dir));
    return;
  }
  console.log(
    `state growth: ${N} unique alerts (${PER_REQUEST} per webhook request) and ${REQUESTS} manual ` +
      `requests over ${DAYS} simulated days; node ${process.version}`,
  );
  const rows: Array<{ variant: Variant; fed: FeedResult; opened: OpenResult }> = [];
  for (const v of ['no-prune', 'prune'] as const) {
    const base = mkdtempSync(join(tmpdir(), `autoheal-growth-${v}-`));
    const data = join(base, 'data');
    try {
      const fed = await child<FeedResult>(['feed', v, data]);
      const opened = await child<OpenResult>(['open', v, data]);
      rows.push({ variant: v, fed, opened });
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  }
  console.log('');
  console.log(
    [
      'variant ',
      'feed s',
      'prunes (mean ms)',
      'RSS before MB',
      'RSS after MB',
      'heap after MB',
      'journal MB',
      'state files MB',
      'start-up ms',
      'RSS after start-up MB',
      'entries after start-up',
    ].join(' | '),
  );
  for (const { variant, fed, opened } of rows) {
    console.log(
      [
        variant.padEnd(8),
        (fed.feedMs / 1000).toFixed(1),
        fed.prunes ? `${fed.prunes} (${(fed.pruneMs / fed.prunes).toFixed(2)})` : '-',
        fed.rssBeforeMb,
        fed.rssAfterMb,
        fed.heapAfterMb,
        mb(journalBytes(fed.files)),
        mb(sum(fed.files)),
        opened.openMs,
        opened.rssMb,
        Object.entries(opened.entries)
          .map(([k, n]) => `${k} ${n}`)
          .join(', '),
      ].join(' | '),
    );
  }
  console.log(
    `\nprunes: one per ${PRUNE_INTERVAL_MS / 60_000} simulated minutes (the store's timer in the service), ` +
      'each a full pass over the state; feed s includes them and the background compactions they start.',
  );
  console.log(
    'journal MB and state files MB: on disk when feeding ended (journal = state.journal + .prev; ' +
      'state files add the snapshot).\nstart-up: a fresh process opening that state (replay and ' +
      'compaction), plus the start-up prune for "prune".',
  );
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
