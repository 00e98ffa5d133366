// What every admin route shares: the failure a handler throws (answered by the error handler in
// index.ts before anything changes), the caller's name and free text scrubbed of tokens, and the
// target lookups that turn a typo into a 400/404/409 while the caller waits.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { secretsOf } from '../../src/config.js';
import { parseContainerRef } from '../../src/core/names.js';
import type { TargetResolution } from '../../src/core/targets.js';
import type { Standing } from '../../src/core/views.js';
import { type ContainerDetails, InvalidReferenceError, lookupContainer } from '../../src/docker/client.js';
import { createScrubber } from '../../src/logger.js';
import { ErrorBody } from '../../src/http/admin-schemas.js';

export const API = '/api/v1';

export const iso = (ms: number) => new Date(ms).toISOString();

/** A target's standing as the admin API answers it (times as ISO text, no pause as null). */
export const standingOut = (s: Standing) => ({
  attempts: s.attempts,
  maxAttempts: s.maxAttempts,
  cooldownRemainingSeconds: s.cooldownRemainingSeconds,
  pausedUntil: s.pausedUntil === undefined ? null : iso(s.pausedUntil),
  givenUp: s.givenUp,
  inProgress: s.inProgress,
  lastAction: s.lastAction,
  lastActionAt: s.lastActionAt === undefined ? undefined : iso(s.lastActionAt),
  lastResult: s.lastResult,
  incidentId: s.incidentId,
});

/** The error responses every admin route may answer with. */
export const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody };

type Failure = {
  status: 400 | 404 | 409 | 503;
  error: string;
  message: string;
  target?: string;
  candidates?: ReadonlyArray<string> | undefined;
};

export class AdminError extends Error {
  constructor(readonly failure: Failure) {
    super(failure.message);
  }
}

export const fail = (f: Failure): never => {
  throw new AdminError(f);
};

type WithRequester = { requestedBy?: string | undefined } | null | undefined;

/** Who asked: the body's requestedBy, else the X-Requested-By header, else admin-api; printable only. */
function requesterOf(req: FastifyRequest, body: WithRequester, scrub: (text: string) => string): string {
  const header = req.headers['x-requested-by'];
  const raw = body?.requestedBy ?? (typeof header === 'string' ? header : '');
  // Scrubbed before the cut, so that no part of a token pasted here is stored, logged or echoed.
  const clean = scrub(raw)
    .replace(/[^\x20-\x7e]/g, '')
    .trim()
    .slice(0, 128);
  return clean || 'admin-api';
}

/** A target that names nothing usable: 400 for a malformed name, 409 for an ambiguous id prefix, else 404. */
export const missed = (r: Extract<TargetResolution<unknown>, { ok: false }>, target: string): never =>
  fail({
    status: r.reason === 'invalid_target' ? 400 : r.reason === 'target_ambiguous' ? 409 : 404,
    error: r.reason,
    message: r.detail,
    target,
    candidates: r.candidates,
  });

export interface AdminHelpers {
  /** A reason as it may be kept: any token pasted into it masked. */
  reasonText(reason: string | undefined): string | undefined;
  requester(req: FastifyRequest, body?: WithRequester): string;
  /** Runs a Docker call; an engine that does not answer is a 503 the caller may retry. */
  viaDocker<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * The container a name or id names, from one listing (never inspect(name): the engine reads hex
   * text as an id prefix). A malformed name is a 400 before any engine call, an ambiguous id prefix a
   * 409, no such container a 404.
   */
  findContainer(text: string): Promise<ContainerDetails>;
  /** Like findContainer, but a name the service still holds state for answers without a container. */
  findNamed(text: string): Promise<{ name: string; container?: ContainerDetails }>;
}

export function adminHelpers(app: FastifyInstance): AdminHelpers {
  const { docker, store } = app.deps;
  // A token pasted into a free-text field (reason, requestedBy) is masked before it is kept anywhere.
  const scrub = createScrubber(secretsOf(app.config));

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

  async function findContainer(text: string): Promise<ContainerDetails> {
    const found = await viaDocker(() => lookupContainer(docker, text));
    if (!found.ok) return missed(found, text);
    const [c] = found.containers;
    return (
      c ?? missed({ ok: false, reason: 'target_not_found', detail: `no container named "${text}"` }, text)
    );
  }

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

  return {
    reasonText: (r) => (r === undefined ? undefined : scrub(r)),
    requester: (req, body) => requesterOf(req, body, scrub),
    viaDocker,
    findContainer,
    findNamed,
  };
}
