// The HTTP server's limits over real sockets on loopback: a slow client is cut off at the header and
// request timeouts, an idle keep-alive connection is closed, connections beyond the per-client and the
// total caps are closed at once while other clients are still answered, and an unauthenticated write
// gets its 401 at headers time and its connection closed without the body ever being sent.
import { connect, type Socket } from 'node:net';
import t from 'tap';
import { ADMIN_TOKEN, testApp, WEBHOOK_TOKEN } from './fixtures/app.js';
import { waitFor } from './fixtures/docker.js';

interface Raw {
  readonly socket: Socket;
  /** Everything the server sent. */
  data(): string;
  readonly closed: () => boolean;
  /** Resolves once the server (or the network) closed the connection. */
  readonly whenClosed: Promise<void>;
}

/** A raw TCP connection to the app that writes `payload` and then keeps quiet. */
function raw(url: string, payload: string, localAddress = '127.0.0.1'): Promise<Raw> {
  const { port, hostname } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ port: Number(port), host: hostname, localAddress });
    let data = '';
    let closed = false;
    const whenClosed = new Promise<void>((done) =>
      socket.on('close', () => {
        closed = true;
        done();
      }),
    );
    socket.on('data', (d) => {
      data += String(d);
    });
    socket.on('error', () => undefined); // a reset is one way of being closed
    socket.once('connect', () => {
      if (payload) socket.write(payload);
      resolve({ socket, data: () => data, closed: () => closed, whenClosed });
    });
    socket.once('error', reject);
  });
}

/** Headers of a JSON POST that announces a body of `length` bytes, and the body's first byte. */
const slowPost = (path: string, token: string | undefined, length = 10_000) =>
  `POST ${path} HTTP/1.1\r\nHost: test\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n${
    token ? `authorization: Bearer ${token}\r\n` : ''
  }\r\n{`;

const getHealthz = 'GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n';

/** Waits for a connection to be closed by the server; fails after a deadline far above any setting. */
const closedWithin = async (c: Raw, what: string, ms = 20_000) =>
  waitFor(what, async () => c.closed(), ms, 50);

/** GET /healthz over a fresh connection: true when answered 200, false when closed without an answer. */
async function healthz(t: { teardown(fn: () => unknown): void }, url: string, from = '127.0.0.1') {
  const c = await raw(url, getHealthz, from);
  t.teardown(() => c.socket.destroy());
  await waitFor(
    'an answer or a close',
    async () => c.closed() || c.data().includes('"status":"ok"'),
    10_000,
    20,
  );
  return /^HTTP\/1\.1 200 /.test(c.data());
}

const connections = (server: { getConnections(cb: (err: Error | null, n: number) => void): void }) =>
  new Promise<number>((resolve, reject) =>
    server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
  );

t.test('a body that never ends is cut at HTTP_REQUEST_TIMEOUT', async (t) => {
  const h = await testApp(t, {
    listen: true,
    env: { HTTP_REQUEST_TIMEOUT: '1', HTTP_HEADERS_TIMEOUT: '1' },
  });
  const c = await raw(h.url, slowPost('/webhooks/alertmanager', WEBHOOK_TOKEN));
  t.teardown(() => c.socket.destroy());
  await closedWithin(c, 'the server to cut the slow body');
  t.match(c.data(), /^HTTP\/1\.1 408 /, 'answered 408 Request Timeout, then closed');
});

t.test('headers that never end are cut at HTTP_HEADERS_TIMEOUT', async (t) => {
  const h = await testApp(t, {
    listen: true,
    env: { HTTP_REQUEST_TIMEOUT: '30', HTTP_HEADERS_TIMEOUT: '1' },
  });
  const c = await raw(h.url, 'POST /webhooks/alertmanager HTTP/1.1\r\nHost: test\r\n');
  t.teardown(() => c.socket.destroy());
  await closedWithin(c, 'the server to cut the slow headers');
  t.match(c.data(), /^HTTP\/1\.1 408 /);
});

t.test('an idle keep-alive connection is closed after HTTP_KEEP_ALIVE_TIMEOUT', async (t) => {
  const h = await testApp(t, { listen: true, env: { HTTP_KEEP_ALIVE_TIMEOUT: '1' } });
  const c = await raw(h.url, getHealthz);
  t.teardown(() => c.socket.destroy());
  await waitFor('the /healthz answer', async () => c.data().includes('"status":"ok"'), 10_000, 20);
  t.match(c.data(), /keep-alive/i, 'the connection was kept alive after the answer');
  await closedWithin(c, 'the idle connection to be closed');
});

t.test('an unauthenticated write is answered 401 at headers time and its connection closed', async (t) => {
  const h = await testApp(t, { listen: true });
  for (const [path, token] of [
    ['/webhooks/alertmanager', ADMIN_TOKEN], // the wrong token
    ['/webhooks/alertmanager', undefined],
    ['/api/v1/remediations', WEBHOOK_TOKEN],
    ['/api/v1/notify', undefined],
  ] as const) {
    // The body is announced (10 kB) and never sent: the answer cannot have waited for it.
    const c = await raw(h.url, slowPost(path, token));
    t.teardown(() => c.socket.destroy());
    await closedWithin(c, `the ${path} connection to be closed after the 401`);
    t.match(c.data(), /^HTTP\/1\.1 401 /, `${path} with ${token ? 'a wrong' : 'no'} token: 401`);
    t.match(c.data(), /connection: close/i, 'the server says it closes the connection');
  }
});

t.test('connections beyond the per-client cap are closed at once; others still get answers', async (t) => {
  const h = await testApp(t, {
    listen: true,
    env: { HTTP_MAX_CONNECTIONS_PER_CLIENT: '5', HTTP_REQUEST_TIMEOUT: '60' },
  });
  // Five slow bodies from 127.0.0.1, authenticated, so that only the caps can stop them.
  const slow: Raw[] = [];
  for (let i = 0; i < 5; i++) slow.push(await raw(h.url, slowPost('/webhooks/alertmanager', WEBHOOK_TOKEN)));
  t.teardown(() => {
    for (const c of slow) c.socket.destroy();
  });
  await waitFor('the server to hold the five', async () => (await connections(h.app.server)) === 5);

  const excess: Raw[] = [];
  for (let i = 0; i < 20; i++)
    excess.push(await raw(h.url, slowPost('/webhooks/alertmanager', WEBHOOK_TOKEN)));
  t.teardown(() => {
    for (const c of excess) c.socket.destroy();
  });
  for (const [i, c] of excess.entries()) await closedWithin(c, `excess connection ${i} to be closed`);
  t.ok(
    excess.every((c) => c.data() === ''),
    'the excess connections were closed without an answer',
  );
  t.ok(
    slow.every((c) => !c.closed()),
    'the five within the cap are still open',
  );

  // Another client (another loopback address) is answered, and so is the same client over a fresh
  // connection once one of its own is gone.
  const other = await raw(h.url, getHealthz, '127.0.0.2');
  t.teardown(() => other.socket.destroy());
  await waitFor(
    '/healthz for another client',
    async () => other.data().includes('"status":"ok"'),
    10_000,
    20,
  );
  t.match(other.data(), /^HTTP\/1\.1 200 /);

  // The server may count the closed connection out a moment after the client sees it closed.
  slow[0]?.socket.destroy();
  await waitFor(
    'a fresh connection from the same client to be answered',
    () => healthz(t, h.url),
    10_000,
    50,
  );

  const line = h.lines.map((l) => JSON.parse(l)).find((l) => l.event === 'connection_refused');
  t.match(line, { level: 'warn', client: '127.0.0.1' }, 'the refusal is logged');
  t.match(line?.msg, /HTTP_MAX_CONNECTIONS_PER_CLIENT=5/);
  t.equal(
    h.lines.filter((l) => l.includes('connection_refused')).length,
    1,
    'once for the burst, not once per connection',
  );
});

t.test('connections beyond the total cap are closed at once', async (t) => {
  const h = await testApp(t, {
    listen: true,
    env: { HTTP_MAX_CONNECTIONS: '4', HTTP_MAX_CONNECTIONS_PER_CLIENT: '2', HTTP_REQUEST_TIMEOUT: '60' },
  });
  const held: Raw[] = [];
  t.teardown(() => {
    for (const c of held) c.socket.destroy();
  });
  for (const from of ['127.0.0.1', '127.0.0.1', '127.0.0.2', '127.0.0.2'])
    held.push(await raw(h.url, slowPost('/webhooks/alertmanager', WEBHOOK_TOKEN), from));
  await waitFor('the server to hold four', async () => (await connections(h.app.server)) === 4);
  const fifth = await raw(h.url, getHealthz, '127.0.0.3');
  t.teardown(() => fifth.socket.destroy());
  await closedWithin(fifth, 'the fifth connection to be closed');
  t.equal(fifth.data(), '', 'closed without an answer');
  t.ok(
    held.every((c) => !c.closed()),
    'the four are still open',
  );
  held[0]?.socket.destroy();
  await waitFor(
    'a connection to be answered once there is room',
    () => healthz(t, h.url, '127.0.0.3'),
    10_000,
    50,
  );
  t.ok(
    h.lines.some((l) => l.includes('HTTP_MAX_CONNECTIONS=4')),
    'the refusal is logged',
  );
});

t.test('the limits are settings with safe defaults, checked against each other', async (t) => {
  const { loadConfig } = await import('../src/config.js');
  t.same(loadConfig({}).http, {
    requestTimeoutMs: 30_000,
    headersTimeoutMs: 10_000,
    keepAliveTimeoutMs: 65_000,
    maxConnections: 256,
    maxConnectionsPerClient: 32,
  });
  t.throws(
    () => loadConfig({ HTTP_REQUEST_TIMEOUT: '5', HTTP_HEADERS_TIMEOUT: '10' }),
    /^HTTP_HEADERS_TIMEOUT: /,
  );
  t.throws(() => loadConfig({ HTTP_MAX_CONNECTIONS: '10' }), /^HTTP_MAX_CONNECTIONS_PER_CLIENT: /);
  t.throws(() => loadConfig({ HTTP_REQUEST_TIMEOUT: '0' }), /^HTTP_REQUEST_TIMEOUT: /);
});

t.test('clients are counted by address, IPv6 by its /64', async (t) => {
  const { clientKey } = await import('../src/http/app.js');
  t.equal(clientKey('10.0.0.7'), '10.0.0.7');
  t.equal(clientKey('::ffff:10.0.0.7'), '10.0.0.7');
  t.equal(clientKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  t.equal(clientKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64');
  t.equal(clientKey('2001:db8::1'), '2001:db8:0:0::/64');
  t.equal(clientKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  t.equal(clientKey('::1'), '0:0:0:0::/64');
  t.equal(clientKey(undefined), 'unknown');
});
