// Incidents, newest first: what the healer saw, decided and did about each, for the operator to read.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { parseDuration } from '../../src/core/duration.js';
import type { Incident } from '../../src/state/store.js';
import {
  IncidentList,
  type IncidentOut,
  IncidentsQuery,
  SECURITY,
  TAGS,
} from '../../src/http/admin-schemas.js';
import { API, errors, fail, iso } from './shared.js';

function toIncident(i: Incident): IncidentOut {
  return {
    id: i.id,
    container: i.container,
    status: i.status,
    openedAt: iso(i.openedAt),
    closedAt: i.closedAt === undefined ? undefined : iso(i.closedAt),
    alertname: i.alertname,
    events: i.events.map((e) => ({ ...e, at: iso(e.at) })),
  };
}

/** `since` as an ISO 8601 time or a duration ago ("24h"); undefined when it is neither. */
export function parseSince(text: string, now: number): number | undefined {
  const ago = parseDuration(text);
  if (ago !== undefined) return now - ago;
  if (!/^[0-9]{4}-[0-9]{2}-[0-9]{2}/.test(text)) return undefined;
  const t = Date.parse(text);
  return Number.isNaN(t) ? undefined : t;
}

const incidentRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { store, clock } = app.deps;

  app.get(
    `${API}/incidents`,
    {
      schema: {
        tags: TAGS,
        security: SECURITY,
        summary: 'Incidents, newest first, with their signals, decisions, actions and verifications',
        querystring: IncidentsQuery,
        response: { 200: IncidentList, ...errors },
      },
    },
    async (req) => {
      const q = req.query;
      let since: number | undefined;
      if (q.since !== undefined) {
        since = parseSince(q.since, clock.now());
        if (since === undefined) {
          return fail({
            status: 400,
            error: 'bad_since',
            message: `since: "${q.since}" is neither a duration (24h, 7d) nor an ISO 8601 time`,
          });
        }
      }
      const limit = Math.min(Math.max(Number(q.limit ?? 100), 1), 1000);
      const incidents = store
        .listIncidents({ since, container: q.container?.replace(/^\//, '') })
        .slice(0, limit)
        .map(toIncident);
      return { incidents };
    },
  );
};
export default incidentRoutes;
