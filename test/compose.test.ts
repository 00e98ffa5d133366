// docker-compose.yml: docker-compose validates it, and the stack it describes hangs together: every
// part the issue names is there, the pieces point at each other (scrape targets, webhook URL, token
// file, rule and dashboard paths), the service is labelled so it never heals itself, it can reach the
// socket as a non-root user, and every service setting can come from .env.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { parse } from 'yaml';
import { EnvSchema } from '../src/config.js';
import { ALERTMANAGER_YML, loadYaml, PROMETHEUS_YML } from './fixtures/prom-configs.js';
import { REPO } from './fixtures/prom-stack.js';

const run = promisify(execFile);
const COMPOSE_FILE = join(REPO, 'docker-compose.yml');

interface Service {
  image?: string;
  build?: unknown;
  labels?: Record<string, string>;
  environment?: Record<string, string | null>;
  volumes?: Array<string | { type: string; source?: string; target: string; read_only?: boolean }>;
  ports?: Array<string | { published?: string | number; target: number; host_ip?: string }>;
  group_add?: Array<string | number>;
  user?: string;
  depends_on?: Record<string, { condition: string }> | string[];
  command?: string[] | string;
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const dir = mkdtempSync(join(tmpdir(), 'autoheal-compose-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** `docker-compose config` with exactly this .env (the repository's own .env never leaks in). */
async function composeConfig(envText: string, args: string[] = []) {
  const envFile = join(dir, `env-${Math.random().toString(16).slice(2)}`);
  writeFileSync(envFile, envText);
  // Variables from the test's own environment would win over the env file: pass none of them.
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  return run('docker-compose', ['--env-file', envFile, '-f', COMPOSE_FILE, 'config', ...args], {
    cwd: REPO,
    env,
  });
}

const mounts = (s: Service) =>
  (s.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return { source: v.source ?? '', target: v.target, ro: v.read_only === true };
    const [source = '', target = '', mode = ''] = v.split(':');
    return { source, target, ro: mode.split(',').includes('ro') };
  });

t.test('docker-compose config -q accepts the file', async (t) => {
  const { stdout, stderr } = await composeConfig('', ['-q']);
  t.equal(stdout, '');
  t.notMatch(stderr, /error|invalid/i, stderr);
});

t.test('the stack', async (t) => {
  const { stdout } = await composeConfig('');
  const c = parse(stdout) as Compose;
  const s = c.services;
  for (const name of ['autoheal', 'prometheus', 'alertmanager', 'grafana', 'cadvisor', 'node-exporter']) {
    t.ok(s[name], `has ${name}`);
  }
  const names = Object.keys(s);

  t.test('every container of the stack is out of the service reach', async (t) => {
    for (const name of names)
      t.equal(s[name]?.labels?.['autoheal.enable'], 'false', `${name}: autoheal.enable=false`);
  });

  t.test('third-party images are pinned', async (t) => {
    for (const name of names) {
      const svc = s[name] as Service;
      if (svc.build) continue;
      t.match(svc.image, /^[^:]+:v?\d+\.\d+\.\d+$/, `${name}: ${svc.image}`);
    }
  });

  t.test('named volumes keep the state', async (t) => {
    const declared = Object.keys(c.volumes ?? {});
    for (const [name, target] of [
      ['autoheal', '/data'],
      ['prometheus', '/prometheus'],
      ['alertmanager', '/alertmanager'],
      ['grafana', '/var/lib/grafana'],
    ] as const) {
      const m = mounts(s[name] as Service).find((x) => x.target === target);
      t.ok(m && declared.includes(m.source), `${name}: ${target} is a named volume (${m?.source})`);
    }
  });

  t.test('published ports listen on this host only by default', async (t) => {
    for (const name of names) {
      for (const p of s[name]?.ports ?? []) {
        const hostIp = typeof p === 'string' ? p.split(':')[0] : p.host_ip;
        t.equal(hostIp, '127.0.0.1', `${name}: ${JSON.stringify(p)}`);
      }
    }
  });

  t.test('the service: socket, group, tokens, and a listen address others can reach', async (t) => {
    const a = s.autoheal as Service;
    t.ok(a.build, 'built from this repository');
    t.equal(a.labels?.['autoheal.protect'], 'true');
    const m = mounts(a);
    t.ok(
      m.some((x) => x.source === '/var/run/docker.sock' && x.target === '/var/run/docker.sock'),
      'the Docker socket is mounted',
    );
    t.same(a.group_add?.map(String), ['999'], 'the socket group is added (DOCKER_GID, default 999)');
    const env = a.environment ?? {};
    t.equal(env.HOST, '0.0.0.0');
    t.equal(env.PORT, '9095');
    t.equal(env.DOCKER_HOST, 'unix:///var/run/docker.sock');
    t.equal(env.WATCH_SCOPE, '', 'unset settings are passed empty: the service default applies');
    t.notOk('WEBHOOK_TOKEN' in env, 'the token comes from the file, not the environment');
    t.notOk('SELF_CONTAINER_ID' in env, 'the service finds its own container id itself');
    const data = m.find((x) => x.target === '/data');
    t.ok(
      env.DATA_DIR?.startsWith('/data/') && env.LOG_FILE?.startsWith('/data/'),
      'state and audit log on the volume',
    );
    t.ok(data, 'a /data volume');
    t.same(a.depends_on, { secrets: { condition: 'service_completed_successfully' } });
  });

  t.test('every variable of the service is set by the stack or taken from .env', async (t) => {
    const env = (s.autoheal as Service).environment ?? {};
    // Tokens come as files written by the secrets service; the container id is detected.
    const handledElsewhere = new Set(['WEBHOOK_TOKEN', 'ADMIN_TOKEN', 'SELF_CONTAINER_ID']);
    for (const key of Object.keys(EnvSchema.properties)) {
      if (handledElsewhere.has(key)) continue;
      t.ok(key in env, `${key}`);
    }
    const secrets = s.secrets as Service;
    t.same(Object.keys(secrets.environment ?? {}).sort(), ['ADMIN_TOKEN', 'WEBHOOK_TOKEN']);
  });

  t.test('the service and Alertmanager read the same token file', async (t) => {
    const env = (s.autoheal as Service).environment ?? {};
    const am = loadYaml(ALERTMANAGER_YML) as {
      receivers: Array<{ name: string; webhook_configs?: Array<Record<string, unknown>> }>;
    };
    const hook = am.receivers.find((r) => r.name === 'autoheal')?.webhook_configs?.[0] ?? {};
    const credentialsFile = String(
      (hook.http_config as { authorization: { credentials_file: string } }).authorization.credentials_file,
    );
    const volumeAt = (svc: Service, file: string) => {
      const m = mounts(svc).find((x) => file.startsWith(`${x.target}/`));
      return m && { volume: m.source, rel: posix.relative(m.target, file), ro: m.ro };
    };
    const fromService = volumeAt(s.autoheal as Service, String(env.WEBHOOK_TOKEN_FILE));
    const fromAm = volumeAt(s.alertmanager as Service, credentialsFile);
    t.ok(fromService && fromAm, `${env.WEBHOOK_TOKEN_FILE} and ${credentialsFile} are on volumes`);
    t.same(fromService, fromAm, 'same volume, same file, read-only');
    t.equal(fromAm?.ro, true);
    const writer = volumeAt(s.secrets as Service, `/secrets/${fromService?.rel}`);
    t.equal(writer?.volume, fromService?.volume, 'the secrets service writes that volume');
    t.match(JSON.stringify(s.secrets?.command), new RegExp(String(fromService?.rel)), 'and that file');
    t.equal(new URL(String(hook.url)).host, 'autoheal:9095', 'Alertmanager posts to the service by name');
  });

  t.test('Prometheus reads the shipped configuration and rules, and its targets are services', async (t) => {
    const p = s.prometheus as Service;
    const m = mounts(p);
    t.ok(
      m.some(
        (x) =>
          x.source === join(REPO, 'prometheus/prometheus.yml') &&
          x.target === '/etc/prometheus/prometheus.yml',
      ),
    );
    const rulesMount = m.find((x) => x.source === join(REPO, 'alert-rules'));
    const cfg = loadYaml(PROMETHEUS_YML) as {
      rule_files: string[];
      scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>;
      alerting: { alertmanagers: Array<{ static_configs: Array<{ targets: string[] }> }> };
    };
    for (const f of cfg.rule_files) {
      const abs = posix.resolve('/etc/prometheus', f);
      t.ok(
        rulesMount && posix.dirname(abs) === rulesMount.target,
        `${f} resolves into the alert-rules mount`,
      );
    }
    const ports: Record<string, number> = {
      autoheal: 9095,
      cadvisor: 8080,
      'node-exporter': 9100,
      alertmanager: 9093,
    };
    for (const job of cfg.scrape_configs) {
      for (const target of job.static_configs.flatMap((sc) => sc.targets)) {
        const [host, port] = target.split(':');
        if (host === 'localhost') continue;
        t.ok(s[host as string], `${job.job_name}: ${host} is a service of the stack`);
        t.equal(Number(port), ports[host as string], `${job.job_name}: ${target}`);
      }
    }
    t.same(cfg.alerting.alertmanagers[0]?.static_configs[0]?.targets, ['alertmanager:9093']);
  });

  t.test('Grafana reads the provisioning and the dashboards where the provider looks', async (t) => {
    const g = s.grafana as Service;
    const m = mounts(g);
    t.ok(
      m.some(
        (x) => x.source === join(REPO, 'grafana/provisioning') && x.target === '/etc/grafana/provisioning',
      ),
    );
    const provider = loadYaml(join(REPO, 'grafana/provisioning/dashboards/autoheal.yml')) as {
      providers: Array<{ options: { path: string } }>;
    };
    const path = provider.providers[0]?.options.path;
    t.ok(
      m.some((x) => x.source === join(REPO, 'grafana/dashboards') && x.target === path),
      `dashboards at ${path}`,
    );
    const ds = loadYaml(join(REPO, 'grafana/provisioning/datasources/prometheus.yml')) as {
      datasources: Array<{ url: string }>;
    };
    t.equal(new URL(String(ds.datasources[0]?.url)).host, 'prometheus:9090');
  });
});

t.test('settings from .env reach the service', async (t) => {
  const { stdout } = await composeConfig(
    [
      'WATCH_SCOPE=all',
      'RESTART_COOLDOWN=5',
      'DOCKER_GID=106',
      'BIND_ADDRESS=0.0.0.0',
      'GRAFANA_PORT=3300',
      'TELEGRAM_CHAT_ID=-100123',
      'NODE_IMAGE=mirror.example.org/node:24-bookworm-slim',
    ].join('\n'),
  );
  const services = (parse(stdout) as Compose).services;
  const a = services.autoheal as Service;
  t.equal(a.environment?.WATCH_SCOPE, 'all');
  t.equal(a.environment?.RESTART_COOLDOWN, '5');
  t.equal(a.environment?.TELEGRAM_CHAT_ID, '-100123');
  t.same(a.group_add?.map(String), ['106']);
  t.notMatch(
    JSON.stringify(a.ports),
    /0\.0\.0\.0/,
    'BIND_ADDRESS opens the monitoring UIs, not the admin API',
  );
  t.match(JSON.stringify(services.grafana?.ports), /0\.0\.0\.0/);
  t.match(JSON.stringify(services.grafana?.ports), /3300/, 'GRAFANA_PORT from .env');
  t.match(
    JSON.stringify(a.build),
    /mirror\.example\.org\/node:24-bookworm-slim/,
    'NODE_IMAGE reaches the build',
  );
  const open = parse((await composeConfig('AUTOHEAL_BIND_ADDRESS=0.0.0.0')).stdout) as Compose;
  t.match(JSON.stringify((open.services.autoheal as Service).ports), /0\.0\.0\.0/, 'AUTOHEAL_BIND_ADDRESS');
  const plain = parse((await composeConfig('')).stdout) as Compose;
  t.match(
    JSON.stringify((plain.services.autoheal as Service).build),
    /node:24-bookworm-slim/,
    'Node 24 by default',
  );
});

t.test(
  '.env.example copied as it is works for compose: no wrong group, nothing the file says cannot work',
  async (t) => {
    const example = readFileSync(join(REPO, '.env.example'), 'utf8');
    t.notMatch(example, /^DOCKER_GID=/m, 'no hard-coded socket group');
    const { stdout } = await composeConfig(example);
    const a = (parse(stdout) as Compose).services.autoheal as Service;
    t.equal(String(a.environment?.CLEANUP_LOG_MAX_BYTES), '0', 'log truncation stays off in the container');
    t.equal(a.environment?.HOST, '0.0.0.0');
    t.equal(a.environment?.DATA_DIR, '/data/state');
  },
);
