// Webhook benchmark: a realistic 10-alert Alertmanager payload against the real route, next to a bare
// Fastify route that only parses the same JSON, measured in the same run. Prints requests per second,
// latency percentiles, the ratio to the bare route, and p99 at a fixed 1,000 requests per second.
// Run: npm run bench:webhook   (about 40 s; loopback only, bounded in time)
import { type ChildProcess, fork } from 'node:child_process';
import { createServer } from 'node:net';
import autocannon from 'autocannon';
import { alertGroupPayload, BENCH_TOKEN } from './common.js';

const DURATION_S = Number(process.env.BENCH_DURATION ?? 8);

/** A group of 10 new alerts, each naming its own container (web-0 … web-9). */
const payload = (seq: number) =>
  alertGroupPayload(seq, {
    size: 10,
    container: (i) => `web-${i}`,
    annotations: (container) => ({
      summary: `Container ${container} is unhealthy`,
      description: `The health check of ${container} has failed for 30s; AutoHeal-Nexus will restart it.`,
      runbook_url: 'https://example.invalid/docs/runbooks.md#containerunhealthy',
    }),
    startsAt: new Date(Date.UTC(2026, 10, 28, 0, 0, seq % 60)).toISOString(),
  });

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

async function startServer(mode: 'service' | 'bare'): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const child = fork(new URL('./webhook-server.ts', import.meta.url).pathname, [mode, String(port)], {
    execArgv: ['--import', 'tsx'],
    stdio: 'inherit',
  });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`${mode} server exited with ${code}`)));
  });
  return { port, child };
}

interface Result {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

async function load(
  port: number,
  opts: { rate?: number; connections: number; durationS?: number },
): Promise<Result> {
  let seq = 0;
  const r = await autocannon({
    url: `http://127.0.0.1:${port}/webhooks/alertmanager`,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${BENCH_TOKEN}` },
    connections: opts.connections,
    duration: opts.durationS ?? DURATION_S,
    overallRate: opts.rate,
    // Every request is a new group of alerts, as in a storm: nothing is a duplicate.
    requests: [
      {
        setupRequest: (req) => {
          req.body = JSON.stringify(payload(seq++));
          return req;
        },
      },
    ],
  });
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors,
    non2xx: r.non2xx,
  };
}

/** Each phase on a fresh server, so one phase's state (every alert is kept for de-duplication) does not
 * weigh on the next. */
async function phase(
  mode: 'service' | 'bare',
  opts: { rate?: number; connections: number },
): Promise<Result> {
  const { port, child } = await startServer(mode);
  try {
    await load(port, { connections: opts.connections, rate: opts.rate, durationS: 2 }); // warm-up (JIT)
    return await load(port, opts);
  } finally {
    child.kill('SIGKILL');
  }
}

async function measure(mode: 'service' | 'bare') {
  const max = await phase(mode, { connections: 10 });
  const fixed = await phase(mode, { connections: 10, rate: 1000 });
  return { max, fixed };
}

const bare = await measure('bare');
const service = await measure('service');
const fmt = (r: Result) =>
  `${r.rps.toFixed(0).padStart(7)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  errors ${r.errors} non-2xx ${r.non2xx}`;
console.log(`webhook benchmark: 10 alerts per request, ${DURATION_S} s per run, 10 connections, loopback`);
console.log(`bare route (parse only)   max: ${fmt(bare.max)}`);
console.log(`autoheal webhook          max: ${fmt(service.max)}`);
console.log(
  `ratio (webhook / bare) throughput: ${(service.max.rps / bare.max.rps).toFixed(2)}  (goal >= 0.50)`,
);
console.log(`bare route       at 1000 req/s: ${fmt(bare.fixed)}`);
console.log(`autoheal webhook at 1000 req/s: ${fmt(service.fixed)}  (goal p99 < 10 ms)`);
