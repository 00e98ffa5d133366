// Token checks for the webhook and the admin API: constant-time, and the token never reaches a log.
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string) => createHash('sha256').update(s).digest();

// The configured token's digest, computed once: it is compared on every request.
let expectedCache: { token: string; digest: Buffer } | undefined;

/** Compares in constant time whatever the lengths (both sides are hashed first). */
export function safeEqual(got: string, expected: string): boolean {
  if (expectedCache?.token !== expected) expectedCache = { token: expected, digest: digest(expected) };
  return timingSafeEqual(digest(got), expectedCache.digest);
}

/** The credential of an Authorization header: a Bearer token, or the password of basic auth. */
export function credentialOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const [scheme, value] = header.split(' ', 2);
  if (!scheme || !value) return undefined;
  if (scheme.toLowerCase() === 'bearer') return value.trim();
  if (scheme.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value.trim(), 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    return i >= 0 ? decoded.slice(i + 1) : undefined;
  }
  return undefined;
}

export type AuthResult = { ok: true } | { ok: false; status: 401 | 503; error: string; message: string };

export function checkToken(
  header: string | undefined,
  expected: string | undefined,
  variable: string,
): AuthResult {
  if (!expected) {
    return {
      ok: false,
      status: 503,
      error: 'not_configured',
      message: `this endpoint is disabled until ${variable} or ${variable}_FILE is set`,
    };
  }
  const got = credentialOf(header);
  if (got === undefined || !safeEqual(got, expected)) {
    return { ok: false, status: 401, error: 'unauthorized', message: 'missing or invalid token' };
  }
  return { ok: true };
}
