// Browser sessions of the status page: the admin token is checked once at login and exchanged for a
// random session id kept server-side (in memory: a restart of the service logs everyone out), sent in
// an HttpOnly, SameSite=Strict cookie. The cookie never holds the token. Each session has its own CSRF
// token, which the page sends in a header with every state-changing call; both are compared in
// constant time. Nothing here does I/O: time and randomness are handed in, so the tests never sleep.
import { randomBytes } from 'node:crypto';
import { checkToken, safeEqual } from './auth.js';

export const SESSION_COOKIE = 'autoheal_session';
export const CSRF_HEADER = 'x-csrf-token';
/** A session lasts this long from login, used or not: an on-call shift. */
export const SESSION_TTL_MS = 12 * 3600_000;
/** Sessions held at once; logging in beyond it ends the oldest. */
export const MAX_SESSIONS = 1000;

export interface Session {
  readonly id: string;
  readonly csrf: string;
  readonly createdAt: number;
  readonly expiresAt: number;
}

export type RandomSource = (bytes: number) => string;
const urlSafeRandom: RandomSource = (n) => randomBytes(n).toString('base64url');

export class SessionStore {
  // Insertion order is login order: the first entry is the oldest.
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly o: { ttlMs?: number; max?: number; random?: RandomSource } = {}) {}

  create(now: number): Session {
    const random = this.o.random ?? urlSafeRandom;
    const max = this.o.max ?? MAX_SESSIONS;
    this.sweep(now);
    while (this.sessions.size >= max) {
      const oldest = this.sessions.keys().next().value;
      if (oldest === undefined) break;
      this.sessions.delete(oldest);
    }
    const s: Session = {
      id: random(32),
      csrf: random(32),
      createdAt: now,
      expiresAt: now + (this.o.ttlMs ?? SESSION_TTL_MS),
    };
    this.sessions.set(s.id, s);
    return s;
  }

  /** The live session of this id, or undefined (unknown, or expired: then it is forgotten). */
  get(id: string | undefined, now: number): Session | undefined {
    if (!id) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    if (s.expiresAt <= now) {
      this.sessions.delete(id);
      return undefined;
    }
    return s;
  }

  end(id: string | undefined): boolean {
    return id !== undefined && this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }

  private sweep(now: number): void {
    for (const [id, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(id);
  }
}

/** Whether a request's CSRF header matches its session's token (constant time). */
export function csrfMatches(session: Session, header: string | string[] | undefined): boolean {
  if (typeof header !== 'string' || header.length === 0) return false;
  return safeEqual(header, session.csrf);
}

/** The cookies of a Cookie header, by name (the first of a repeated name wins). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const name = part.slice(0, i).trim();
    let value = part.slice(i + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (!out.has(name)) out.set(name, value);
  }
  return out;
}

/** The Set-Cookie value of a session (maxAgeSeconds 0 clears it). Secure when the page came over https. */
export function sessionCookie(value: string, maxAgeSeconds: number, secure: boolean): string {
  const parts = [
    `${SESSION_COOKIE}=${value}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    `Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`,
  ];
  if (secure) parts.push('Secure');
  return parts.join('; ');
}

/**
 * Failed logins per client address: after `max` failures within `windowMs`, further attempts are
 * refused (429) until the oldest failure leaves the window. A success does not clear the count, so a
 * guesser who also holds a valid token gains nothing. Bounded: at most `maxClients` addresses kept.
 */
export class LoginThrottle {
  private readonly failures = new Map<string, number[]>();

  constructor(private readonly o: { max?: number; windowMs?: number; maxClients?: number } = {}) {}

  private get max(): number {
    return this.o.max ?? 5;
  }
  private get windowMs(): number {
    return this.o.windowMs ?? 60_000;
  }

  /** Milliseconds until this client may try again; 0 when it may now. */
  retryAfterMs(client: string, now: number): number {
    const recent = this.recent(client, now);
    if (recent.length < this.max) return 0;
    return (recent[0] as number) + this.windowMs - now;
  }

  failed(client: string, now: number): void {
    const recent = this.recent(client, now);
    recent.push(now);
    this.failures.delete(client);
    this.failures.set(client, recent);
    const maxClients = this.o.maxClients ?? 10_000;
    while (this.failures.size > maxClients) {
      const oldest = this.failures.keys().next().value;
      if (oldest === undefined) break;
      this.failures.delete(oldest);
    }
  }

  private recent(client: string, now: number): number[] {
    const all = this.failures.get(client) ?? [];
    const recent = all.filter((t) => t > now - this.windowMs);
    if (recent.length === 0) this.failures.delete(client);
    else if (recent.length !== all.length) this.failures.set(client, recent);
    return recent;
  }
}

export interface AccessRequest {
  readonly method: string;
  readonly authorization: string | undefined;
  readonly cookie: string | undefined;
  readonly csrf: string | string[] | undefined;
}

export type Access =
  | { ok: true; via: 'token' | 'session'; session?: Session }
  | { ok: false; status: 401 | 403 | 503; error: string; message: string };

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Who may use the admin API: a caller with Bearer ADMIN_TOKEN, or the status page with its session
 * cookie, plus the session's CSRF token in X-CSRF-Token on every call that changes something. An
 * Authorization header is judged alone (a wrong token is a 401 even next to a good cookie).
 */
export function decideAccess(
  r: AccessRequest,
  o: { token: string | undefined; sessions: SessionStore; now: number },
): Access {
  const sessionId = r.authorization === undefined ? parseCookies(r.cookie).get(SESSION_COOKIE) : undefined;
  if (sessionId === undefined) {
    const auth = checkToken(r.authorization, o.token, 'ADMIN_TOKEN');
    return auth.ok ? { ok: true, via: 'token' } : auth;
  }
  const session = o.sessions.get(sessionId, o.now);
  if (!session) {
    return {
      ok: false,
      status: 401,
      error: 'unauthorized',
      message: 'no such session or it has expired: log in again',
    };
  }
  if (!SAFE_METHODS.has(r.method.toUpperCase()) && !csrfMatches(session, r.csrf)) {
    return {
      ok: false,
      status: 403,
      error: 'csrf_failed',
      message: `a call that changes something needs the session's ${CSRF_HEADER} header`,
    };
  }
  return { ok: true, via: 'session', session };
}
