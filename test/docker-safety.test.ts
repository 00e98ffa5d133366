// Holding the Docker socket safely, on the real engine (and on a stand-in engine for the answers a real
// one never gives): a target name can neither crash the service nor make it send a request to an
// address the caller picks. Each defence is tested on its own: names are checked before any engine
// call, a name or id is one encoded URL path segment, the client never follows a redirect, every
// connection error is a rejected call; and a short hex name never stands for an id prefix.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { type ContainerSummary, type DockerClient, InvalidReferenceError } from '../src/docker/client.js';
import { DockerodeClient, pathSegment } from '../src/docker/dockerode-client.js';
import { adminAuth } from './fixtures/admin-app.js';
import { testApp } from './fixtures/app.js';
import { createTestContainer, DOCKER_HOST, docker as engine, restartCountOf } from './fixtures/docker.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** An HTTP listener on 127.0.0.1 that records every request: where a followed redirect would land. */
async function listener(t: Teardown) {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.end('{}');
  });
  server.on('connection', () => seen.push('connection'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return { port: (server.address() as { port: number }).port, seen };
}

/** Errors nothing handled while the test ran (before the fix, a followed redirect ended the process). */
function uncaught(t: Teardown): unknown[] {
  const errors: unknown[] = [];
  const onError = (err: unknown) => errors.push(err);
  process.on('uncaughtException', onError);
  process.on('unhandledRejection', onError);
  t.teardown(() => {
    process.off('uncaughtException', onError);
    process.off('unhandledRejection', onError);
  });
  return errors;
}

/**
 * Lets a request that was wrongly sent reach its listener: a followed redirect starts its request
 * before the first call settles, so it arrives well within this. Only an absence is asserted after it.
 */
const letStrayRequestsArrive = () => sleep(1500);

/** A DockerClient that records the calls made through it. */
function recording(inner: DockerClient) {
  const calls: string[] = [];
  const docker = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push(`${String(prop)}(${args.filter((a) => typeof a === 'string').join(', ')})`);
        return value.apply(target, args);
      };
    },
  });
  return { docker, calls };
}

/** The shortest prefix (at least 2 characters, below 12) of an id that no other container's id has. */
async function uniqueShortPrefix(id: string): Promise<string> {
  const all = await engine.listContainers({ all: true });
  for (let n = 2; n < 12; n++) {
    const p = id.slice(0, n);
    const clash = all.some((c) => c.Id !== id && (c.Id.startsWith(p) || c.Names.includes(`/${p}`)));
    if (!clash) return id.slice(0, Math.min(n + 1, 11));
  }
  throw new Error(`no unique short prefix of ${id}`);
}

t.test('the client never follows a redirect from the engine, and says so', async (t) => {
  const errors = uncaught(t);
  const { port, seen } = await listener(t);
  const client = new DockerodeClient(DOCKER_HOST, 10_000);
  // Straight through dockerode, past this client's own checks: the engine cleans `/containers/../x`
  // to `/x` and answers with a redirect there; docker-modem's transport used to follow it.
  for (const name of [`../127.0.0.1:${port}/x`, '../x', '..', '.']) {
    await t.rejects(
      client.docker.getContainer(name).inspect(),
      {
        statusCode: 301,
        message: /answered 301 \(a redirect to "\/.*"\); redirects from the engine are never followed/,
      },
      JSON.stringify(name),
    );
  }
  await letStrayRequestsArrive();
  t.same(seen, [], 'nothing reached the address the name pointed at');
  t.same(errors, [], 'no error was left unhandled');
  await client.ping();
  t.pass('the client still works');
});

t.test('a container reference is one encoded URL path segment, or refused before any request', async (t) => {
  const table: Array<[string, string]> = [
    ['web', 'web'],
    ['a b', 'a%20b'],
    ['名前', '%E5%90%8D%E5%89%8D'],
    ['web?all=1', 'web%3Fall%3D1'],
    ['web#x', 'web%23x'],
    ['a\u0000b', 'a%00b'],
    ['...', '...'],
    ['%2e%2e', '%252e%252e'],
  ];
  for (const [ref, segment] of table) t.equal(pathSegment(ref), segment, JSON.stringify(ref));
  for (const ref of ['', '.', '..', '../x', 'a/b', '/web', '\uD800']) {
    t.throws(() => pathSegment(ref), InvalidReferenceError, `${JSON.stringify(ref)} is refused`);
  }

  const errors = uncaught(t);
  const { port, seen } = await listener(t);
  const client = new DockerodeClient(DOCKER_HOST, 10_000);
  // What the engine cannot name is simply not there (before, some of these never left the process
  // and others became a different path).
  for (const ref of ['a b', '名前', 'a\u0000b', 'a;rm -rf', 'web?all=1', 'no-such-container-xyz']) {
    t.equal(await client.inspect(ref), undefined, `${JSON.stringify(ref)}: no such container`);
  }
  const elsewhere = `../127.0.0.1:${port}/x`;
  await t.rejects(client.inspect(elsewhere), InvalidReferenceError);
  await t.rejects(client.restart('../x', 1), InvalidReferenceError);
  await t.rejects(client.stop('..', 1), InvalidReferenceError);
  await t.rejects(client.start('a/b'), InvalidReferenceError);
  await t.rejects(client.kill('.'), InvalidReferenceError);
  await t.rejects(client.remove(elsewhere), InvalidReferenceError);

  // A real container is still found by its name and its id.
  const c = await createTestContainer(t, { start: false });
  t.equal((await client.inspect(c.name))?.id, c.id);
  t.equal((await client.inspect(c.id))?.name, c.name);
  await letStrayRequestsArrive();
  t.same(seen, [], 'nothing left the socket');
  t.same(errors, [], 'no error was left unhandled');
});

/** A stand-in engine on a unix socket, answering what a proxy or a broken engine might. */
async function strangeEngine(t: Teardown, port: number) {
  const dir = mkdtempSync(join(tmpdir(), 'autoheal-strange-'));
  const socket = join(dir, 'docker.sock');
  const answers: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
    '/containers/to-mailto/json': (_req, res) =>
      res.writeHead(301, { location: 'mailto:x@example.com' }).end(),
    '/containers/to-tcp/json': (_req, res) =>
      res.writeHead(302, { location: `http://127.0.0.1:${port}/x/json` }).end('moved'),
    '/containers/no-location/json': (_req, res) => res.writeHead(307).end(),
    '/containers/reset/json': (req) => req.socket.destroy(),
    '/containers/half/json': (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"Id":');
      setImmediate(() => req.socket.destroy());
    },
    '/events': (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(
        `${JSON.stringify({ Type: 'container', Action: 'die', Actor: { ID: 'a'.repeat(64), Attributes: { name: 'web' } }, time: 1, timeNano: 1_000_000_000 })}\n`,
      );
      setTimeout(() => req.socket.destroy(), 50);
    },
  };
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    const answer = answers[path];
    if (answer) answer(req, res);
    else res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"no such container"}');
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  t.teardown(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });
  return `unix://${socket}`;
}

// Bounded: docker-modem's own transport never settled a call whose answer was cut short.
t.test(
  'every odd answer of the engine ends as a rejected call, never an unhandled error',
  { timeout: 60_000 },
  async (t) => {
    const errors = uncaught(t);
    const { port, seen } = await listener(t);
    const client = new DockerodeClient(await strangeEngine(t, port), 5_000);

    // docker-modem's redirect code looked the Location's scheme up and threw outside any handler.
    await t.rejects(client.inspect('to-mailto'), { statusCode: 301, message: /never followed/ });
    await t.rejects(client.inspect('to-tcp'), { statusCode: 302, message: /127\.0\.0\.1/ });
    await t.rejects(client.inspect('no-location'), { statusCode: 307, message: /answered 307/ });
    await t.rejects(client.inspect('reset'));
    await t.rejects(client.inspect('half'));
    t.equal(await client.inspect('gone'), undefined, 'a 404 is still "no such container"');

    const got: string[] = [];
    const ended = (async () => {
      for await (const ev of client.events({ signal: AbortSignal.timeout(10_000) })) got.push(ev.name);
    })().then(
      () => 'ended',
      (err: Error) => `threw: ${err.message}`,
    );
    t.match(await ended, /ended|threw/, 'a broken event stream ends the loop');
    t.same(got, ['web'], 'what arrived before the break was read');

    await letStrayRequestsArrive();
    t.same(seen, [], 'the redirect to 127.0.0.1 was not followed');
    t.same(errors, [], 'no error was left unhandled');
  },
);

t.test('the requests from the issue get 400 and the service keeps running', async (t) => {
  const errors = uncaught(t);
  const { port, seen } = await listener(t);
  const { docker, calls } = recording(new DockerodeClient(DOCKER_HOST, 10_000));
  const h = await testApp(t, { docker, listen: true });
  // Over a real socket, path as sent: inject() would resolve its `%2e%2e` before the router sees it.
  const inject = (method: 'POST' | 'DELETE', path: string, payload?: object) =>
    new Promise<{ statusCode: number; body: string; json: () => unknown }>((resolve, reject) => {
      // Options, not a URL string: the URL parser would resolve `%2e%2e` as well.
      const { hostname, port: appPort } = new URL(h.url);
      const req = request({
        hostname,
        port: appPort,
        path,
        method,
        headers: { ...adminAuth(), ...(payload ? { 'content-type': 'application/json' } : {}) },
      });
      req.on('error', reject);
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, body, json: () => JSON.parse(body) }));
      });
      req.end(payload ? JSON.stringify(payload) : undefined);
    });

  const elsewhere = `../127.0.0.1:${port}/x`;
  const answers = [
    await inject('POST', '/api/v1/remediations', { target: '../x', action: 'restart', dryRun: true }),
    await inject('POST', '/api/v1/remediations', { target: elsewhere, action: 'restart', dryRun: true }),
    await inject('POST', '/api/v1/containers/%2e%2e/pause', { for: '1h' }),
    await inject('DELETE', '/api/v1/containers/%2e%2e/pause'),
    await inject('POST', '/api/v1/containers/%2e%2e/reset', {}),
    await inject('POST', `/api/v1/containers/${encodeURIComponent(elsewhere)}/pause`, { for: '1h' }),
  ];
  for (const res of answers) {
    t.equal(res.statusCode, 400, res.body);
    t.match(res.json(), { error: 'invalid_target', message: /is not a container name or id/ });
  }

  // The same names as alert labels: accepted (Alertmanager must not re-send), then skipped.
  const hook = await h.postAlerts([
    { labels: { alertname: 'ContainerUnhealthy', container: '../x', remediation: 'restart' } },
    { labels: { alertname: 'ContainerUnhealthy', container: elsewhere, remediation: 'restart' } },
    { labels: { alertname: 'ContainerUnhealthy', container: '..', remediation: 'restart' } },
  ]);
  t.equal(hook.statusCode, 200);
  await h.engine.idle();
  const skips = h.audit().filter((l) => l.event === 'decision' && l.reason === 'invalid_target');
  t.equal(skips.length, 3, 'each alert is skipped as invalid_target');
  t.match(skips[0], { verdict: 'skip', detail: /"\.\.\/x" is not a container name or id/ });
  t.equal(await h.metric('autoheal_decisions_total', { reason: 'invalid_target' }), 3);
  t.same(calls, [], 'not one engine call was made for any of them');

  await letStrayRequestsArrive();
  t.same(seen, [], 'nothing was sent to the address in the name');
  t.same(errors, [], 'no error was left unhandled');
  const health = await h.app.inject('/healthz');
  t.equal(health.statusCode, 200, 'the service is still up');
});

t.test('an alert for a short hex name never touches the container whose id begins with it', async (t) => {
  const h = await testApp(t);
  const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' } });
  const prefix = await uniqueShortPrefix(c.id);
  const before = await restartCountOf(c.name);

  await h.postAlerts([
    { labels: { alertname: 'ContainerUnhealthy', container: prefix, remediation: 'restart' } },
  ]);
  await h.engine.idle();
  const decision = h.audit().find((l) => l.event === 'decision');
  t.match(decision, {
    reason: 'target_not_found',
    container: prefix,
    detail: `no container named "${prefix}" (an id needs at least 12 hex characters)`,
  });
  t.equal(await h.metric('autoheal_decisions_total', { reason: 'target_not_found' }), 1);
  t.same(await restartCountOf(c.name), before, 'not restarted');
  t.notOk(
    h.audit().some((l) => l.event === 'action'),
    'no action was started',
  );
});

t.test('an id prefix of 12 or more names its container; one that names several names none', async (t) => {
  const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' } });
  const prefix = c.id.slice(0, 12);
  // A real engine never hands out two ids with the same first 12 characters: a second one is added
  // to its listings, as a host with very many containers might have it.
  const real = new DockerodeClient(DOCKER_HOST, 10_000);
  const twin: ContainerSummary = {
    id: `${prefix}${'f'.repeat(52)}`,
    name: `${c.name}-twin`,
    labels: { 'autoheal.enable': 'true' },
    state: 'running',
    health: 'healthy',
    image: 'img',
    status: 'Up',
    created: 0,
  };
  let withTwin = false;
  const docker = new Proxy(real, {
    get(target, prop, receiver) {
      if (prop === 'listContainers') {
        return async (opts?: Parameters<DockerClient['listContainers']>[0]) => [
          ...(await target.listContainers(opts)),
          ...(withTwin ? [twin] : []),
        ];
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const h = await testApp(t, { docker, env: { DRY_RUN: 'true' } });

  await h.postAlerts([{ labels: { alertname: 'X', container: prefix, remediation: 'restart' } }]);
  await h.engine.idle();
  t.match(
    h.audit().find((l) => l.event === 'decision'),
    { reason: 'dry_run', container: c.name },
    'a unique 12-character prefix names its container',
  );

  withTwin = true;
  const before = await restartCountOf(c.name);
  await h.postAlerts([{ labels: { alertname: 'X', container: prefix, remediation: 'restart' } }]);
  await h.engine.idle();
  const ambiguous = h.audit().find((l) => l.event === 'decision' && l.reason === 'target_ambiguous');
  t.match(ambiguous, {
    verdict: 'skip',
    container: prefix,
    detail: new RegExp(`the id prefix "${prefix}" matches 2 containers \\(${c.name}, ${c.name}-twin\\)`),
  });
  t.equal(await h.metric('autoheal_decisions_total', { reason: 'target_ambiguous' }), 1);
  t.same(await restartCountOf(c.name), before, 'neither was touched');

  const res = await h.app.inject({
    method: 'POST',
    url: '/api/v1/remediations',
    headers: adminAuth(),
    payload: { target: prefix, action: 'restart' },
  });
  t.equal(res.statusCode, 409);
  t.match(res.json(), {
    error: 'target_ambiguous',
    target: prefix,
    candidates: [c.name, `${c.name}-twin`],
    message: /give more of the id, or the name/,
  });
});
