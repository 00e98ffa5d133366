// The status page's access rules through inject(): login, the session cookie, the throttle on wrong
// tokens, logout with its CSRF token, and the headers every answer of the page carries.
import t from 'tap';
import { ADMIN_TOKEN, testApp } from './fixtures/app.js';

const login = (app: Awaited<ReturnType<typeof testApp>>['app'], token: string, headers = {}) =>
  app.inject({ method: 'POST', url: '/ui/login', payload: { token }, headers });

t.test('login gives a session cookie and a CSRF token; logout needs the token and ends it', async (t) => {
  const { app } = await testApp(t);
  const res = await login(app, ADMIN_TOKEN);
  t.equal(res.statusCode, 200);
  const setCookie = String(res.headers['set-cookie']);
  t.match(
    setCookie,
    /^autoheal_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=43200$/,
  );
  t.notMatch(setCookie, /Secure/, 'not Secure over plain http');
  t.notOk(setCookie.includes(ADMIN_TOKEN));
  const cookie = setCookie.split(';')[0] as string;
  const { csrfToken } = res.json() as { csrfToken: string };
  t.notOk(res.body.includes(ADMIN_TOKEN), 'the answer does not echo the token');

  const session = await app.inject({ url: '/ui/session', headers: { cookie } });
  t.equal(session.json().csrfToken, csrfToken, 'the page reads its CSRF token again after a reload');
  t.equal((await app.inject({ url: '/api/v1/status', headers: { cookie } })).statusCode, 200);

  t.equal(
    (await app.inject({ method: 'POST', url: '/ui/logout', headers: { cookie } })).statusCode,
    403,
    'logout without the CSRF header',
  );
  const out = await app.inject({
    method: 'POST',
    url: '/ui/logout',
    headers: { cookie, 'x-csrf-token': csrfToken },
  });
  t.equal(out.statusCode, 200);
  t.match(String(out.headers['set-cookie']), /Max-Age=0/, 'the cookie is cleared');
  t.equal(
    (await app.inject({ url: '/api/v1/status', headers: { cookie } })).statusCode,
    401,
    'the session is over',
  );
  t.equal((await app.inject({ url: '/ui/session', headers: { cookie } })).statusCode, 401);
});

t.test('wrong tokens: 401, logged without the token, then 429 for the rest of the minute', async (t) => {
  const { app, audit } = await testApp(t);
  for (let i = 0; i < 5; i++) t.equal((await login(app, `wrong-token-${i}-xxxxxxxx`)).statusCode, 401);
  const held = await login(app, ADMIN_TOKEN);
  t.equal(held.statusCode, 429, 'even the right token waits');
  t.ok(Number(held.headers['retry-after']) > 0, 'Retry-After says how long');
  const lines = audit().filter((l) => l.event === 'login_failed');
  t.equal(lines.length, 5);
  t.notMatch(JSON.stringify(audit()), /wrong-token-/, 'no tried token in the audit log');
});

t.test('a login from another origin, or not as JSON, is refused', async (t) => {
  const { app } = await testApp(t);
  t.equal((await login(app, ADMIN_TOKEN, { origin: 'https://evil.example' })).statusCode, 403);
  const form = await app.inject({
    method: 'POST',
    url: '/ui/login',
    payload: `token=${ADMIN_TOKEN}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  t.equal(form.statusCode, 415, 'a cross-site form cannot post it');
  const text = await app.inject({
    method: 'POST',
    url: '/ui/login',
    payload: ADMIN_TOKEN,
    headers: { 'content-type': 'text/plain' },
  });
  t.equal(text.statusCode, 400, 'nor plain text');
  t.equal(
    (await login(app, ADMIN_TOKEN, { origin: 'http://localhost:80' })).statusCode,
    200,
    'its own origin',
  );
  t.equal(
    (await login(app, ADMIN_TOKEN, { origin: 'https://localhost:80' })).statusCode,
    200,
    'https in front of it (a TLS proxy)',
  );
  t.equal((await login(app, ADMIN_TOKEN, { origin: 'null' })).statusCode, 403, 'an opaque origin');
});

t.test('without ADMIN_TOKEN the page cannot log in', async (t) => {
  const { app } = await testApp(t, { env: { ADMIN_TOKEN: '' } });
  t.equal((await login(app, 'anything-at-all-here')).statusCode, 503);
});

t.test('every answer of the page has a strict CSP; only its own files are served', async (t) => {
  const { app } = await testApp(t);
  for (const url of ['/ui', '/ui/assets/app.js', '/ui/assets/app.css', '/ui/session']) {
    const res = await app.inject({ url });
    t.match(
      String(res.headers['content-security-policy']),
      /^default-src 'self'; script-src 'self'; style-src 'self'/,
      url,
    );
    t.equal(res.headers['x-content-type-options'], 'nosniff', url);
  }
  t.equal((await app.inject({ url: '/' })).headers.location, '/ui');
  for (const url of [
    '/ui/assets/../../package.json',
    '/ui/assets/index.html',
    '/ui/assets/%2e%2e%2fconfig.ts',
  ]) {
    t.equal((await app.inject({ url })).statusCode, 404, url);
  }
  t.match(
    String((await app.inject({ url: '/ui/assets/app.js' })).headers['content-type']),
    /^text\/javascript/,
  );
});

t.test('the event stream says hello, then each change; closing the service ends it', async (t) => {
  const later: Array<() => unknown> = [];
  const h = await testApp({ teardown: (fn) => later.push(fn) }, { listen: true });
  const closeAll = async () => {
    for (const fn of later.splice(0)) await fn();
  };
  t.teardown(closeAll);
  const res = await fetch(`${h.url}/api/v1/events`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  t.equal(res.status, 200);
  t.match(String(res.headers.get('content-type')), /^text\/event-stream/);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = '';
  /** Reads until the text matches (true) or the stream ends (false). */
  const until = async (re: RegExp) => {
    while (!re.test(text)) {
      const { value, done } = await reader.read();
      if (done) return false;
      text += decoder.decode(value);
    }
    return true;
  };
  t.ok(await until(/event: hello/), 'hello');
  h.engine.pause('ui-stream-probe', Date.now() + 60_000);
  t.ok(
    await until(/event: change\ndata: \{"seq":1,"at":\d+,"topics":\["containers"\]\}/),
    'the write, as a change',
  );
  // app.close() waits for every open connection: the stream must end for a graceful stop to finish.
  await closeAll();
  t.notOk(await until(/never in the stream/), 'the stream ended');
});
