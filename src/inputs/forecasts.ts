// Forecasts in (predictive_repair_agent, PROMETHEUS_URL): on a schedule, the service asks Prometheus
// for what it already has (cAdvisor's memory working set and limit of every watched container, the
// node exporter's filesystems), fits each series (core/forecast.ts), and when a failure is forecast
// soundly and agreed on by consecutive runs, places a preventive action before it: at the next
// maintenance window (MAINTENANCE_WINDOW) when that comes early enough, else at once. The action is a
// request to the engine like a schedule's (scope, protection, cooldowns, the circuit breaker and
// DRY_RUN hold), audited and announced with the forecast that caused it. Whether it worked is checked
// at the next runs: a restart that does not lower memory is escalated and not repeated.
//
// Kept in memory: the agreement counts, the plans and the checks after an action (a restart of the
// service starts them over: agreement must be earned again, which is the safe side). Durable: the
// preventive actions of the last day (the daily cap) and the targets held after an action that did
// not help.
import { randomUUID } from 'node:crypto';
import { Cron } from 'croner';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Clock } from '../core/clock.js';
import {
  actionHelped,
  actionsToday,
  type Forecast,
  type ForecastKind,
  forecastOf,
  type PlanReason,
  perHour,
  planAction,
  type Sample,
} from '../core/forecast.js';
import { CONTAINER_LABELS } from '../core/labels.js';
import { checkScope, scopeListFilter } from '../core/scope.js';
import { requestSignal } from '../core/signals.js';
import type { ActionName } from '../core/types.js';
import type { DockerClient } from '../docker/client.js';
import type { Engine } from '../engine/engine.js';
import type { Metrics } from '../metrics.js';
import type { TextNotifier } from '../notifiers/escalation.js';
import type { Store } from '../state/store.js';

/** The PromQL a kind is forecast from: the value that rises, and the limit it fails at, by target label. */
export const FORECAST_QUERIES: Record<ForecastKind, { value: string; limit?: string; by: string }> = {
  memory: {
    value: 'max by (name) (container_memory_working_set_bytes{name!=""})',
    limit: 'max by (name) (container_spec_memory_limit_bytes{name!=""} > 0)',
    by: 'name',
  },
  disk: {
    value:
      'max by (mountpoint) (node_filesystem_size_bytes{fstype!~"tmpfs|overlay|squashfs|ramfs"} - node_filesystem_avail_bytes{fstype!~"tmpfs|overlay|squashfs|ramfs"})',
    limit: 'max by (mountpoint) (node_filesystem_size_bytes{fstype!~"tmpfs|overlay|squashfs|ramfs"})',
    by: 'mountpoint',
  },
  // Starts per 15 minutes (cAdvisor's start time changes at each); the limit is MAX_RESTART_ATTEMPTS,
  // the rate at which the service would give up on the container.
  restarts: {
    value: 'max by (name) (changes(container_start_time_seconds{name!=""}[15m]))',
    by: 'name',
  },
};

/** One forecast as the API shows it, with where it stands. */
export interface ForecastView extends Forecast {
  /** Consecutive runs whose forecast was sound. */
  readonly agreedRuns: number;
  readonly action?: ActionName | undefined;
  /** A preventive action placed, not yet taken. */
  readonly plannedAt?: number | undefined;
  readonly plannedReason?: PlanReason | undefined;
  /** The last preventive action: when, its remediation, and whether it helped once known. */
  readonly lastAction?: { at: number; remediationId: string; before: number; helped?: boolean } | undefined;
  /** Held: no preventive action until this time (a restart that did not help). */
  readonly heldUntil?: number | undefined;
}

interface TargetState {
  agreed: number;
  last?: Forecast;
  action?: ActionName;
  plan?: { at: number; reason: PlanReason };
  acted?: { at: number; remediationId: string; before: number; helped?: boolean };
  /** restarts: when the humans were last told. */
  warnedAt?: number;
}

export interface ForecasterDeps {
  readonly config: Config;
  readonly docker: Pick<DockerClient, 'listContainers'>;
  readonly engine: Pick<Engine, 'request' | 'policyContext'>;
  readonly store: Store;
  readonly metrics: Pick<Metrics, 'forecastSeconds' | 'forecastR2' | 'forecastRuns' | 'forecastActions'>;
  readonly log: Logger;
  readonly clock: Clock;
  readonly notifier?: TextNotifier | undefined;
  /** Prometheus's query API; by default HTTP to config.forecast.prometheusUrl. */
  readonly prometheus?: PrometheusApi;
}

export interface PrometheusApi {
  /** A range query: one series of samples per value of `by`. */
  range(expr: string, startMs: number, endMs: number, stepSeconds: number): Promise<Map<string, Sample[]>>;
  /** An instant query: one value per value of `by`. */
  instant(expr: string): Promise<Map<string, number>>;
}

/** The Prometheus HTTP API (v1): every parameter URL-encoded, a timeout on every call, no redirects. */
export function prometheusHttp(
  baseUrl: string,
  by: (expr: string) => string,
  timeoutMs = 10_000,
): PrometheusApi {
  const get = async (path: string, params: Record<string, string>) => {
    const q = new URLSearchParams(params).toString();
    const res = await fetch(`${baseUrl}${path}?${q}`, {
      redirect: 'error',
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`Prometheus answered ${res.status}: ${text.slice(0, 200)}`);
    const body = JSON.parse(text) as {
      status: string;
      data?: {
        result?: Array<{
          metric: Record<string, string>;
          values?: Array<[number, string]>;
          value?: [number, string];
        }>;
      };
    };
    if (body.status !== 'success') throw new Error(`Prometheus: ${text.slice(0, 200)}`);
    return body.data?.result ?? [];
  };
  return {
    async range(expr, startMs, endMs, stepSeconds) {
      const out = new Map<string, Sample[]>();
      for (const r of await get('/api/v1/query_range', {
        query: expr,
        start: String(startMs / 1000),
        end: String(endMs / 1000),
        step: String(stepSeconds),
      })) {
        const key = r.metric[by(expr)];
        if (!key) continue;
        out.set(
          key,
          (r.values ?? [])
            .map(([t, v]) => ({ t: t * 1000, v: Number(v) }))
            .filter((s) => Number.isFinite(s.v)),
        );
      }
      return out;
    },
    async instant(expr) {
      const out = new Map<string, number>();
      for (const r of await get('/api/v1/query', { query: expr })) {
        const key = r.metric[by(expr)];
        const v = Number(r.value?.[1]);
        if (key && Number.isFinite(v)) out.set(key, v);
      }
      return out;
    },
  };
}

const byOf = (expr: string) => (expr.includes('mountpoint') ? 'mountpoint' : 'name');
const iso = (ms: number) => new Date(ms).toISOString();

/** A preventive action whose effect is not known yet (kept for at most an hour while its target is away). */
const awaitingResult = (s: TargetState, now: number): boolean =>
  s.acted !== undefined && s.acted.helped === undefined && now - s.acted.at < 3_600_000;

export class Forecaster {
  private readonly states = new Map<string, TargetState>();
  private readonly prometheus: PrometheusApi;
  private readonly window: Cron | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly d: ForecasterDeps) {
    const url = d.config.forecast.prometheusUrl;
    this.prometheus = d.prometheus ?? prometheusHttp(url ?? 'http://127.0.0.1:9090', byOf);
    const w = d.config.forecast.maintenanceWindow;
    this.window = w ? new Cron(w, { mode: '5-or-6-parts', paused: true }) : undefined;
  }

  get enabled(): boolean {
    return this.d.config.forecast.prometheusUrl !== undefined;
  }

  /** The forecasts of the last run, sorted by target, with their plans and last actions. */
  list(): ForecastView[] {
    const holds = this.d.store.forecastHolds();
    return [...this.states.entries()]
      .filter(([, s]) => s.last)
      .map(([key, s]) => ({
        ...(s.last as Forecast),
        agreedRuns: s.agreed,
        action: s.action,
        plannedAt: s.plan?.at,
        plannedReason: s.plan?.reason,
        lastAction: s.acted,
        heldUntil: holds[key]?.until,
      }))
      .sort((a, b) => a.target.localeCompare(b.target));
  }

  start(): void {
    if (!this.enabled || this.stopped) return;
    this.d.log.info(
      {
        event: 'forecasts',
        enabled: true,
        intervalMs: this.d.config.forecast.intervalMs,
        maintenanceWindow: this.d.config.forecast.maintenanceWindow,
      },
      `forecasts on: every ${this.d.config.forecast.intervalMs / 1000}s from ${new URL(this.d.config.forecast.prometheusUrl as string).origin}`,
    );
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One run now (tests, and the timer). Never throws. */
  runOnce(): Promise<void> {
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.runOnce().finally(() => {
        const now = this.d.clock.now();
        // The next run, or a plan due before it.
        const plans = [...this.states.values()].flatMap((s) => (s.plan ? [s.plan.at] : []));
        const next = Math.min(
          now + this.d.config.forecast.intervalMs,
          ...plans.map((p) => Math.max(p, now + 50)),
        );
        this.schedule(next - now);
      });
    }, ms);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    const now = this.d.clock.now();
    try {
      const watched = await this.watched();
      const forecasts = [
        ...(await this.forecastKind('memory', now, (name) => watched.has(name))),
        ...(await this.forecastKind('disk', now, () => true)),
        ...(await this.forecastKind('restarts', now, (name) => watched.has(name))),
      ];
      this.d.metrics.forecastRuns.inc({ result: 'ok' });
      const seen = new Set<string>();
      for (const f of forecasts) {
        const key = `${f.kind}:${f.target}`;
        seen.add(key);
        const s = this.states.get(key) ?? { agreed: 0 };
        s.agreed = f.reason === 'ok' ? s.agreed + 1 : 0;
        s.last = f;
        s.action = f.kind === 'disk' ? 'cleanup' : f.kind === 'restarts' ? undefined : watched.get(f.target);
        this.states.set(key, s);
        this.gauge(f);
      }
      // Targets gone (removed, out of scope, no longer scraped). One whose preventive action is still
      // to be judged is kept: it is missing from the listing while its own restart runs, and its
      // forecast state (the action taken, the memory before it) must outlive that moment.
      for (const [key, s] of [...this.states]) {
        if (seen.has(key) || awaitingResult(s, now)) continue;
        if (s.last) this.clearGauge(s.last);
        this.states.delete(key);
      }
      // Only targets forecast in this run are decided: an absent one's last forecast is stale.
      for (const [key, s] of this.states) if (seen.has(key)) await this.decide(key, s, now);
    } catch (err) {
      this.d.metrics.forecastRuns.inc({ result: 'failed' });
      this.d.log.warn(
        { event: 'forecast_run_failed', err: (err as Error).message },
        `forecast run failed: ${(err as Error).message}`,
      );
    }
  }

  /** Watched containers that take preventive actions, with the action each takes. */
  private async watched(): Promise<Map<string, ActionName>> {
    const ctx = this.d.engine.policyContext;
    const list = await this.d.docker.listContainers({ all: false, labels: scopeListFilter(ctx) });
    const out = new Map<string, ActionName>();
    for (const c of list) {
      if (!checkScope(c, ctx).ok) continue;
      const label = c.labels[CONTAINER_LABELS.forecast];
      if (label === 'false') continue;
      out.set(c.name, label === 'recreate' ? 'recreate' : 'restart');
    }
    return out;
  }

  private async forecastKind(
    kind: ForecastKind,
    now: number,
    keep: (target: string) => boolean,
  ): Promise<Forecast[]> {
    const q = FORECAST_QUERIES[kind];
    const { windowMs } = this.d.config.forecast;
    // About 120 samples per window, at least one a second.
    const step = Math.max(1, Math.round(windowMs / 120_000));
    const [series, limits] = await Promise.all([
      this.prometheus.range(q.value, now - windowMs, now, step),
      q.limit ? this.prometheus.instant(q.limit) : undefined,
    ]);
    const out: Forecast[] = [];
    for (const [target, samples] of series) {
      const limit = limits ? limits.get(target) : this.d.config.policy.maxAttempts;
      if (limit === undefined || !keep(target)) continue;
      out.push(forecastOf({ kind, target, samples, limit, now, guards: this.d.config.forecast.guards }));
    }
    return out;
  }

  private async decide(key: string, s: TargetState, now: number): Promise<void> {
    const f = s.last as Forecast;
    const g = this.d.config.forecast.guards;
    // After an action: did it help? Known once its remediation ended and a run has seen the result.
    if (s.acted && s.acted.helped === undefined) {
      const r = this.d.store.remediation(s.acted.remediationId);
      const done = r && !['queued', 'running'].includes(r.state);
      if (done && r.state !== 'succeeded' && r.state !== 'dry_run') {
        // Skipped or failed: the engine said why (and escalated a failure); the forecast goes on.
        s.acted = { ...s.acted, helped: false };
        this.d.log.info(
          {
            event: 'forecast_action_ended',
            target: f.target,
            kind: f.kind,
            state: r.state,
            skipReason: r.skipReason,
          },
          `preventive ${r.action} of ${f.target} ended ${r.state}${r.skipReason ? ` (${r.skipReason})` : ''}`,
        );
      } else if (done && now - r.updatedAt >= Math.min(this.d.config.forecast.intervalMs, 60_000)) {
        // A restart must free a fifth of the memory; a cleanup, any space at all.
        const helped =
          r.state === 'dry_run' || actionHelped(s.acted.before, f.current, f.kind === 'disk' ? 0.01 : 0.2);
        s.acted = { ...s.acted, helped };
        if (!helped) this.ineffective(key, s, f, now);
        else
          this.d.log.info(
            {
              event: 'forecast_action_helped',
              target: f.target,
              kind: f.kind,
              before: s.acted.before,
              after: f.current,
            },
            `preventive ${r.action} of ${f.target} helped: ${mib(s.acted.before)} → ${mib(f.current)}`,
          );
      }
      if (s.acted.helped === undefined) return; // still waiting for the result
    }
    const held = this.d.store.forecastHolds()[key];
    if (held && held.until > now) {
      s.plan = undefined;
      return;
    }
    if (f.kind === 'restarts') {
      this.warnRestarts(s, f, now);
      return;
    }
    if (f.reason !== 'ok' || s.agreed < g.agreeRuns || f.failureAt === undefined || !s.action) {
      if (s.plan && f.reason !== 'ok') {
        this.d.log.info(
          { event: 'forecast_plan_dropped', target: f.target, kind: f.kind, reason: f.reason },
          `preventive action of ${f.target} dropped: ${f.detail}`,
        );
        s.plan = undefined;
      }
      return;
    }
    // FORECAST_MAX_ACTIONS=0: forecasts only, nothing is ever placed.
    if (g.maxActionsPerDay === 0) return;
    if (!s.plan) {
      const nextWindow = this.window?.nextRun(new Date(now))?.getTime();
      s.plan = planAction({ failureAt: f.failureAt, now, nextWindow, leadMs: g.leadMs });
      this.d.log.info(
        {
          event: 'forecast_plan',
          target: f.target,
          kind: f.kind,
          plannedAt: iso(s.plan.at),
          why: s.plan.reason,
          failureAt: iso(f.failureAt),
          slopePerHour: perHour(f.fit?.slope ?? 0),
          r2: f.fit?.r2,
        },
        `${f.kind} forecast of ${f.target}: limit at ${iso(f.failureAt)}; ${s.action} planned at ${iso(s.plan.at)} (${s.plan.reason === 'asap' ? 'as soon as possible' : 'maintenance window'})`,
      );
    }
    if (s.plan.at <= now) this.act(s, f, now);
  }

  private act(s: TargetState, f: Forecast, now: number): void {
    const g = this.d.config.forecast.guards;
    const today = actionsToday(this.d.store.forecastActions(), now);
    const action = s.action as ActionName;
    if (today.length >= g.maxActionsPerDay) {
      this.d.metrics.forecastActions.inc({ kind: f.kind, result: 'daily_cap' });
      this.d.log.warn(
        {
          event: 'forecast_skipped',
          target: f.target,
          kind: f.kind,
          reason: 'daily_cap',
          today: today.length,
        },
        `preventive ${action} of ${f.target} not taken: ${today.length} of FORECAST_MAX_ACTIONS=${g.maxActionsPerDay} today`,
      );
      s.plan = undefined;
      s.agreed = 0;
      return;
    }
    const why = `${f.kind} forecast: ${f.target} reaches its limit (${mib(f.limit)}) at ${iso(f.failureAt ?? now)}; ${f.detail}`;
    let id: string;
    try {
      this.d.store.batch(() => this.d.store.putForecastActions([...today, now]));
      id = this.d.engine.request(
        requestSignal({
          id: randomUUID(),
          source: 'schedule',
          target: f.kind === 'disk' ? { kind: 'host' } : { kind: 'container', name: f.target },
          action,
          requestedBy: 'forecast',
          reason: why,
          now,
        }),
      );
    } catch (err) {
      this.d.log.error({ err, target: f.target }, 'cannot record a preventive action; not taken');
      return;
    }
    s.plan = undefined;
    s.acted = { at: now, remediationId: id, before: f.current };
    s.agreed = 0;
    this.d.metrics.forecastActions.inc({ kind: f.kind, result: 'requested' });
    this.d.log.info(
      {
        event: 'forecast_action',
        target: f.target,
        kind: f.kind,
        action,
        remediationId: id,
        failureAt: f.failureAt === undefined ? undefined : iso(f.failureAt),
        current: f.current,
        limit: f.limit,
        slopePerSecond: f.fit?.slope,
        r2: f.fit?.r2,
        points: f.fit?.points,
        windowSeconds: f.fit?.windowSeconds,
      },
      `preventive ${action} of ${f.target} requested: ${why}`,
    );
    this.announce(`🔮 Preventive ${action} of ${f.target}\n${why}\nRemediation ${id}`);
  }

  /**
   * A rising restart rate is told to the humans (once a day per container): no restart cures a
   * container that keeps restarting, and the engine's crash-loop and give-up rules act on it.
   */
  private warnRestarts(s: TargetState, f: Forecast, now: number): void {
    const g = this.d.config.forecast.guards;
    if (f.reason !== 'ok' || s.agreed < g.agreeRuns || f.failureAt === undefined) return;
    if (s.warnedAt !== undefined && now - s.warnedAt < 86_400_000) return;
    s.warnedAt = now;
    this.d.metrics.forecastActions.inc({ kind: f.kind, result: 'announced' });
    const text =
      `🔮 ${f.target} restarts more and more often: ${Math.round(f.current)} starts in 15 min now, ` +
      `${f.limit} (MAX_RESTART_ATTEMPTS, where the service gives up) by ${iso(f.failureAt)}; ${f.detail}. ` +
      'A human should look at why it keeps restarting.';
    this.d.log.warn(
      {
        event: 'forecast_warning',
        target: f.target,
        kind: f.kind,
        failureAt: iso(f.failureAt),
        r2: f.fit?.r2,
      },
      text,
    );
    this.announce(text);
  }

  private ineffective(key: string, s: TargetState, f: Forecast, now: number): void {
    const before = s.acted?.before ?? 0;
    const until = now + 86_400_000;
    try {
      this.d.store.batch(() => this.d.store.putForecastHold(key, { until, reason: 'did not help' }, now));
    } catch (err) {
      this.d.log.error({ err, target: f.target }, 'cannot record a forecast hold');
    }
    s.plan = undefined;
    this.d.metrics.forecastActions.inc({ kind: f.kind, result: 'ineffective' });
    const text =
      `⚠️ Preventive ${s.action ?? 'action'} of ${f.target} did not help: ${f.kind} ${mib(before)} before, ` +
      `${mib(f.current)} after (limit ${mib(f.limit)}). No further preventive action on it until ${iso(until)}; ` +
      'a human should look at the leak.';
    this.d.log.warn(
      {
        event: 'forecast_ineffective',
        target: f.target,
        kind: f.kind,
        before,
        after: f.current,
        heldUntil: iso(until),
      },
      text,
    );
    this.announce(text);
  }

  private announce(text: string): void {
    const n = this.d.notifier;
    if (!n?.enabled) return;
    try {
      n.enqueueText(text);
    } catch (err) {
      this.d.log.warn({ err }, 'cannot announce a forecast');
    }
  }

  private gauge(f: Forecast): void {
    const labels = { target: f.target, kind: f.kind };
    if (f.fit) this.d.metrics.forecastR2.set(labels, f.fit.r2);
    if (f.failureAt !== undefined && f.reason !== 'no_trend')
      this.d.metrics.forecastSeconds.set(labels, Math.max(0, (f.failureAt - f.at) / 1000));
    else this.d.metrics.forecastSeconds.remove(labels);
  }

  private clearGauge(f: Forecast): void {
    const labels = { target: f.target, kind: f.kind };
    this.d.metrics.forecastSeconds.remove(labels);
    this.d.metrics.forecastR2.remove(labels);
  }
}

const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
