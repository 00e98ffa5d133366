// The containers the healer watches: their state as the policy sees it, and the operator's controls
// over one of them (pause, resume, reset).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { parseDuration } from '../../src/core/duration.js';
import { CONTAINER_LABELS } from '../../src/core/labels.js';
import { pausedUntil } from '../../src/core/policy.js';
import { checkScope, scopeListFilter } from '../../src/core/scope.js';
import { standingOf } from '../../src/core/views.js';
import {
  ContainerList,
  ContainersQuery,
  type ContainerStatus,
  ControlRequest,
  NameParams,
  PauseRequest,
  PauseState,
  ResetState,
  SECURITY,
  TAGS,
} from '../../src/http/admin-schemas.js';
import { API, adminHelpers, errors, fail, iso, standingOut } from './shared.js';

const MAX_PAUSE_MS = 366 * 86_400_000;

const containerRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { engine, store, docker, clock } = app.deps;
  const policy = app.config.policy;
  const { reasonText, requester, viaDocker, findContainer, findNamed } = adminHelpers(app);

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
        const st = standingOf(c, store.record(c.name), now, policy);
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
          ...standingOut(st),
        });
      }
      out.sort((a, b) => a.name.localeCompare(b.name));
      return { containers: out };
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
        body: ControlRequest,
        response: { 200: PauseState, ...errors },
      },
      // The body is optional, as for reset: a reason for the audit log when there is one.
      preValidation: async (req) => {
        req.body ??= {};
      },
    },
    async (req) => {
      const { name, container: c } = await findNamed(req.params.name);
      const r = engine.pause(name, undefined);
      const requestedBy = requester(req, req.body);
      req.log.info(
        { event: 'resume', container: name, requestedBy, reason: reasonText(req.body.reason) },
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
};
export default containerRoutes;
