// Forecasts (predictive_repair_agent): what the last forecast run predicted for each watched container
// and filesystem, with its evidence (slope, fit, window, samples), whether it is sound, and the
// preventive action it placed or took. Read only.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ForecastView } from '../../src/inputs/forecasts.js';
import { ForecastList, type ForecastOut, SECURITY, TAGS } from '../../src/http/admin-schemas.js';
import { API, errors, iso } from './shared.js';

export function toForecast(f: ForecastView): ForecastOut {
  return {
    target: f.target,
    kind: f.kind,
    at: iso(f.at),
    current: f.current,
    limit: f.limit,
    reason: f.reason,
    detail: f.detail,
    failureAt: f.failureAt === undefined ? undefined : iso(f.failureAt),
    secondsUntilFailure: f.failureAt === undefined ? undefined : Math.round((f.failureAt - f.at) / 1000),
    slopePerSecond: f.fit?.slope,
    r2: f.fit?.r2,
    spread: f.fit?.spread,
    points: f.fit?.points,
    windowSeconds: f.fit?.windowSeconds,
    agreedRuns: f.agreedRuns,
    action: f.action,
    plannedAt: f.plannedAt === undefined ? undefined : iso(f.plannedAt),
    plannedReason: f.plannedReason,
    lastAction: f.lastAction ? { ...f.lastAction, at: iso(f.lastAction.at) } : undefined,
    heldUntil: f.heldUntil === undefined ? undefined : iso(f.heldUntil),
  };
}

const forecastRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    `${API}/forecasts`,
    {
      schema: {
        tags: TAGS,
        security: SECURITY,
        summary:
          'Forecasts of memory and disk failures, their evidence and the preventive actions they placed',
        response: { 200: ForecastList, ...errors },
      },
    },
    async () => {
      const f = app.deps.forecasts;
      return { enabled: f?.enabled ?? false, forecasts: (f?.list() ?? []).map(toForecast) };
    },
  );
};
export default forecastRoutes;
