// Forecasts, the pure parts: the Theil-Sen line against least squares on a spike, each guard's reason on
// its own series, the plan (maintenance window or at once), the daily count, and whether an action
// helped. And the Forecaster with a scripted Prometheus: disk forecasts ask for a cleanup, the daily
// cap holds across restarts of the service (it is durable), and an action that did not help holds the
// target.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import {
  actionHelped,
  actionsToday,
  DEFAULT_GUARDS,
  forecastOf,
  perHour,
  planAction,
  type Sample,
  theilSen,
} from '../../src/core/forecast.js';
import { Forecaster, type PrometheusApi } from '../../src/inputs/forecasts.js';
import { createMetrics } from '../../src/metrics.js';
import { Store } from '../../src/state/store.js';

const MiB = 1024 ** 2;
const line = (n: number, v0: number, perS: number, t0 = 0): Sample[] =>
  Array.from({ length: n }, (_, i) => ({ t: t0 + i * 1000, v: v0 + perS * i }));
const guards = { ...DEFAULT_GUARDS, minPoints: 10, horizonMs: 3_600_000 };
const fc = (samples: Sample[], now = samples.at(-1)?.t ?? 0) =>
  forecastOf({ kind: 'memory', target: 'web', samples, limit: 200 * MiB, now, guards });

t.test('Theil-Sen: exact on a line, unmoved by a spike that drags least squares', async (t) => {
  const fit = theilSen(line(30, 100, 2));
  t.equal(fit?.slope, 2);
  t.equal(fit?.intercept, 100);
  t.equal(fit?.r2, 1);
  t.equal(fit?.points, 30);
  t.equal(fit?.windowSeconds, 29);
  const spiked = line(30, 100, 0).map((s, i) => (i === 25 ? { ...s, v: 10_000 } : s));
  t.equal(theilSen(spiked)?.slope, 0, 'the median ignores one spike');
  // Least squares on the same series would slope upwards.
  const n = spiked.length;
  const mx = spiked.reduce((a, s) => a + s.t / 1000, 0) / n;
  const my = spiked.reduce((a, s) => a + s.v, 0) / n;
  const ls =
    spiked.reduce((a, s) => a + (s.t / 1000 - mx) * (s.v - my), 0) /
    spiked.reduce((a, s) => a + (s.t / 1000 - mx) ** 2, 0);
  t.ok(ls > 20, `least squares slope ${ls.toFixed(1)}`);
  t.equal(theilSen([{ t: 0, v: 1 }]), undefined);
  t.equal(
    theilSen([
      { t: 0, v: 1 },
      { t: 0, v: 2 },
    ]),
    undefined,
    'no two times apart',
  );
  const big = theilSen(line(2000, 0, 1));
  t.equal(big?.slope, 1, 'a long series is strided, still exact');
});

t.test('each guard says why', async (t) => {
  t.match(fc(line(5, 100 * MiB, MiB)), { reason: 'too_few_points', detail: '5 of 10 samples' });
  t.match(fc(line(30, 100 * MiB, 0)), { reason: 'no_trend' });
  t.match(fc(line(30, 100 * MiB, -MiB)), { reason: 'no_trend' });
  t.match(fc(line(30, 200 * MiB, MiB)), { reason: 'at_limit' });
  let seed = 7;
  const rand = () => {
    seed = (seed * 16807) % 2147483647;
    return seed / 2147483647;
  };
  const noisy = line(60, 100 * MiB, 0.5 * MiB).map((s) => ({ ...s, v: s.v + (rand() - 0.5) * 50 * MiB }));
  t.match(fc(noisy), { reason: 'poor_fit', detail: /R² 0\.21 below 0\.9/ });
  // A leak that slows down: a good line over the window, but the newer half rises far less.
  const slowing = [...line(18, 60 * MiB, 3 * MiB), ...line(12, 60 * MiB + 54 * MiB, 0.5 * MiB, 18_000)];
  t.match(fc(slowing), {
    reason: 'slowing',
    detail: /the newer half rises \+1\.8 GiB\/h, under half of \+8\.3 GiB\/h/,
  });
  // One that stopped: a rise, then flat; no line explains it.
  const stopped = [...line(15, 60 * MiB, 3 * MiB), ...line(15, 60 * MiB + 42 * MiB, 0, 15_000)];
  t.match(fc(stopped), { reason: 'poor_fit' });
  const slow = fc(line(30, 100 * MiB, 0.001 * MiB));
  t.match(slow, { reason: 'beyond_horizon', detail: /beyond the 1\.00 h horizon/ });
  const leak = fc(line(30, 100 * MiB, MiB));
  t.match(leak, { reason: 'ok', detail: /limit in 0\.02 h \(\+3\.5 GiB\/h, R² 1\.000, 30 samples\)/ });
  t.equal(leak.failureAt, 100_000, 'the line reaches 200 MiB at 100 s');
  t.equal(leak.current, 129 * MiB);
});

t.test('plans: the window when it comes early enough, else at once', async (t) => {
  t.same(planAction({ failureAt: 10_000_000, now: 0, nextWindow: 3_000_000, leadMs: 3_600_000 }), {
    at: 3_000_000,
    reason: 'maintenance_window',
  });
  t.same(planAction({ failureAt: 5_000_000, now: 0, nextWindow: 3_000_000, leadMs: 3_600_000 }), {
    at: 0,
    reason: 'asap',
  });
  t.same(planAction({ failureAt: 5_000_000, now: 10, leadMs: 0 }), { at: 10, reason: 'asap' });
  t.same(actionsToday([1, 50_000_000, 90_000_000, 200_000_000], 100_000_000), [50_000_000, 90_000_000]);
  t.ok(actionHelped(100, 79));
  t.notOk(actionHelped(100, 90));
  t.ok(actionHelped(100, 98, 0.01));
  t.equal(perHour(MiB / 3600), '+1.0 MiB/h');
  t.equal(perHour(-2 / 3600), '-2.0 B/h');
  t.equal(perHour(0.5 / 3600, 'restarts'), '+0.5 starts/h');
});

/** A Prometheus whose answers the test sets per query kind. */
function scripted(
  series: Record<string, Map<string, Sample[]>>,
  limits: Record<string, Map<string, number>>,
): PrometheusApi {
  const kind = (expr: string) =>
    expr.includes('node_filesystem') ? 'disk' : expr.includes('start_time') ? 'restarts' : 'memory';
  return {
    range: async (expr) => series[kind(expr)] ?? new Map(),
    instant: async (expr) => limits[kind(expr)] ?? new Map(),
  };
}

function forecaster(
  dir: string,
  prometheus: PrometheusApi,
  now: { t: number },
  env: Record<string, string> = {},
) {
  const config = loadConfig({
    DATA_DIR: dir,
    PROMETHEUS_URL: 'http://127.0.0.1:1',
    FORECAST_MIN_POINTS: '10',
    FORECAST_AGREE_RUNS: '2',
    FORECAST_LEAD: '0',
    ...env,
  });
  const log = pino({ level: 'silent' });
  const store = new Store(dir, log);
  const requests: Array<{ target: unknown; action: unknown; reason: unknown }> = [];
  const f = new Forecaster({
    config,
    docker: { listContainers: async () => [] },
    engine: {
      request: (s) => {
        requests.push({ target: s.target, action: s.action, reason: s.reason });
        const id = `rem-${requests.length}`;
        store.batch(() =>
          store.putRemediation({
            id,
            target: 'host',
            action: String(s.action),
            state: 'succeeded',
            source: 'schedule',
            createdAt: now.t,
            updatedAt: now.t,
          } as never),
        );
        return id;
      },
      policyContext: { scope: 'all' } as never,
    },
    store,
    metrics: createMetrics(new Registry()),
    log,
    clock: { now: () => now.t },
    prometheus,
  });
  return { f, store, requests };
}

t.test('Forecaster: a filling disk asks for a cleanup; the daily cap is durable', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'forecast-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const now = { t: 1_000_000 };
  const disk = new Map([['/', line(30, 50e9, 1e6, now.t - 29_000)]]);
  const prom = scripted({ disk }, { disk: new Map([['/', 100e9]]) });
  const a = forecaster(dir, prom, now, { FORECAST_MAX_ACTIONS: '1' });
  await a.f.runOnce();
  t.equal(a.requests.length, 0, 'one run is not agreement');
  t.equal(a.f.list()[0]?.agreedRuns, 1);
  await a.f.runOnce();
  t.same(
    a.requests.map((r) => [r.target, r.action]),
    [[{ kind: 'host' }, 'cleanup']],
  );
  t.match(String(a.requests[0]?.reason), /disk forecast: \/ reaches its limit/);
  a.store.close();
  // A restart of the service: agreement starts over, and the day's action is still counted.
  const b = forecaster(dir, prom, now, { FORECAST_MAX_ACTIONS: '1' });
  await b.f.runOnce();
  await b.f.runOnce();
  t.equal(b.requests.length, 0, 'FORECAST_MAX_ACTIONS=1 already used today');
  b.store.close();
});

t.test('Forecaster: a cleanup that freed nothing holds the target and is not repeated', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'forecast-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const now = { t: 1_000_000 };
  const series = { disk: new Map([['/', line(30, 50e9, 1e6, now.t - 29_000)]]) };
  const prom = scripted(series, { disk: new Map([['/', 100e9]]) });
  const a = forecaster(dir, prom, now);
  await a.f.runOnce();
  await a.f.runOnce();
  t.equal(a.requests.length, 1);
  // Later: the disk is as full as before.
  for (let i = 0; i < 4; i++) {
    now.t += 120_000;
    series.disk.set('/', line(30, 50e9 + (now.t - 1_000_000) * 1000, 1e6, now.t - 29_000));
    await a.f.runOnce();
  }
  t.equal(a.requests.length, 1, 'not repeated');
  const view = a.f.list()[0];
  t.ok(view?.heldUntil && view.heldUntil > now.t, 'held');
  t.equal(view?.lastAction?.helped, false);
  a.store.close();
});
