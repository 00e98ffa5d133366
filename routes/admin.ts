// The admin API: operators' controls over the healer, behind Bearer ADMIN_TOKEN (never the webhook
// token). Manual remediations are an input like any other: this plugin validates, resolves the target
// while the caller waits (so a typo is a 404, not a queued request that quietly skips) and hands a
// signal to the engine, which decides with the same policy as for alerts and the health watcher.
// Every error answers before anything changes.
import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { checkToken } from '../src/auth.js';
import { secretsOf } from '../src/config.js';
import { parseDuration } from '../src/core/duration.js';
import { CONTAINER_LABELS } from '../src/core/labels.js';
import { parseContainerRef } from '../src/core/names.js';
import { effectiveAttempts, maxAttemptsFor, pausedUntil } from '../src/core/policy.js';
import { checkScope, scopeListFilter } from '../src/core/scope.js';
import { describeTarget, parseTarget, type TargetResolution } from '../src/core/targets.js';
import { type ActionName, isAction, type TargetSelector } from '../src/core/types.js';
import {
  type ContainerDetails,
  InvalidReferenceError,
  lookupContainer,
  lookupTargets,
} from '../src/docker/client.js';
import { createScrubber } from '../src/logger.js';
import { StateWriteError } from '../src/state/journal.js';
import type { Incident, RemediationRecord } from '../src/state/store.js';
import {
  Accepted,
  ContainerList,
  ContainersQuery,
  type ContainerStatus,
  ControlRequest,
  ErrorBody,
  IdParams,
  IncidentList,
  type IncidentOut,
  IncidentsQuery,
  MANUAL_ACTIONS,
  NameParams,
  NotifyAccepted,
  NotifyRequest,
  PauseRequest,
  PauseState,
  Remediation,
  RemediationRequest,
  ResetState,
  SECURITY,
  TAGS,
} from './admin-schemas.js';

export const API = '/api/v1';
const MAX_PAUSE_MS = 366 * 86_400_000;
const TERMINAL = new Set(['succeeded', 'failed', 'timed_out', 'skipped', 'dry_run']);

const iso = (ms: number) => new Date(ms).toISOString();

type Failure = {
  status: 400 | 404 | 409 | 503;
  error: string;
  message: string;
  target?: string;
  candidates?: ReadonlyArray<string> | undefined;
};
class AdminError extends Error {
  constructor(readonly failure: Failure) {
    super(failure.message);
  }
}
const fail = (f: Failure): never => {
  throw new AdminError(f);
};

/** Who asked: the body's requestedBy, else the X-Requested-By header, else admin-api; printable only. */
function requesterOf(
  req: FastifyRequest,
  body: { requestedBy?: string | undefined } | null | undefined,
  scrub: (text: string) => string,
): string {
  const header = req.headers['x-requested-by'];
  const raw = body?.requestedBy ?? (typeof header === 'string' ? header : '');
  // Scrubbed before the cut, so that no part of a token pasted here is stored, logged or echoed.
  const clean = scrub(raw)
    .replace(/[^\x20-\x7e]/g, '')
    .trim()
    .slice(0, 128);
  return clean || 'admin-api';
}

export function toRemediation(r: RemediationRecord): Remediation {
  return {
    id: r.id,
    target: r.target,
    action: r.action,
    state: r.state,
    done: TERMINAL.has(r.state),
    source: r.source,
    createdAt: iso(r.createdAt),
    updatedAt: iso(r.updatedAt),
    container: r.container,
    reason: r.reason,
    requestedBy: r.requestedBy,
    skipReason: r.skipReason,
    verification: r.verification,
    detail: r.detail,
    reclaimedBytes: r.reclaimedBytes,
    durationMs: r.durationMs,
    results: r.results,
  };
}

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

const adminRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { engine, store, docker, clock } = app.deps;
  const policy = app.config.policy;
  // A token pasted into a free-text field (reason, requestedBy) is masked before it is kept anywhere.
  const scrub = createScrubber(secretsOf(app.config));
  const reasonText = (r: string | undefined) => (r === undefined ? undefined : scrub(r));
  const requester = (req: FastifyRequest, body?: { requestedBy?: string | undefined } | null) =>
    requesterOf(req, body, scrub);

  // Encapsulated: this hook guards the admin routes only. It runs before the body is parsed.
  app.addHook('onRequest', async (req, reply) => {
    const auth = checkToken(req.headers.authorization, app.config.adminToken, 'ADMIN_TOKEN');
    if (!auth.ok) return reply.code(auth.status).send({ error: auth.error, message: auth.message });
  });

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof AdminError) {
      const { status, ...body } = err.failure;
      return reply.code(status).send(body);
    }
    if (err instanceof StateWriteError) {
      req.log.error({ err }, 'admin request: cannot write state');
      return reply.code(503).send({
        error: 'state_unavailable',
        message: 'cannot record the change; nothing was done, retry later',
      });
    }
    // Everything else (validation, 5xx) goes to the app's one error handler.
    throw err;
  });

  /** Runs a Docker call; an engine that does not answer is a 503 the caller may retry. */
  async function viaDocker<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      // The client refused to put the caller's text in a URL: the caller's mistake, not the engine's.
      if (err instanceof InvalidReferenceError) {
        return fail({ status: 400, error: 'invalid_target', message: err.message });
      }
      app.log.warn({ err }, 'admin request: docker engine error');
      return fail({
        status: 503,
        error: 'docker_unavailable',
        message: `the docker engine did not answer: ${(err as Error).message}`,
      });
    }
  }

  /** A target that names nothing usable: 400 for a malformed name, 409 for an ambiguous id prefix, else 404. */
  const missed = (r: Extract<TargetResolution<unknown>, { ok: false }>, target: string): never =>
    fail({
      status: r.reason === 'invalid_target' ? 400 : r.reason === 'target_ambiguous' ? 409 : 404,
      error: r.reason,
      message: r.detail,
      target,
      candidates: r.candidates,
    });

  /**
   * The container a name or id names, from one listing (never inspect(name): the engine reads hex
   * text as an id prefix). A malformed name is a 400 before any engine call, an ambiguous id prefix a
   * 409, no such container a 404.
   */
  async function findContainer(text: string): Promise<ContainerDetails> {
    const found = await viaDocker(() => lookupContainer(docker, text));
    if (!found.ok) return missed(found, text);
    const [c] = found.containers;
    return (
      c ?? missed({ ok: false, reason: 'target_not_found', detail: `no container named "${text}"` }, text)
    );
  }

  /** Like findContainer, but a name the service still holds state for answers without a container. */
  async function findNamed(text: string): Promise<{ name: string; container?: ContainerDetails }> {
    const found = await viaDocker(() => lookupContainer(docker, text));
    const [c] = found.ok ? found.containers : [];
    if (c) return { name: c.name, container: c };
    const ref = parseContainerRef(text);
    if (ref.ok && store.record(ref.value)) return { name: ref.value };
    return missed(
      found.ok ? { ok: false, reason: 'target_not_found', detail: `no container named "${text}"` } : found,
      text,
    );
  }

  /** The target as the engine will see it; throws a 400/404 when it names nothing this action can use. */
  async function resolveTarget(text: string | undefined, action: ActionName): Promise<TargetSelector> {
    if (action === 'cleanup') {
      if (text === undefined || text === 'host') return { kind: 'host' };
      return fail({
        status: 400,
        error: 'bad_target',
        message: `cleanup acts on the whole host: use target "host" or leave it out (got "${text}")`,
        target: text,
      });
    }
    if (text === undefined) {
      return fail({
        status: 400,
        error: 'bad_target',
        message: `${action} needs a target: a container name or id, service:web or service:project/web`,
      });
    }
    const t = parseTarget(text);
    if (t.kind === 'container') {
      const c = await findContainer(t.name);
      // The name, not an id prefix: state is kept per container name.
      return { kind: 'container', name: c.name };
    }
    if (t.kind === 'service') {
      const found = await viaDocker(() => lookupTargets(docker, t));
      if (!found.ok) return missed(found, describeTarget(t));
      return t;
    }
    return fail({
      status: 400,
      error: 'bad_target',
      message: `${action} acts on a container or a service, not on "${text}"`,
      target: text,
    });
  }

  const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody };

  app.post(
    `${API}/remediations`,
    {
      schema: {
        tags: TAGS,
        security: SECURITY,
        summary: 'Request a remediation; it goes through the same policy as every other signal',
        body: RemediationRequest,
        response: { 202: Accepted, ...errors },
      },
    },
    async (req, reply) => {
      const b = req.body;
      if (!isAction(b.action) || b.action === 'none') {
        return fail({
          status: 400,
          error: 'unknown_action',
          message: `unknown action "${b.action}": use one of ${MANUAL_ACTIONS.join(', ')}`,
        });
      }
      const action = b.action;
      const target = await resolveTarget(b.target, action);
      const requestedBy = requester(req, b);
      const id = engine.request({
        id: randomUUID(),
        source: 'manual',
        status: 'firing',
        receivedAt: clock.now(),
        condition: 'requested',
        target,
        action,
        params: {},
        labels: {},
        annotations: {},
        requestedBy,
        reason: reasonText(b.reason),
        force: b.force ?? false,
        dryRun: b.dryRun ?? false,
      });
      const described = describeTarget(target);
      req.log.info(
        {
          event: 'manual_request',
          remediationId: id,
          target: described,
          action,
          requestedBy,
          reason: reasonText(b.reason),
          force: b.force ?? false,
          dryRun: b.dryRun ?? false,
        },
        `manual ${action} of ${described} requested by ${requestedBy}`,
      );
      const url = `${API}/remediations/${id}`;
      return reply
        .code(202)
        .header('location', url)
        .send({ id, state: 'queued' as const, target: described, action, url });
    },
  );

  app.get(
    `${API}/remediations/:id`,
    {
      schema: {
        tags: TAGS,
        security: SECURITY,
        summary: 'A remediation: its state, the policy decision and the verification result',
        params: IdParams,
        response: { 200: Remediation, ...errors },
      },
    },
    async (req) => {
      const r = store.remediation(req.params.id);
      if (!r) {
        return fail({
          status: 404,
          error: 'not_found',
          message: `no remediation with id "${req.params.id}"`,
        });
      }
      return toRemediation(r);
    },
  );

  app.get(
    `${API}/containers`,
    {
      schema: {
        tags: TAGS,
        security: SECURITY,
        summary: 'Watched containers: health, attempts, cooldown, pause, last action and result',
        querystring: ContainersQuery,
        response: { 200: ContainerList, ...errors },
      },
    },
    async (req) => {
      const ctx = engine.policyContext;
      const all = req.query.all === 'true';
      const list = await viaDocker(() =>
        docker.listContainers({ all: true, labels: all ? undefined : scopeListFilter(ctx) }),
      );
      const now = clock.now();
      const out: ContainerStatus[] = [];
      for (const c of list) {
        const scope = checkScope(c, ctx);
        if (!scope.ok && !all) continue;
        const r = store.record(c.name);
        const attempts = effectiveAttempts(r, now, policy);
        const paused = pausedUntil(c, r);
        out.push({
          name: c.name,
          id: c.id.slice(0, 12),
          image: c.image,
          state: c.state,
          health: c.health,
          status: c.status,
          service: c.labels[CONTAINER_LABELS.composeService],
          project: c.labels[CONTAINER_LABELS.composeProject],
          watched: scope.ok,
          scopeDetail: scope.ok ? undefined : scope.detail,
          protected: c.labels[CONTAINER_LABELS.protect] === 'true',
          attempts,
          maxAttempts: maxAttemptsFor(c, policy),
          // The policy applies a cooldown only once an attempt has been made (see decide()).
          cooldownRemainingSeconds:
            attempts > 0 && r?.nextAllowedAt !== undefined && r.nextAllowedAt > now
              ? Math.ceil((r.nextAllowedAt - now) / 1000)
              : 0,
          pausedUntil: paused !== undefined && paused > now ? iso(paused) : null,
          givenUp: r?.givenUp ?? false,
          inProgress: r?.inFlight?.action,
          lastAction: r?.lastAction,
          lastActionAt: r?.lastActionAt === undefined ? undefined : iso(r.lastActionAt),
          lastResult: r?.lastResult,
          incidentId: r?.incidentId,
        });
      }
      out.sort((a, b) => a.name.localeCompare(b.name));
      return { containers: out };
    },
  );

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

  app.post(
    `${API}/containers/:name/pause`,
    {
      schema: {
        tags: TAGS,
        security: SECURITY,
        summary: 'Hold every remediation of a container (forced ones too) for a while',
        params: NameParams,
        body: PauseRequest,
        response: { 200: PauseState, ...errors },
      },
    },
    async (req) => {
      const ms = parseDuration(req.body.for);
      if (ms === undefined || ms <= 0 || ms > MAX_PAUSE_MS) {
        return fail({
          status: 400,
          error: 'bad_duration',
          message: `malformed duration "${req.body.for}": use seconds or units such as 90s, 30m, 1h, 2d, 1h30m (at most 366d)`,
        });
      }
      const c = await findContainer(req.params.name);
      const until = clock.now() + ms;
      engine.pause(c.name, until);
      const requestedBy = requester(req, req.body);
      req.log.info(
        {
          event: 'pause',
          container: c.name,
          pausedUntil: iso(until),
          requestedBy,
          reason: reasonText(req.body.reason),
        },
        `healing of ${c.name} paused until ${iso(until)} by ${requestedBy}`,
      );
      return { container: c.name, pausedUntil: iso(until) };
    },
  );

  app.delete(
    `${API}/containers/:name/pause`,
    {
      schema: {
        tags: TAGS,
        security: SECURITY,
        summary: 'Resume healing of a paused container',
        params: NameParams,
        response: { 200: PauseState, ...errors },
      },
    },
    async (req) => {
      const { name, container: c } = await findNamed(req.params.name);
      const r = engine.pause(name, undefined);
      const requestedBy = requester(req);
      req.log.info(
        { event: 'resume', container: name, requestedBy },
        `healing of ${name} resumed by ${requestedBy}`,
      );
      // The pause label is the operator's own setting on the container: the API lifts only its own pause.
      const still = c ? pausedUntil(c, r) : undefined;
      if (still !== undefined && still > clock.now()) {
        return {
          container: name,
          pausedUntil: iso(still),
          detail: `still paused by the ${CONTAINER_LABELS.pausedUntil} label`,
        };
      }
      return { container: name, pausedUntil: null };
    },
  );

  app.post(
    `${API}/containers/:name/reset`,
    {
      schema: {
        tags: TAGS,
        security: SECURITY,
        summary: 'Clear attempts, cooldown and a given_up state; closes the open incident',
        params: NameParams,
        body: ControlRequest,
        response: { 200: ResetState, ...errors },
      },
      // The body is optional: `curl -X POST .../reset` says all there is to say.
      preValidation: async (req) => {
        req.body ??= {};
      },
    },
    async (req) => {
      const { name } = await findNamed(req.params.name);
      const before = store.record(name);
      const r = engine.reset(name);
      const requestedBy = requester(req, req.body);
      req.log.info(
        {
          event: 'reset',
          container: name,
          wasGivenUp: before?.givenUp ?? false,
          attemptsBefore: before?.attempts ?? 0,
          requestedBy,
          reason: reasonText(req.body.reason),
        },
        `${name} reset by ${requestedBy}`,
      );
      return { container: name, attempts: r.attempts, givenUp: r.givenUp };
    },
  );

  app.post(
    `${API}/notify`,
    {
      schema: {
        tags: TAGS,
        security: SECURITY,
        summary: 'Send a message to the humans through the Telegram notifier (CI jobs use it)',
        body: NotifyRequest,
        response: { 202: NotifyAccepted, ...errors },
      },
    },
    async (req, reply) => {
      const notifier = app.deps.notifier;
      if (!notifier?.enabled) {
        return fail({
          status: 503,
          error: 'not_configured',
          message:
            'no notifier is configured: set TELEGRAM_BOT_TOKEN (or TELEGRAM_BOT_TOKEN_FILE) and TELEGRAM_CHAT_ID',
        });
      }
      const id = notifier.enqueueText(req.body.text, { silent: req.body.silent ?? false });
      const requestedBy = requester(req, req.body);
      req.log.info(
        { event: 'notify', notificationId: id, requestedBy, length: req.body.text.length },
        `message queued for the humans by ${requestedBy}`,
      );
      return reply.code(202).send({ id, status: 'queued' as const });
    },
  );
};
export default adminRoutes;
