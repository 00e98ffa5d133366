// docker-stack.yml: `docker stack config` reads it, it describes what the README promises (the service
// on managers only, the socket, the tokens as Swarm secrets, Prometheus and Alertmanager with the
// shipped configuration as Swarm configs, every service setting passed through), and it is deployed
// for real with `docker stack deploy` on a private single-node swarm (test/fixtures/swarm.ts), with
// the service image built from this repository's Dockerfile (test/fixtures/service-image.ts): the task
// runs, /readyz answers, and the tokens it uses are the Swarm secrets.
//
// What is deployed is a variant of the shipped file, made from `docker stack config`'s output (the
// shipped file with the test's variables), changed only where this machine cannot do what a real
// cluster does:
//   - networks: the test engine runs with --bridge=none and --iptables=false, where an overlay network
//     (and Swarm's ingress) has nothing to carry it; every service goes on the engine's "host" network
//     instead, and the service listens on 127.0.0.1 at a free port (HOST, PORT);
//   - Prometheus and Alertmanager get 0 replicas: their images are not on this machine and no registry
//     is reachable. Their configs, secret and volumes are still created by the deploy, and the swarm
//     accepts their specs;
//   - the health check runs every second instead of every 30 s (a task is "running" for Swarm only
//     once it is healthy).
// The socket and its group come through the shipped file's own DOCKER_SOCKET and DOCKER_GID.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { parse, stringify } from 'yaml';
import { EnvSchema } from '../src/config.js';
import { waitFor } from './fixtures/docker.js';
import { ALERTMANAGER_YML, loadYaml, PROMETHEUS_YML, RULES_DIR } from './fixtures/prom-configs.js';
import { REPO } from './fixtures/prom-stack.js';
import { freePort } from './fixtures/service.js';
import { buildServiceImage, SERVICE_IMAGE } from './fixtures/service-image.js';
import { startSwarm } from './fixtures/swarm.js';

const run = promisify(execFile);
const STACK_FILE = join(REPO, 'docker-stack.yml');
const STACK = 'autoheal';

interface Mount {
  type: string;
  source?: string;
  target: string;
  read_only?: boolean;
}
interface SecretRef {
  source: string;
  target?: string;
  uid?: string;
  gid?: string;
  mode?: number;
}
interface Service {
  image?: string;
  user?: string;
  read_only?: boolean;
  cap_drop?: string[];
  labels?: Record<string, string>;
  environment?: Record<string, string | null>;
  volumes?: Mount[];
  ports?: unknown[];
  secrets?: SecretRef[];
  configs?: Array<{ source: string; target?: string }>;
  networks?: Record<string, unknown> | string[];
  healthcheck?: {
    test?: string[];
    interval?: string;
    timeout?: string;
    start_period?: string;
    retries?: number;
  };
  deploy?: {
    mode?: string;
    replicas?: number;
    labels?: Record<string, string>;
    placement?: { constraints?: string[] };
  };
}
interface Stack {
  services: Record<string, Service>;
  networks?: Record<string, { external?: boolean; name?: string; driver?: string }>;
  volumes?: Record<string, unknown>;
  secrets?: Record<string, { external?: boolean; name?: string }>;
  configs?: Record<string, { file?: string; name?: string }>;
}

const dir = mkdtempSync(join(tmpdir(), 'autoheal-stack-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** `docker stack config` of the shipped file with exactly these variables (none from the test's own). */
async function stackConfig(vars: Record<string, string> = {}): Promise<Stack> {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...vars };
  const { stdout } = await run('docker', ['stack', 'config', '-c', STACK_FILE], { cwd: REPO, env });
  return parse(stdout) as Stack;
}

t.test('the stack file', async (t) => {
  const c = await stackConfig();
  const s = c.services;
  t.same(Object.keys(s).sort(), ['alertmanager', 'autoheal', 'prometheus']);
  const a = s.autoheal as Service;

  t.test('the service: on managers, with the socket, its tokens as Swarm secrets', async (t) => {
    t.same(a.deploy?.placement?.constraints, ['node.role == manager']);
    t.equal(a.deploy?.replicas, 1, 'one instance');
    t.equal(a.image, 'autoheal-nexus:latest');
    t.ok(
      a.volumes?.some(
        (v) =>
          v.type === 'bind' && v.source === '/var/run/docker.sock' && v.target === '/var/run/docker.sock',
      ),
      'the Docker socket is mounted',
    );
    t.equal(a.user, '1000:999', 'uid 1000 with the socket group (DOCKER_GID, default 999)');
    t.ok(
      a.volumes?.some(
        (v) => v.type === 'volume' && v.target === '/data' && v.source && c.volumes?.[v.source] !== undefined,
      ),
    );
    t.equal(a.read_only, true);
    t.same(a.cap_drop, ['ALL']);
    const env = a.environment ?? {};
    const byTarget = new Map((a.secrets ?? []).map((x) => [`/run/secrets/${x.target ?? x.source}`, x]));
    for (const [key, secret] of [
      ['WEBHOOK_TOKEN_FILE', 'webhook_token'],
      ['ADMIN_TOKEN_FILE', 'admin_token'],
    ] as const) {
      const ref = byTarget.get(String(env[key]));
      t.equal(ref?.source, secret, `${key} is the secret ${secret}`);
      t.same([ref?.uid, ref?.mode], ['1000', 0o400], `${secret}: readable by the service only`);
      t.equal(c.secrets?.[secret]?.external, true, `${secret} is created by the operator`);
    }
    t.notOk('WEBHOOK_TOKEN' in env || 'ADMIN_TOKEN' in env, 'no token in the environment');
    t.match(JSON.stringify(a.healthcheck?.test), /\/healthz/, 'health check on /healthz');
  });

  t.test('every variable of the service is set by the stack or taken from the deploying shell', async (t) => {
    const env = a.environment ?? {};
    const handledElsewhere = new Set(['WEBHOOK_TOKEN', 'ADMIN_TOKEN', 'SELF_CONTAINER_ID']);
    for (const key of Object.keys(EnvSchema.properties)) {
      if (handledElsewhere.has(key)) continue;
      t.ok(key in env, key);
    }
    t.equal(env.WATCH_SCOPE, '', 'unset settings are passed empty: the service default applies');
    const set = await stackConfig({
      WATCH_SCOPE: 'all',
      DOCKER_GID: '106',
      AUTOHEAL_IMAGE: 'r.example/ah:1',
    });
    t.equal(set.services.autoheal?.environment?.WATCH_SCOPE, 'all');
    t.equal(set.services.autoheal?.user, '1000:106');
    t.equal(set.services.autoheal?.image, 'r.example/ah:1');
  });

  t.test(
    'every service is out of the service reach; third-party images pinned; nothing published',
    async (t) => {
      for (const [name, svc] of Object.entries(s)) {
        t.equal(svc.labels?.['autoheal.enable'], 'false', `${name}: containers autoheal.enable=false`);
        t.equal(svc.deploy?.labels?.['autoheal.enable'], 'false', `${name}: service autoheal.enable=false`);
        if (name !== 'autoheal') t.match(svc.image, /^[^:]+:v?\d+\.\d+\.\d+$/, `${name}: ${svc.image}`);
        t.notOk(svc.ports, `${name}: no published port`);
      }
    },
  );

  t.test('Prometheus gets the shipped configuration and every rule file', async (t) => {
    const p = s.prometheus as Service;
    const configAt = (target: string) => {
      const ref = p.configs?.find((x) => x.target === target);
      return ref && c.configs?.[ref.source]?.file;
    };
    t.equal(configAt('/etc/prometheus/prometheus.yml'), PROMETHEUS_YML);
    const cfg = loadYaml(PROMETHEUS_YML) as { rule_files: string[] };
    t.same(cfg.rule_files, ['rules/*.yml'], 'the rules are read from rules/ beside the configuration');
    for (const f of readdirSync(RULES_DIR).filter((x) => x.endsWith('.yml'))) {
      t.equal(configAt(`/etc/prometheus/rules/${f}`), join(RULES_DIR, f), `alert-rules/${f}`);
    }
    t.ok(p.volumes?.some((v) => v.type === 'volume' && v.target === '/prometheus'));
  });

  t.test('Alertmanager reads the webhook token from the same secret as the service', async (t) => {
    const am = s.alertmanager as Service;
    const ref = am.configs?.find((x) => x.target === '/etc/alertmanager/alertmanager.yml');
    t.equal(ref && c.configs?.[ref.source]?.file, ALERTMANAGER_YML);
    const cfg = loadYaml(ALERTMANAGER_YML) as {
      receivers: Array<{ name: string; webhook_configs?: Array<Record<string, unknown>> }>;
    };
    const hook = cfg.receivers.find((r) => r.name === 'autoheal')?.webhook_configs?.[0] ?? {};
    const file = (hook.http_config as { authorization: { credentials_file: string } }).authorization
      .credentials_file;
    const secret = am.secrets?.find((x) => x.target === file);
    t.equal(secret?.source, 'webhook_token', `${file} is the webhook_token secret`);
    t.equal(secret?.uid, '65534', 'readable by the image user (nobody)');
    t.equal(new URL(String(hook.url)).host, 'autoheal:9095', 'Alertmanager posts to the service by name');
    for (const name of Object.keys(s))
      t.same(Object.keys(s[name]?.networks ?? {}), ['autoheal'], `${name} on the stack network`);
    t.equal(c.networks?.autoheal?.driver, 'overlay');
  });
});

/** `docker save` from the shared engine into `docker load` on the swarm's engine. */
async function loadInto(host: string, image: string): Promise<void> {
  const save = spawn('docker', ['save', image], { stdio: ['ignore', 'pipe', 'inherit'] });
  const load = spawn('docker', ['load', '-q'], {
    stdio: ['pipe', 'ignore', 'inherit'],
    env: { ...process.env, DOCKER_HOST: host },
  });
  save.stdout.pipe(load.stdin);
  const exit = (p: ReturnType<typeof spawn>, what: string) =>
    new Promise<void>((resolve, reject) =>
      p.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${what} exited ${code}`)))),
    );
  await Promise.all([exit(save, 'docker save'), exit(load, 'docker load')]);
}

t.test('docker stack deploy on a swarm answers /readyz', async (t) => {
  const started = Date.now();
  const lap = (from: number) => `${((Date.now() - from) / 1000).toFixed(1)} s`;
  const [swarm] = await Promise.all([startSwarm(t), buildServiceImage()]);
  t.comment(`swarm started and image built: ${lap(started)}`);
  let at = Date.now();
  await loadInto(swarm.host, SERVICE_IMAGE);
  t.comment(`image loaded into the swarm's engine: ${lap(at)}`);

  // The tokens, created as the README says (docker secret create <name> <file>).
  const token = (seed: string) => `${seed}-${Math.random().toString(16).slice(2)}${Date.now().toString(16)}`;
  const webhookToken = token('webhook');
  const adminToken = token('admin');
  for (const [name, value] of [
    ['autoheal_webhook_token', webhookToken],
    ['autoheal_admin_token', adminToken],
  ] as const) {
    const file = join(dir, name);
    writeFileSync(file, `${value}\n`, { mode: 0o600 });
    await swarm.cli(['secret', 'create', name, file]);
  }

  // The variant (see the top of this file).
  const socket = new URL(swarm.host).pathname;
  const c = await stackConfig({
    AUTOHEAL_IMAGE: SERVICE_IMAGE,
    DOCKER_SOCKET: socket,
    DOCKER_GID: String(statSync(socket).gid),
  });
  const port = await freePort();
  for (const svc of Object.values(c.services)) svc.networks = { hostnet: null };
  c.networks = { hostnet: { external: true, name: 'host' } };
  const a = c.services.autoheal as Service;
  Object.assign(a.environment ?? {}, { HOST: '127.0.0.1', PORT: String(port) });
  a.healthcheck = { ...a.healthcheck, interval: '1s', start_period: '0s' };
  for (const name of ['prometheus', 'alertmanager']) {
    const svc = c.services[name] as Service;
    svc.deploy = { ...svc.deploy, replicas: 0 };
  }
  const variant = join(dir, 'docker-stack.test.yml');
  writeFileSync(variant, stringify(c));

  at = Date.now();
  t.teardown(() => swarm.cli(['stack', 'rm', STACK]).catch(() => undefined));
  // The CLI itself, for its stderr: it names every option of the file that Swarm would ignore.
  const deployed = await run(
    'docker',
    ['stack', 'deploy', '--resolve-image', 'never', '-c', variant, STACK],
    {
      env: { ...process.env, DOCKER_HOST: swarm.host },
    },
  );
  t.notMatch(
    deployed.stderr,
    /unsupported|ignor/i,
    `no option of the file is ignored by Swarm: ${deployed.stderr}`,
  );
  const service = `${STACK}_autoheal`;
  const url = `http://127.0.0.1:${port}`;
  const history = async () =>
    (await swarm.tasks(service))
      .map((x) => `${x.Status?.State} (desired ${x.DesiredState}) ${x.Status?.Err ?? ''}`)
      .join('\n');
  try {
    await waitFor(
      'the autoheal task running',
      async () => (await swarm.tasks(service)).some((x) => x.Status?.State === 'running'),
      90_000,
      250,
    );
  } catch (err) {
    t.fail(`${(err as Error).message}\n${await history()}`);
    return;
  }
  t.comment(`stack deployed, task running (healthy): ${lap(at)}`);

  const ready = await fetch(`${url}/readyz`);
  t.equal(ready.status, 200, `/readyz: ${await ready.text()}`);

  t.test('the deployed service: managers only, the secrets, uid 1000 in the socket group', async (t) => {
    const spec = JSON.parse(await swarm.cli(['service', 'inspect', service]))[0].Spec;
    const task = spec.TaskTemplate;
    t.same(task.Placement?.Constraints, ['node.role == manager']);
    t.same(
      (task.ContainerSpec.Secrets as Array<{ SecretName: string; File: { Name: string } }>)
        .map((x) => `${x.SecretName} ${x.File.Name}`)
        .sort(),
      ['autoheal_admin_token admin_token', 'autoheal_webhook_token webhook_token'],
    );
    t.equal(task.ContainerSpec.User, `1000:${statSync(socket).gid}`);
    t.equal(task.ContainerSpec.ReadOnly, true, 'read-only root');
    t.same(task.ContainerSpec.CapabilityDrop, ['ALL']);
    t.ok(
      (task.ContainerSpec.Mounts as Array<{ Type: string; Source?: string; Target: string }>).some(
        (m) => m.Type === 'bind' && m.Source === socket && m.Target === '/var/run/docker.sock',
      ),
      "the swarm engine's socket at /var/run/docker.sock",
    );
    t.equal(spec.Labels?.['autoheal.enable'], 'false');
    const am = JSON.parse(await swarm.cli(['service', 'inspect', `${STACK}_alertmanager`]))[0].Spec;
    t.same(
      (am.TaskTemplate.ContainerSpec.Secrets as Array<{ SecretName: string; File: { Name: string } }>).map(
        (x) => `${x.SecretName} ${x.File.Name}`,
      ),
      ['autoheal_webhook_token /etc/alertmanager/secrets/webhook_token'],
      'Alertmanager: the same secret at its credentials_file (service created, not run here)',
    );
    const configs = (await swarm.cli(['config', 'ls', '--format', '{{.Name}}'])).split('\n').filter(Boolean);
    t.ok(configs.includes('autoheal_prometheus_yml_1') && configs.includes('autoheal_alertmanager_yml_1'));
  });

  t.test('the tokens are the Swarm secrets', async (t) => {
    const containers = () =>
      fetch(`${url}/api/v1/containers`, { headers: { authorization: `Bearer ${adminToken}` } });
    t.equal((await containers()).status, 200, 'admin API with the admin secret');
    t.equal((await fetch(`${url}/api/v1/containers`)).status, 401, 'without a token');
    const hook = (auth: string) =>
      fetch(`${url}/webhooks/alertmanager`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${auth}` },
        body: JSON.stringify({ version: '4', status: 'firing', receiver: 'autoheal', alerts: [] }),
      });
    t.equal((await hook(adminToken)).status, 401, 'the webhook does not take the admin token');
    t.equal((await hook(webhookToken)).status, 200, 'the webhook takes the webhook secret');
  });

  t.test('docker stack rm removes it', async (t) => {
    at = Date.now();
    await swarm.cli(['stack', 'rm', STACK]);
    await waitFor(
      'the task containers gone',
      async () =>
        (await swarm.docker.listContainers({ all: true })).filter(
          (x) => x.Labels?.['com.docker.stack.namespace'] === STACK,
        ).length === 0,
      60_000,
      250,
    );
    t.same((await swarm.cli(['service', 'ls', '-q'])).split('\n').filter(Boolean), [], 'no service left');
    t.comment(`stack removed: ${lap(at)}`);
  });
});
