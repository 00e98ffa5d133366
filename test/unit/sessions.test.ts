// The status page's sessions, CSRF tokens, cookies, login throttle and access decision: pure parts,
// with time handed in.
import t from 'tap';
import {
  CSRF_HEADER,
  csrfMatches,
  decideAccess,
  LoginThrottle,
  parseCookies,
  SESSION_COOKIE,
  SESSION_TTL_MS,
  SessionStore,
  sessionCookie,
} from '../../src/http/sessions.js';
import { ChangeFeed, type StateChange } from '../../src/state/change-feed.js';
import { waitFor } from '../fixtures/docker.js';

const TOKEN = 'admin-token-0123456789abcdef';
const NOW = 1_800_000_000_000;

/** Predictable ids: s1, s2, … */
function counter() {
  let n = 0;
  return () => `r${++n}`;
}

t.test('a session is random ids with a lifetime; it is forgotten once it expired', async (t) => {
  const store = new SessionStore({ ttlMs: 1000 });
  const s = store.create(NOW);
  t.match(s.id, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
  t.not(s.id, s.csrf, 'the CSRF token is another random value');
  t.equal(store.get(s.id, NOW + 999), s);
  t.equal(store.get(s.id, NOW + 1000), undefined, 'expired at its end');
  t.equal(store.size, 0, 'and dropped');
  t.equal(store.get(undefined, NOW), undefined);
  t.equal(store.get('no-such-id', NOW), undefined);
  t.equal(new SessionStore().create(NOW).expiresAt, NOW + SESSION_TTL_MS, 'the default lifetime');
});

t.test('a logout ends the session; more logins than the cap end the oldest', async (t) => {
  const store = new SessionStore({ max: 2, random: counter() });
  const a = store.create(NOW);
  const b = store.create(NOW + 1);
  const c = store.create(NOW + 2);
  t.equal(store.get(a.id, NOW + 3), undefined, 'the oldest went');
  t.ok(store.get(b.id, NOW + 3));
  t.ok(store.end(c.id));
  t.notOk(store.end(c.id), 'once');
  t.equal(store.get(c.id, NOW + 3), undefined);
});

t.test('the CSRF header must be the session token, exactly', async (t) => {
  const s = new SessionStore().create(NOW);
  t.ok(csrfMatches(s, s.csrf));
  for (const bad of [undefined, '', `${s.csrf}x`, s.csrf.slice(1), s.id, [s.csrf, s.csrf]]) {
    t.notOk(csrfMatches(s, bad), `refused: ${JSON.stringify(bad)}`);
  }
});

t.test('cookies are parsed by name; the session cookie is HttpOnly, SameSite=Strict, Path=/', async (t) => {
  const c = parseCookies(`a=1; ${SESSION_COOKIE}=abc; b="q"; ${SESSION_COOKIE}=later; junk; =x`);
  t.equal(c.get(SESSION_COOKIE), 'abc', 'the first of a repeated name');
  t.equal(c.get('b'), 'q');
  t.equal(parseCookies(undefined).size, 0);
  t.equal(
    sessionCookie('id1', 43_200.7, false),
    `${SESSION_COOKIE}=id1; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200`,
  );
  t.match(sessionCookie('id1', 10, true), /; Secure$/, 'Secure over https');
  t.match(sessionCookie('', 0, false), /Max-Age=0/, 'clearing it');
});

t.test('failed logins from one address are throttled for the rest of the window', async (t) => {
  const th = new LoginThrottle({ max: 3, windowMs: 60_000 });
  for (let i = 0; i < 3; i++) {
    t.equal(th.retryAfterMs('a', NOW + i), 0);
    th.failed('a', NOW + i);
  }
  t.equal(th.retryAfterMs('a', NOW + 10), 60_000 - 10, 'until the first failure leaves the window');
  t.equal(th.retryAfterMs('b', NOW + 10), 0, 'another address is not held');
  t.equal(th.retryAfterMs('a', NOW + 60_000), 0, 'free again');
  const small = new LoginThrottle({ max: 1, maxClients: 2 });
  small.failed('x', NOW);
  small.failed('y', NOW);
  small.failed('z', NOW);
  t.equal(small.retryAfterMs('x', NOW), 0, 'the table of addresses is bounded: the oldest is forgotten');
  t.ok(small.retryAfterMs('z', NOW) > 0);
});

t.test('access: the Bearer token, or a session cookie plus its CSRF header on a change', async (t) => {
  const sessions = new SessionStore();
  const s = sessions.create(NOW);
  const cookie = `${SESSION_COOKIE}=${s.id}`;
  const o = { token: TOKEN, sessions, now: NOW + 1 };
  const cases: Array<[string, Parameters<typeof decideAccess>[0], number | string]> = [
    ['no credential', { method: 'GET', authorization: undefined, cookie: undefined, csrf: undefined }, 401],
    [
      'the token',
      { method: 'POST', authorization: `Bearer ${TOKEN}`, cookie: undefined, csrf: undefined },
      'token',
    ],
    [
      'a wrong token',
      { method: 'GET', authorization: 'Bearer nope', cookie: undefined, csrf: undefined },
      401,
    ],
    [
      'a wrong token beside a good cookie',
      { method: 'GET', authorization: 'Bearer nope', cookie, csrf: s.csrf },
      401,
    ],
    [
      'a session GET without CSRF',
      { method: 'GET', authorization: undefined, cookie, csrf: undefined },
      'session',
    ],
    [
      'a session POST without CSRF',
      { method: 'POST', authorization: undefined, cookie, csrf: undefined },
      403,
    ],
    [
      'a session DELETE with a wrong CSRF',
      { method: 'DELETE', authorization: undefined, cookie, csrf: 'x' },
      403,
    ],
    [
      'a session POST with its CSRF',
      { method: 'POST', authorization: undefined, cookie, csrf: s.csrf },
      'session',
    ],
    [
      'the token as a cookie',
      { method: 'GET', authorization: undefined, cookie: `${SESSION_COOKIE}=${TOKEN}`, csrf: undefined },
      401,
    ],
    [
      'another cookie only',
      { method: 'GET', authorization: undefined, cookie: 'theme=dark', csrf: undefined },
      401,
    ],
  ];
  for (const [name, req, want] of cases) {
    const got = decideAccess(req, o);
    t.equal(got.ok ? got.via : got.status, want, name);
  }
  const expired = decideAccess(
    { method: 'GET', authorization: undefined, cookie, csrf: undefined },
    { ...o, now: s.expiresAt },
  );
  t.equal(expired.ok ? 'ok' : expired.status, 401, 'an expired session');
  const off = decideAccess(
    { method: 'GET', authorization: `Bearer ${TOKEN}`, cookie: undefined, csrf: undefined },
    { ...o, token: undefined },
  );
  t.equal(off.ok ? 'ok' : off.status, 503, 'no ADMIN_TOKEN: the API is off');
  t.equal(CSRF_HEADER, 'x-csrf-token');
});

t.test('the change feed gathers a burst of writes into one change naming them', async (t) => {
  const feed = new ChangeFeed({ now: () => NOW }, 20);
  t.teardown(() => feed.stop());
  feed.touch('containers');
  const seen: StateChange[] = [];
  const off = feed.subscribe((c) => seen.push(c));
  feed.subscribe(() => {
    throw new Error('a failing listener');
  });
  feed.touch('incidents');
  feed.touch('containers');
  feed.touch('incidents');
  feed.touch('dedup');
  await waitFor('the change', async () => seen.length > 0, 5_000, 5);
  t.same(seen, [{ seq: 1, at: NOW, topics: ['containers', 'incidents'] }], 'once, sorted; dedup is quiet');
  feed.touch('misc');
  await waitFor('the next change', async () => seen.length > 1, 5_000, 5);
  t.same(seen[1]?.topics, ['misc']);
  off();
  t.equal(feed.listenerCount, 1);
});
