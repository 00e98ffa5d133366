// Image references, Docker config credentials and the registry's digest exchange, without an engine:
// references expand as Docker expands them (docker.io, library/, latest) and a digest reference is
// never followed; config.json credentials are read-only and never printed; a registry's Bearer
// challenge is answered with a token from its realm (a local server plays both), and a registry that
// is down is an error value. Image references are checked before they reach an engine URL.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import t, { type Test } from 'tap';
import { updateAction } from '../../src/actions/update.js';
import { InvalidReferenceError } from '../../src/docker/client.js';
import { imagePath, pullParams } from '../../src/docker/dockerode-client.js';
import { Credentials, parseDockerConfig, readDockerAuth, registryOfKey } from '../../src/registry/auth.js';
import { checkUpdate } from '../../src/registry/check.js';
import { parseReference, referenceText, registryScheme } from '../../src/registry/reference.js';
import { MANIFEST_TYPES, parseChallenge, remoteDigest } from '../../src/registry/remote.js';
import { createLogger } from '../../src/logger.js';
import { testConfig } from '../fixtures/config.js';
import { FakeDocker } from '../fixtures/fake-docker.js';
import { freePort } from '../fixtures/prom-stack.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const b64 = (s: string) => Buffer.from(s).toString('base64');

t.test('parseReference expands references the way Docker does', async (t) => {
  const cases: Array<[string, string, string, string | undefined, string | undefined]> = [
    ['nginx', 'docker.io', 'library/nginx', 'latest', undefined],
    ['nginx:1.27', 'docker.io', 'library/nginx', '1.27', undefined],
    ['team/app', 'docker.io', 'team/app', 'latest', undefined],
    ['docker.io/nginx', 'docker.io', 'library/nginx', 'latest', undefined],
    ['index.docker.io/library/nginx:1', 'docker.io', 'library/nginx', '1', undefined],
    ['ghcr.io/org/sub/app:v2', 'ghcr.io', 'org/sub/app', 'v2', undefined],
    ['127.0.0.1:5000/ah/app:1', '127.0.0.1:5000', 'ah/app', '1', undefined],
    ['localhost/app', 'localhost', 'app', 'latest', undefined],
    [`nginx@${D1}`, 'docker.io', 'library/nginx', undefined, D1],
    [`nginx:1@${D1}`, 'docker.io', 'library/nginx', '1', D1],
  ];
  for (const [image, registry, repository, tag, digest] of cases) {
    const r = parseReference(image);
    t.ok(r.ok, image);
    if (r.ok) t.same(r.ref, { registry, repository, tag, digest }, image);
  }
  t.equal(
    referenceText({ registry: 'docker.io', repository: 'library/nginx', tag: 'latest' }),
    'docker.io/library/nginx:latest',
  );
});

t.test('parseReference refuses what is not a reference, saying why', async (t) => {
  for (const image of [
    '',
    'Nginx',
    'app:bad tag',
    'a b',
    'app/../etc',
    'app//x',
    'app:',
    `app@sha256:xyz`,
    'a'.repeat(600),
    'app:-x',
  ]) {
    const r = parseReference(image);
    t.notOk(r.ok, JSON.stringify(image.slice(0, 30)));
    if (!r.ok) t.match(r.detail, /is not an image reference: /);
  }
});

t.test('a registry on the loopback interface is asked over plain HTTP, any other over HTTPS', async (t) => {
  t.equal(registryScheme('127.0.0.1:5000'), 'http');
  t.equal(registryScheme('localhost:5000'), 'http');
  t.equal(registryScheme('ghcr.io'), 'https');
  t.equal(registryScheme('127.example.com'), 'https');
});

t.test('image references are checked before they go into an engine path', async (t) => {
  t.equal(imagePath('127.0.0.1:5000/ah/app:1'), '127.0.0.1:5000/ah/app:1');
  t.equal(imagePath(D1), D1);
  for (const bad of ['', 'a/../b', '../x', 'a//b', 'a b', 'a?x=1', 'a#b', 'a\nb', 'a/./b', 'a%2F..']) {
    t.throws(() => imagePath(bad), InvalidReferenceError, JSON.stringify(bad));
  }
  t.same(pullParams('127.0.0.1:5000/ah/app:1'), { fromImage: '127.0.0.1:5000/ah/app', tag: '1' });
  t.same(pullParams('127.0.0.1:5000/ah/app'), { fromImage: '127.0.0.1:5000/ah/app', tag: 'latest' });
  t.same(pullParams(`app@${D1}`), { fromImage: 'app', tag: D1 });
});

t.test('config.json credentials: inline auths by registry, helpers noted, nothing printed', async (t) => {
  const auth = parseDockerConfig(
    JSON.stringify({
      auths: {
        'https://index.docker.io/v1/': { auth: b64('hub-user:hub:pass') },
        '127.0.0.1:5000': { auth: b64('local:secret-pw') },
        'ghcr.io': { auth: b64('no-colon') },
        'quay.io': {},
      },
      credsStore: 'desktop',
    }),
  );
  const hub = auth.byRegistry.get('docker.io');
  t.equal(hub?.username, 'hub-user');
  t.equal(hub?.password, 'hub:pass', 'a password may hold colons');
  t.equal(auth.byRegistry.get('127.0.0.1:5000')?.password, 'secret-pw');
  t.notOk(auth.byRegistry.has('ghcr.io'));
  t.notOk(auth.byRegistry.has('quay.io'));
  t.match(auth.notes.join('\n'), /credential helpers .* not run/);
  t.match(auth.notes.join('\n'), /ghcr\.io is not base64 of user:password/);
  const shown = `${JSON.stringify([...auth.byRegistry.values()])} ${inspect(auth)} ${auth.notes.join(' ')}`;
  t.notMatch(shown, /secret-pw|hub:pass|bG9jYWw/, 'no password or encoded auth in JSON, inspect or notes');
  t.equal(registryOfKey('https://Registry.Example.com:443/v2/'), 'registry.example.com:443');
  t.same(parseDockerConfig('{not json').byRegistry.size, 0);
  t.match(parseDockerConfig('{not json').notes[0], /not valid JSON/);
});

t.test(
  'readDockerAuth reads DOCKER_CONFIG/config.json and never writes it; none is no credentials',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'autoheal-dockercfg-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    t.same((await readDockerAuth(dir)).byRegistry.size, 0, 'no file: no credentials, no error');
    const text = JSON.stringify({ auths: { '127.0.0.1:5000': { auth: b64('u:p') } } });
    writeFileSync(join(dir, 'config.json'), text);
    const auth = await readDockerAuth(dir);
    t.equal(auth.byRegistry.get('127.0.0.1:5000')?.basic(), `Basic ${b64('u:p')}`);
    t.equal(readFileSync(join(dir, 'config.json'), 'utf8'), text);
  },
);

t.test('parseChallenge reads a Bearer challenge', async (t) => {
  t.same(
    parseChallenge(
      'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"',
    ),
    {
      scheme: 'bearer',
      params: {
        realm: 'https://auth.example/token',
        service: 'registry.example',
        scope: 'repository:a/b:pull',
      },
    },
  );
  t.same(parseChallenge('Basic realm="x"').scheme, 'basic');
});

/** A registry that wants a Bearer token, and its token service, on one local port. */
async function tokenRegistry(
  t: Test,
  o: { user?: string; pass?: string; digest?: string; headOmitsDigest?: boolean },
) {
  const port = await freePort();
  const seen: Array<{ method: string; url: string; authorization?: string; accept?: string }> = [];
  const manifest = '{"schemaVersion":2}';
  const srv = createServer((req: IncomingMessage, res: ServerResponse) => {
    seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      authorization: req.headers.authorization,
      accept: req.headers.accept,
    });
    if (req.url?.startsWith('/token')) {
      const want = o.user ? `Basic ${b64(`${o.user}:${o.pass}`)}` : undefined;
      if (want && req.headers.authorization !== want) {
        res.writeHead(401).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'tok-123' }));
      return;
    }
    if (req.headers.authorization !== 'Bearer tok-123') {
      res
        .writeHead(401, {
          'www-authenticate': `Bearer realm="http://127.0.0.1:${port}/token",service="test-registry",scope="repository:ah/app:pull"`,
        })
        .end();
      return;
    }
    if (!req.url?.startsWith('/v2/ah/app/manifests/')) {
      res.writeHead(404).end();
      return;
    }
    const headers: Record<string, string> = { 'content-type': MANIFEST_TYPES[0] };
    if (!(o.headOmitsDigest && req.method === 'HEAD') && o.digest)
      headers['docker-content-digest'] = o.digest;
    res.writeHead(200, headers).end(req.method === 'GET' ? manifest : undefined);
  });
  await new Promise<void>((resolve) => srv.listen(port, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => srv.close(() => resolve())));
  return { host: `127.0.0.1:${port}`, seen, manifest };
}

t.test(
  'remoteDigest answers a Bearer challenge with a token from the realm, with the credentials',
  async (t) => {
    const reg = await tokenRegistry(t, { user: 'u', pass: 'p', digest: D2 });
    const ref = { registry: reg.host, repository: 'ah/app', tag: '1' };
    t.same(await remoteDigest(ref, new Credentials(reg.host, 'u', 'p')), { ok: true, digest: D2 });
    const [first, token, second] = reg.seen;
    t.equal(first?.method, 'HEAD');
    t.match(
      first?.accept,
      /manifest\.v2\+json.*manifest\.list\.v2\+json.*oci\.image\.manifest.*oci\.image\.index/,
    );
    t.match(token?.url, /^\/token\?service=test-registry&scope=repository%3Aah%2Fapp%3Apull$/);
    t.equal(token?.authorization, `Basic ${b64('u:p')}`);
    t.equal(second?.authorization, 'Bearer tok-123');

    const refused = await remoteDigest(ref, new Credentials(reg.host, 'u', 'wrong'));
    t.equal(refused.ok, false);
    if (!refused.ok) {
      t.match(refused.detail, /token service .* answered 401/);
      t.notMatch(refused.detail, /wrong/);
    }
  },
);

t.test('remoteDigest hashes the manifest when a HEAD carries no digest', async (t) => {
  const reg = await tokenRegistry(t, { headOmitsDigest: true });
  const r = await remoteDigest({ registry: reg.host, repository: 'ah/app', tag: '1' });
  const { createHash } = await import('node:crypto');
  t.same(r, { ok: true, digest: `sha256:${createHash('sha256').update(reg.manifest).digest('hex')}` });
});

t.test('a registry that is down, or has no such tag, is an error value that says so', async (t) => {
  const port = await freePort();
  const down = await remoteDigest(
    { registry: `127.0.0.1:${port}`, repository: 'ah/app', tag: '1' },
    undefined,
    { timeoutMs: 3000 },
  );
  t.same(down.ok, false);
  if (!down.ok)
    t.match(
      down.detail,
      new RegExp(`127\\.0\\.0\\.1:${port} could not be asked for .*ah/app:1: ECONNREFUSED`),
    );
  const reg = await tokenRegistry(t, { digest: D2 });
  const missing = await remoteDigest({ registry: reg.host, repository: 'ah/other', tag: '1' });
  t.same(missing, { ok: false, detail: `${reg.host} has no ${reg.host}/ah/other:1` });
  const pinned = await remoteDigest({ registry: reg.host, repository: 'ah/app', digest: D1 });
  t.match(pinned, { ok: false, detail: /pinned to a digest/ });
});

t.test(
  'checkUpdate compares the RepoDigests of the image the container runs with the registry',
  async (t) => {
    const reg = await tokenRegistry(t, { digest: D2 });
    const docker = new FakeDocker();
    const image = `${reg.host}/ah/app:1`;
    docker.images.set('sha256:old', {
      id: 'sha256:old',
      repoDigests: [`${reg.host}/ah/app@${D1}`, `other.io/x@${D2}`],
    });
    docker.images.set('sha256:new', { id: 'sha256:new', repoDigests: [`${reg.host}/ah/app@${D2}`] });
    docker.images.set('sha256:built', { id: 'sha256:built', repoDigests: [] });

    const available = await checkUpdate(docker, { name: 'web', image, imageId: 'sha256:old' });
    t.match(available, { status: 'available', reference: image, localDigest: D1, remoteDigest: D2 });
    const current = await checkUpdate(docker, { name: 'web', image, imageId: 'sha256:new' });
    t.match(current, { status: 'up_to_date', localDigest: D2, remoteDigest: D2 });
    const built = await checkUpdate(docker, { name: 'web', image, imageId: 'sha256:built' });
    t.match(built, { status: 'unknown', remoteDigest: D2, detail: /not pulled from .*built here/ });
    const gone = await checkUpdate(docker, { name: 'web', image, imageId: 'sha256:gone' });
    t.match(gone, { status: 'unknown', detail: /not in the engine any more/ });
    const pinned = await checkUpdate(docker, { name: 'web', image: `${reg.host}/ah/app@${D1}` });
    t.match(pinned, { status: 'up_to_date', detail: /pinned to a digest: it is never updated/ });
    const bad = await checkUpdate(docker, { name: 'web', image: 'Bad Image' });
    t.match(bad, { status: 'unknown', detail: /not an image reference/ });
    docker.down = true;
    t.match(await checkUpdate(docker, { name: 'web', image, imageId: 'sha256:old' }), {
      status: 'unknown',
      detail: /the engine could not say which image web runs: .*ECONNREFUSED/,
    });
    t.equal(
      reg.seen.filter((s) => s.method !== 'HEAD' && !s.url.startsWith('/token')).length,
      0,
      'only HEADs: nothing pulled',
    );
  },
);

t.test(
  'update pulls with the Docker config credentials, then re-creates; a failed pull or a pinned image changes nothing',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'autoheal-dockercfg-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ auths: { '127.0.0.1:5000': { auth: b64('u:p') } } }),
    );
    const image = '127.0.0.1:5000/ah/app:1';
    const docker = new FakeDocker();
    docker.add('web', { id: 'a'.repeat(64), image, imageId: 'sha256:old' });
    docker.images.set('sha256:old', { id: 'sha256:old', repoDigests: [`127.0.0.1:5000/ah/app@${D1}`] });
    const ctx = {
      docker,
      config: testConfig({ DOCKER_CONFIG: dir }),
      log: createLogger({ level: 'silent', file: '' }),
      now: Date.now,
      params: {},
    };
    const run = async (name: string) => {
      const container = await docker.inspect(name);
      if (!container) throw new Error(`no ${name}`);
      return updateAction.run(ctx, { kind: 'container', container, stopTimeoutSec: 1 });
    };

    const failed = await run('web');
    t.match(failed, { ok: false, detail: /could not pull .*: nothing changed$/ });
    t.same(docker.pulls, [{ ref: image, withCredentials: true }], 'pulled once, with the credentials');
    t.equal(docker.created, 0, 'nothing re-created');

    docker.registry.set(image, { id: 'sha256:new', repoDigests: [`127.0.0.1:5000/ah/app@${D2}`] });
    const out = await run('web');
    t.ok(out.ok, out.detail);
    t.match(out.detail, `pulled 127.0.0.1:5000/ah/app:1: ${D1} → ${D2}`);
    t.equal(out.verifyId, 'web-new1', 'the replacement is the one to verify');
    t.ok(out.settle, 'and the old one waits aside until the verdict');

    docker.add('current', { image, imageId: 'sha256:new' });
    t.match(await run('current'), { ok: true, detail: /already runs the current .*nothing to do/ });
    t.equal(docker.created, 1, 'no re-create for an image that did not change');

    docker.add('pinned', { image: `127.0.0.1:5000/ah/app@${D1}` });
    const before = docker.pulls.length;
    t.match(await run('pinned'), { ok: false, detail: /pinned to a digest: it is never updated/ });
    t.equal(docker.pulls.length, before, 'a pinned image is not even pulled');
  },
);
