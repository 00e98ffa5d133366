// Manual remediations: an input like any other. The route validates, resolves the target while the
// caller waits (so a typo is a 404, not a queued request that quietly skips) and hands a signal to the
// engine, which decides with the same policy as for alerts and the health watcher.
import { createHash, randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { requestSignal } from '../../src/core/signals.js';
import { describeTarget, selectTarget } from '../../src/core/targets.js';
import type { ActionName, TargetSelector } from '../../src/core/types.js';
import { lookupTargets } from '../../src/docker/client.js';
import type { RemediationRecord } from '../../src/state/store.js';
import {
  Accepted,
  IdParams,
  Remediation,
  RemediationRequest,
  SECURITY,
  TAGS,
} from '../../src/http/admin-schemas.js';
import { API, adminHelpers, errors, fail, iso, missed } from './shared.js';

const TERMINAL = new Set(['succeeded', 'failed', 'timed_out', 'skipped', 'dry_run']);

/** An Idempotency-Key as accepted: printable ASCII, 1 to 128 characters. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,128}$/;

/**
 * The remediation id an Idempotency-Key stands for: the same key always names the same remediation, so
 * a repeated request (a client retrying after a lost answer, a chat update handled again after a crash)
 * finds the one it started instead of starting another.
 */
export function idempotentId(key: string): string {
  const h = createHash('sha256').update(`idempotency-key:${key}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
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

const remediationRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { engine, store, docker, clock } = app.deps;
  const { reasonText, requester, viaDocker, findContainer } = adminHelpers(app);

  /**
   * The target as the engine will see it: checked by the same selectTarget() as SCHEDULES, then looked
   * up while the caller waits. Throws a 400 (unknown action, a target this action does not act on, a
   * malformed name), a 404 or a 409 (an ambiguous id prefix).
   */
  async function resolveTarget(text: string | undefined, action: ActionName): Promise<TargetSelector> {
    const selected = selectTarget(engine.policyContext.actions, action, text);
    if (!selected.ok) {
      if (selected.reason === 'invalid_target')
        return missed({ ok: false, reason: 'invalid_target', detail: selected.detail }, text ?? '');
      return fail({ status: 400, error: selected.reason, message: selected.detail, target: text });
    }
    const t = selected.target;
    if (t.kind === 'container') {
      const c = await findContainer(t.name);
      // The name, not an id prefix: state is kept per container name.
      return { kind: 'container', name: c.name };
    }
    if (t.kind === 'host') return t;
    if (t.kind === 'swarm') {
      // A Swarm service is looked up in the manager's service listing, never among containers.
      const role = await viaDocker(() => docker.swarmRole());
      if (role !== 'manager') {
        return fail({
          status: 400,
          error: 'bad_target',
          message: `this engine is ${role === 'worker' ? 'a Swarm worker' : 'not part of a Swarm'}: Swarm services are acted on through a manager`,
          target: text,
        });
      }
      const services = await viaDocker(() => docker.listServices());
      if (!services.some((s) => s.name === t.service)) {
        return fail({
          status: 404,
          error: 'target_not_found',
          message: `no Swarm service named "${t.service}"`,
          target: text,
        });
      }
      return t;
    }
    const found = await viaDocker(() => lookupTargets(docker, t));
    if (!found.ok) return missed(found, describeTarget(t));
    return t;
  }

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
      const action = b.action;
      if (b.step !== undefined && !engine.policyContext.actions.get(action)?.bounds) {
        return fail({
          status: 400,
          error: 'bad_request',
          message: `step applies to scale_up and scale_down, not to ${action}`,
        });
      }
      const header = req.headers['idempotency-key'];
      const key = typeof header === 'string' ? header : undefined;
      if (header !== undefined && (key === undefined || !IDEMPOTENCY_KEY.test(key))) {
        return fail({
          status: 400,
          error: 'bad_idempotency_key',
          message: 'Idempotency-Key: one header of 1 to 128 printable ASCII characters',
        });
      }
      const given = key === undefined ? undefined : idempotentId(key);
      const earlier = given === undefined ? undefined : store.remediation(given);
      if (earlier) {
        // A repeat: answered with what the first request started; nothing new is queued.
        if (
          earlier.action !== action ||
          (b.target !== undefined && earlier.target !== b.target && earlier.container !== b.target)
        ) {
          return fail({
            status: 409,
            error: 'idempotency_key_reused',
            message: `Idempotency-Key already used for ${earlier.action} of ${earlier.target}`,
          });
        }
        req.log.info(
          {
            event: 'manual_request_repeat',
            remediationId: earlier.id,
            action,
            requestedBy: requester(req, b),
          },
          `repeated request for remediation ${earlier.id} (Idempotency-Key): nothing new queued`,
        );
        const url = `${API}/remediations/${earlier.id}`;
        return reply.code(202).header('location', url).header('idempotent-replayed', 'true').send({
          id: earlier.id,
          state: earlier.state,
          target: earlier.target,
          action: earlier.action,
          url,
        });
      }
      const target = await resolveTarget(b.target, action);
      const requestedBy = requester(req, b);
      const id = engine.request(
        requestSignal({
          id: randomUUID(),
          source: 'manual',
          target,
          action,
          requestedBy,
          reason: reasonText(b.reason),
          force: b.force ?? false,
          dryRun: b.dryRun ?? false,
          params: b.step === undefined ? undefined : { step: String(b.step) },
          now: clock.now(),
        }),
        given,
      );
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
};
export default remediationRoutes;
