// Forecasts, pure (predictive_repair_agent): from a window of samples of something that fails when it
// reaches a limit (a container's memory working set against its cgroup limit, a filesystem's used bytes
// against its size), the fitted trend, the fit's quality, when the limit will be reached, and whether
// that is sound enough to act on. Every "no" has a reason.
//
// The method: a Theil-Sen line (the median of the slopes between every pair of samples, and the
// median intercept). One spike or a few bad scrapes move it little, where least squares follows them;
// it needs no tuning. Its quality is R² of that line over the window; a second fit over the newer half
// of the window must agree (a leak that stopped is not forecast to go on). Simple on purpose: it is
// explained in the guide and checked against the test series (steady leak, noisy flat line, single
// spike, a leak that stops, a fast leak).

/** memory and disk reach a limit and are acted on; restarts (a rising restart rate) is announced. */
export type ForecastKind = 'memory' | 'disk' | 'restarts';

/** A sample: time (epoch ms) and value. */
export interface Sample {
  readonly t: number;
  readonly v: number;
}

export interface Fit {
  /** Change per second (bytes/s). */
  readonly slope: number;
  /** Value of the line at t = 0 of the window's own time base (see `t0`). */
  readonly intercept: number;
  /** The window's first sample time (epoch ms): the line is intercept + slope × (t − t0) / 1000. */
  readonly t0: number;
  /** R² of the line over the window (1: every sample on it; 0 or less: no better than the mean). */
  readonly r2: number;
  /** Median absolute deviation of the residuals (bytes). */
  readonly spread: number;
  readonly points: number;
  /** From the first sample to the last (s). */
  readonly windowSeconds: number;
}

/** The guards: when a forecast is sound enough to act on. */
export interface ForecastGuards {
  readonly minPoints: number;
  readonly minR2: number;
  /** Consecutive runs that must agree before acting. */
  readonly agreeRuns: number;
  /** Only failures predicted within this long are acted on (ms). */
  readonly horizonMs: number;
  /** At most this many preventive actions per day on this host. */
  readonly maxActionsPerDay: number;
  /** Act at the latest this long before the predicted failure (ms). */
  readonly leadMs: number;
}

export const DEFAULT_GUARDS: ForecastGuards = {
  minPoints: 20,
  minR2: 0.9,
  agreeRuns: 3,
  horizonMs: 24 * 3_600_000,
  maxActionsPerDay: 3,
  leadMs: 3_600_000,
};

export type ForecastReason =
  | 'too_few_points'
  | 'no_trend'
  | 'poor_fit'
  | 'slowing'
  | 'beyond_horizon'
  | 'at_limit'
  | 'ok';

export interface Forecast {
  readonly kind: ForecastKind;
  readonly target: string;
  readonly at: number;
  readonly current: number;
  readonly limit: number;
  readonly fit?: Fit | undefined;
  /** When the line reaches the limit (epoch ms); undefined when it never does. */
  readonly failureAt?: number | undefined;
  /** ok: a sound forecast of a failure inside the horizon; anything else says why not. */
  readonly reason: ForecastReason;
  readonly detail: string;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/** The Theil-Sen line of the samples; undefined for fewer than two distinct times. */
export function theilSen(samples: ReadonlyArray<Sample>): Fit | undefined {
  const pts = samples.filter((s) => Number.isFinite(s.t) && Number.isFinite(s.v)).sort((a, b) => a.t - b.t);
  if (pts.length < 2) return undefined;
  const t0 = (pts[0] as Sample).t;
  const xs = pts.map((p) => (p.t - t0) / 1000);
  const ys = pts.map((p) => p.v);
  // Every pair for up to 400 samples (80k slopes); beyond that, pairs a fixed stride apart, which keeps
  // the estimator's robustness at a bounded cost.
  const slopes: number[] = [];
  const n = pts.length;
  const stride = n <= 400 ? 1 : Math.ceil(n / 400);
  for (let i = 0; i < n; i += stride)
    for (let j = i + 1; j < n; j += stride) {
      const dx = (xs[j] as number) - (xs[i] as number);
      if (dx > 0) slopes.push(((ys[j] as number) - (ys[i] as number)) / dx);
    }
  if (slopes.length === 0) return undefined;
  const slope = median(slopes);
  const intercept = median(ys.map((y, i) => y - slope * (xs[i] as number)));
  const mean = ys.reduce((a, b) => a + b, 0) / n;
  let ssTot = 0;
  let ssRes = 0;
  const residuals: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = (ys[i] as number) - (intercept + slope * (xs[i] as number));
    residuals.push(Math.abs(r));
    ssRes += r * r;
    ssTot += ((ys[i] as number) - mean) ** 2;
  }
  // A perfectly flat series is perfectly fitted by a flat line.
  const r2 = ssTot === 0 ? (ssRes === 0 ? 1 : 0) : 1 - ssRes / ssTot;
  return {
    slope,
    intercept,
    t0,
    r2,
    spread: median(residuals),
    points: n,
    windowSeconds: (xs[n - 1] as number) - (xs[0] as number),
  };
}

const hours = (ms: number) => `${(ms / 3_600_000).toFixed(ms < 36_000_000 ? 2 : 1)} h`;

/**
 * The forecast of one series against its limit: the fit, when the line reaches the limit, and whether
 * it is sound (`reason: 'ok'`) by the guards that look at one run (points, trend, fit, slowing, horizon).
 */
export function forecastOf(o: {
  readonly kind: ForecastKind;
  readonly target: string;
  readonly samples: ReadonlyArray<Sample>;
  readonly limit: number;
  readonly now: number;
  readonly guards: ForecastGuards;
}): Forecast {
  const { samples, limit, now, guards } = o;
  const last = samples.reduce<Sample | undefined>((a, s) => (!a || s.t > a.t ? s : a), undefined);
  const base = { kind: o.kind, target: o.target, at: now, current: last?.v ?? 0, limit };
  if (samples.length < guards.minPoints) {
    return { ...base, reason: 'too_few_points', detail: `${samples.length} of ${guards.minPoints} samples` };
  }
  const fit = theilSen(samples);
  if (!fit) return { ...base, reason: 'too_few_points', detail: 'no two samples apart in time' };
  if (base.current >= limit) return { ...base, fit, reason: 'at_limit', detail: 'already at its limit' };
  // Rising by less than 0.1 % of the limit per day is no trend worth a forecast.
  if (fit.slope <= limit / 86_400_000)
    return { ...base, fit, reason: 'no_trend', detail: `slope ${perHour(fit.slope, o.kind)}: not rising` };
  if (fit.r2 < guards.minR2) {
    return {
      ...base,
      fit,
      reason: 'poor_fit',
      detail: `R² ${fit.r2.toFixed(2)} below ${guards.minR2}: the samples do not follow a line`,
    };
  }
  const failureAt = Math.round(fit.t0 + ((limit - fit.intercept) / fit.slope) * 1000);
  // The newer half must still be rising at half the slope at least: a leak that stopped is not one.
  const mid = fit.t0 + (fit.windowSeconds * 1000) / 2;
  const recent = theilSen(samples.filter((s) => s.t >= mid));
  if (recent && recent.slope < fit.slope / 2) {
    return {
      ...base,
      fit,
      failureAt,
      reason: 'slowing',
      detail: `the newer half rises ${perHour(recent.slope, o.kind)}, under half of ${perHour(fit.slope, o.kind)}`,
    };
  }
  if (failureAt - now > guards.horizonMs) {
    return {
      ...base,
      fit,
      failureAt,
      reason: 'beyond_horizon',
      detail: `limit in ${hours(failureAt - now)}, beyond the ${hours(guards.horizonMs)} horizon`,
    };
  }
  return {
    ...base,
    fit,
    failureAt,
    reason: 'ok',
    detail: `limit in ${hours(Math.max(0, failureAt - now))} (${perHour(fit.slope, o.kind)}, R² ${fit.r2.toFixed(3)}, ${fit.points} samples)`,
  };
}

/** A slope in words: "+12.0 MiB/h". */
export function perHour(bytesPerSecond: number, kind: ForecastKind = 'memory'): string {
  const h = bytesPerSecond * 3600;
  if (kind === 'restarts') return `${h >= 0 ? '+' : ''}${h.toFixed(1)} starts/h`;
  const abs = Math.abs(h);
  const [div, unit] =
    abs >= 1024 ** 3
      ? [1024 ** 3, 'GiB']
      : abs >= 1024 ** 2
        ? [1024 ** 2, 'MiB']
        : abs >= 1024
          ? [1024, 'KiB']
          : [1, 'B'];
  return `${h >= 0 ? '+' : '-'}${(abs / div).toFixed(1)} ${unit}/h`;
}

export type PlanReason = 'maintenance_window' | 'asap';

/**
 * When to act on a sound forecast: at the next maintenance window if that starts at least `leadMs`
 * before the predicted failure, otherwise now.
 */
export function planAction(o: {
  readonly failureAt: number;
  readonly now: number;
  readonly nextWindow?: number | undefined;
  readonly leadMs: number;
}): { at: number; reason: PlanReason } {
  const latest = o.failureAt - o.leadMs;
  if (o.nextWindow !== undefined && o.nextWindow <= latest)
    return { at: Math.max(o.now, o.nextWindow), reason: 'maintenance_window' };
  return { at: o.now, reason: 'asap' };
}

/** Preventive actions taken in the last day (epoch ms), the ones older dropped. */
export function actionsToday(times: ReadonlyArray<number>, now: number): number[] {
  return times.filter((t) => t > now - 86_400_000 && t <= now);
}

/**
 * Whether a preventive action worked: the value fell by at least `drop` (a fraction) from what it was
 * before the action. A restart that leaves memory where it was is escalated, not repeated.
 */
export function actionHelped(before: number, after: number, drop = 0.2): boolean {
  return after <= before * (1 - drop);
}
