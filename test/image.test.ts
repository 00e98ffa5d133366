// The Dockerfile, built for real on a base image made from this machine's own Node.js runtime (no
// registry is reachable here; see test/fixtures/service-image.ts). The built image then runs as its
// non-root user with the socket mounted and the socket's group added, answers /healthz, passes its own
// HEALTHCHECK, and heals a container through the socket, while leaving its own container alone. Without
// the socket's group it reports unhealthy and its log names the group and the fix. It also runs from
// the README's own `docker build` / `docker run` lines (test/newcomer.test.ts reads them).
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import t from 'tap';
import { parse } from 'yaml';
import {
  breakContainer,
  createTestContainer,
  docker,
  restartCountOf,
  uniqueName,
  waitFor,
  waitForHealth,
} from './fixtures/docker.js';
import { TEST_LABEL } from './fixtures/labels.js';
import { freePort, REPO, sampleOf } from './fixtures/prom-stack.js';
import { sectionCommands } from './fixtures/readme.js';
import { BASE_IMAGE, buildServiceImage, ensureBaseImage, SERVICE_IMAGE } from './fixtures/service-image.js';
import { shellWords } from './fixtures/shell-words.js';

const run = promisify(execFile);
const SOCKET = '/var/run/docker.sock';

/** The engine's events of one container from `sinceMs` until now (a finite stream: `until` is set). */
async function containerEvents(
  id: string,
  sinceMs: number,
): Promise<Array<{ Action?: string; Actor?: { Attributes?: Record<string, string> } }>> {
  const stream = (await docker.getEvents({
    since: Math.floor(sinceMs / 1000) - 1,
    until: Math.ceil(Date.now() / 1000) + 1,
    filters: { container: [id], type: ['container'] },
  })) as NodeJS.ReadableStream;
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

const dir = mkdtempSync(join(tmpdir(), 'autoheal-image-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('the image', async (t) => {
  await ensureBaseImage();
  const started = Date.now();
  try {
    await buildServiceImage();
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    t.fail(`docker build failed:\n${(e.stdout ?? '').split('\n').slice(-40).join('\n')}\n${e.stderr ?? ''}`);
    return;
  }
  const buildSeconds = (Date.now() - started) / 1000;
  t.teardown(() =>
    run('docker', ['image', 'prune', '-f', '--filter', `label=${TEST_LABEL}=image`]).catch(() => undefined),
  );

  const info = await docker.getImage(SERVICE_IMAGE).inspect();
  const base = await docker.getImage(BASE_IMAGE).inspect();
  const mb = (n: number) => Math.round(n / 1e5) / 10;
  t.comment(
    `image build ${buildSeconds.toFixed(1)} s (layer cache reused where the inputs did not change); ` +
      `image ${mb(info.Size)} MB = base ${mb(base.Size)} MB + ${mb(info.Size - base.Size)} MB of the service`,
  );
  t.ok(info.Size - base.Size < 80e6, 'the service adds less than 80 MB to its base');
  t.equal(info.Config.User, '1000:1000', 'runs as a non-root user');
  t.equal(info.Config.Labels?.['autoheal.enable'], 'false', 'labelled so the service never heals itself');
  t.match(
    JSON.stringify(info.Config.Healthcheck?.Test),
    /\/readyz/,
    'HEALTHCHECK on /readyz: healthy means the engine answers too',
  );
  t.same(info.Config.Cmd, ['node', 'dist/src/server.js']);

  t.test('production dependencies only, compiled code only', async (t) => {
    const probe = `const fs = require('node:fs'); console.log(JSON.stringify(['node_modules/typescript', 'node_modules/tap', 'node_modules/@biomejs', 'node_modules/cpu-features', 'node_modules/fastify', 'node_modules/dockerode', 'src', 'dist/src/server.js', 'dist/routes/webhook.js'].filter((p) => fs.existsSync(p))))`;
    const { stdout } = await run('docker', [
      'run',
      '--rm',
      '--network',
      'none',
      '--label',
      `${TEST_LABEL}=true`,
      SERVICE_IMAGE,
      'node',
      '-e',
      probe,
    ]);
    t.same(JSON.parse(stdout), [
      'node_modules/fastify',
      'node_modules/dockerode',
      'dist/src/server.js',
      'dist/routes/webhook.js',
    ]);
  });

  // The README's "Run it in Docker" lines. What this machine needs changed, and nothing else: the base
  // image is the local one (no registry), the build and the container use the host network (the engine
  // runs with --bridge=none, so there is no bridge to publish a port on: -p becomes PORT on the host
  // network), and the name, tag, volume and port are the test's own. $(stat ...) is what a shell makes of it.
  t.test("the README's docker build and docker run lines", async (t) => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const [build = '', runLine = ''] = sectionCommands(readme, '## Run it in Docker');
    t.match(build, /^docker build --build-arg NODE_IMAGE=node:24-bookworm-slim -t autoheal-nexus \.$/);
    t.match(runLine, /--group-add \$\(stat -c %g \/var\/run\/docker\.sock\)/);
    const tag = `${SERVICE_IMAGE}-readme`;
    const buildArgs = shellWords(build, {})
      .slice(1)
      .map((w) =>
        w === 'NODE_IMAGE=node:24-bookworm-slim'
          ? `NODE_IMAGE=${BASE_IMAGE}`
          : w === 'autoheal-nexus'
            ? tag
            : w,
      );
    await run(
      'docker',
      [
        ...buildArgs.slice(0, 1),
        '--network',
        'host',
        '--label',
        `${TEST_LABEL}=image`,
        ...buildArgs.slice(1),
      ],
      {
        cwd: REPO,
        maxBuffer: 64 * 1024 * 1024,
        env: { ...process.env, DOCKER_BUILDKIT: '0' },
      },
    );
    const port = await freePort();
    const name = uniqueName('readme-run');
    const volume = uniqueName('readme-data');
    const gid = String(statSync(SOCKET).gid);
    const words = shellWords(runLine.replace('$(stat -c %g /var/run/docker.sock)', gid), {});
    const args: string[] = [];
    for (let i = 1; i < words.length; i++) {
      const w = words[i] as string;
      if (w === '-p') {
        args.push('--network', 'host', '-e', `PORT=${port}`, '-e', 'HOST=127.0.0.1');
        i++;
      } else if (w === 'autoheal') args.push(name);
      else if (w === 'autoheal-data:/data') args.push(`${volume}:/data`);
      else if (w === 'autoheal-nexus')
        args.push('--label', `${TEST_LABEL}=true`, '-e', 'WATCHER_HEAL=false', '-e', 'DRY_RUN=true', tag);
      else args.push(w);
    }
    t.teardown(async () => {
      await run('docker', ['rm', '-f', name]).catch(() => undefined);
      await run('docker', ['volume', 'rm', '-f', volume]).catch(() => undefined);
    });
    await run('docker', args);
    await waitForHealth(name, 'healthy', 180_000);
    t.pass('docker ps: healthy (it answers and reaches the engine)');
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    t.equal(ready.status, 200);
    const status = await fetch(`http://127.0.0.1:${port}/api/v1/containers`, {
      headers: { authorization: 'Bearer change-me-too-long-secret' },
    });
    t.equal(status.status, 200, 'the admin token from the run line');
  });

  t.test('without the socket group: unhealthy, and the log says the group and the fix', async (t) => {
    const port = await freePort();
    const name = uniqueName('image-nogroup');
    const gid = statSync(SOCKET).gid;
    const c = await docker.createContainer({
      name,
      Image: SERVICE_IMAGE,
      Labels: { [TEST_LABEL]: 'true' },
      Env: [`PORT=${port}`, 'HOST=127.0.0.1', 'WATCHER_HEAL=false', 'DRY_RUN=true', 'LOG_FILE='],
      Healthcheck: { Interval: 1_000_000_000, StartPeriod: 0, Retries: 2 },
      HostConfig: {
        NetworkMode: 'host',
        Binds: [`${SOCKET}:${SOCKET}`],
        Mounts: [{ Type: 'volume', Source: '', Target: '/data' }],
      },
    });
    t.teardown(() => c.remove({ force: true, v: true }).catch(() => undefined));
    await c.start();
    await waitForHealth(name, 'unhealthy', 60_000);
    t.pass('docker ps shows it unhealthy: it cannot reach the engine');
    const logs = String(await c.logs({ stdout: true, stderr: true, tail: 50 }));
    t.match(logs, `belongs to group ${gid}`);
    t.match(logs, `--group-add ${gid}`);
    t.match(logs, `DOCKER_GID=${gid}`);
  });

  // The token files the compose stack's `secrets` service writes, by the command in docker-compose.yml.
  const secretsDir = join(dir, 'secrets');
  mkdirSync(secretsDir);
  t.test(
    "docker-compose.yml's secrets command writes tokens the service and Alertmanager can read",
    async (t) => {
      const compose = parse(readFileSync(join(REPO, 'docker-compose.yml'), 'utf8')) as {
        services: { secrets: { command: string[]; user: string } };
      };
      const { command, user } = compose.services.secrets;
      const once = (env: string[]) =>
        run('docker', [
          'run',
          '--rm',
          '--network',
          'none',
          '--label',
          `${TEST_LABEL}=true`,
          '--user',
          user,
          '-v',
          `${secretsDir}:/secrets`,
          ...env.flatMap((e) => ['-e', e]),
          SERVICE_IMAGE,
          ...command,
        ]);
      await once(['WEBHOOK_TOKEN=', 'ADMIN_TOKEN=']);
      const webhook = readFileSync(join(secretsDir, 'webhook_token'), 'utf8');
      t.match(webhook, /^[0-9a-f]{64}\n$/, 'a random webhook token');
      const st = statSync(join(secretsDir, 'webhook_token'));
      t.same(
        [st.uid, st.gid, st.mode & 0o777],
        [1000, 65534, 0o440],
        'webhook token: service and nobody group',
      );
      const adm = statSync(join(secretsDir, 'admin_token'));
      t.same([adm.uid, adm.mode & 0o777], [1000, 0o400], 'admin token: the service only');
      await once(['WEBHOOK_TOKEN=', 'ADMIN_TOKEN=']);
      t.equal(readFileSync(join(secretsDir, 'webhook_token'), 'utf8'), webhook, 'kept on the next start');
    },
  );

  t.test('runs with the socket: healthz, its own HEALTHCHECK, and a real heal', async (t) => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const token = readFileSync(join(secretsDir, 'webhook_token'), 'utf8').trim();
    const name = uniqueName('image');
    // A project of its own: services of other tests on the same engine leave its containers alone.
    const project = uniqueName('image');
    const c = await docker.createContainer({
      name,
      Image: SERVICE_IMAGE,
      Labels: { [TEST_LABEL]: 'true' },
      Env: [
        `PORT=${port}`,
        'HOST=127.0.0.1',
        'WEBHOOK_TOKEN_FILE=/secrets/webhook_token',
        'ADMIN_TOKEN_FILE=/secrets/admin_token',
        'RESTART_COOLDOWN=1',
        'VERIFY_GRACE=1',
        'WATCHER_HEAL=false',
        'WATCH_SCOPE=project',
        `COMPOSE_PROJECT=${project}`,
      ],
      // The image's check, only run every second instead of every 30 s.
      Healthcheck: { Interval: 1_000_000_000, StartPeriod: 0 },
      HostConfig: {
        NetworkMode: 'host',
        Binds: [`${SOCKET}:${SOCKET}`, `${secretsDir}:/secrets:ro`],
        GroupAdd: [String(statSync(SOCKET).gid)],
        // As in docker-compose.yml: a read-only root, the state on a volume that Docker fills with the
        // image's /data (owned by uid 1000).
        ReadonlyRootfs: true,
        Mounts: [{ Type: 'volume', Source: '', Target: '/data' }],
        Tmpfs: { '/tmp': '' },
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges:true'],
      },
    });
    t.teardown(() => c.remove({ force: true, v: true }).catch(() => undefined));
    await c.start();
    const logs = async () => String(await c.logs({ stdout: true, stderr: true, tail: 30 }));
    try {
      await waitFor('/healthz', async () => (await fetch(`${url}/healthz`)).ok, 30_000, 200);
    } catch (err) {
      t.fail(`${(err as Error).message}\n${await logs()}`);
      return;
    }
    const ready = await fetch(`${url}/readyz`);
    t.equal(ready.status, 200, `/readyz: ${await ready.text()}`);
    await waitForHealth(name, 'healthy', 20_000);
    t.pass("the image's own HEALTHCHECK passes");
    t.equal((await c.inspect()).Config.User, '1000:1000');

    // A broken, watched container, and an alert for it: the service lists, inspects and restarts it.
    const target = await createTestContainer(t, { labels: { 'com.docker.compose.project': project } });
    await waitForHealth(target.name, 'healthy');
    await breakContainer(target.name);
    await waitForHealth(target.name, 'unhealthy');
    const before = await restartCountOf(target.name);
    const post = (labels: Record<string, string>, auth = token) =>
      fetch(`${url}/webhooks/alertmanager`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${auth}` },
        body: JSON.stringify({
          version: '4',
          status: 'firing',
          receiver: 'autoheal',
          alerts: [
            {
              status: 'firing',
              labels: { alertname: 'ContainerUnhealthy', severity: 'warning', ...labels },
              annotations: {},
              startsAt: new Date().toISOString(),
              fingerprint: Math.random().toString(16).slice(2, 18),
            },
          ],
        }),
      });
    t.equal(
      (await post({ remediation: 'restart', container: target.name }, 'not-the-token-0123456789')).status,
      401,
    );
    t.equal(
      (await post({ remediation: 'restart', container: target.name })).status,
      200,
      'token from the file',
    );
    await waitForHealth(target.name, 'healthy', 30_000);
    const after = await restartCountOf(target.name);
    t.not(after.startedAt, before.startedAt, 'restarted through the socket, as uid 1000 in the socket group');
    const metrics = async () => (await fetch(`${url}/metrics`)).text();
    await waitFor(
      'the verified remediation',
      async () =>
        (sampleOf(await metrics(), 'autoheal_remediations_total', {
          action: 'restart',
          result: 'succeeded',
        }) ?? 0) >= 1,
      30_000,
    );
    t.pass('remediation verified: autoheal_remediations_total{action="restart",result="succeeded"}');

    // Its own container: refused, whatever the alert says.
    const selfStarted = (await c.inspect()).State.StartedAt;
    t.equal((await post({ remediation: 'restart', container: name })).status, 200);
    await waitFor(
      'the refusal to touch itself',
      async () => {
        const text = await metrics();
        return (
          (sampleOf(text, 'autoheal_decisions_total', { reason: 'self' }) ?? 0) +
            (sampleOf(text, 'autoheal_decisions_total', { reason: 'not_in_scope' }) ?? 0) >=
          1
        );
      },
      10_000,
    );
    await sleep(500);
    t.equal((await c.inspect()).State.StartedAt, selfStarted, 'its own container was not restarted');

    // node is PID 1 and shuts down on SIGTERM by itself: a stop is clean. Shown by what the engine did,
    // not by how long it took: Docker sends SIGKILL only when the stop timeout (20 s) runs out, and a
    // process it kills exits 137.
    const stopStarted = Date.now();
    await c.stop({ t: 20 });
    const stopSeconds = (Date.now() - stopStarted) / 1000;
    const state = (await c.inspect()).State;
    t.equal(state.ExitCode, 0, 'exit code 0 on SIGTERM');
    const signals = (await containerEvents(c.id, stopStarted))
      .filter((e) => e.Action === 'kill')
      .map((e) => e.Actor?.Attributes?.signal);
    t.same(signals, ['15'], 'the engine sent SIGTERM only, never SIGKILL');
    t.comment(`container stop (SIGTERM → exit) ${stopSeconds.toFixed(2)} s`);
  });
});
