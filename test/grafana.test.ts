// The Grafana side. Grafana itself is not available here, so the dashboard is checked in two ways:
// statically (unique panel ids, a grid inside 24 columns without overlaps, every target has an
// expression and names the provisioned data source), and by evaluating every panel expression, as
// Grafana would send it, against a real Prometheus scraping a running service that has just healed a
// container and answered webhooks: each must return data.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { createTestContainer, uniqueName, waitFor } from './fixtures/docker.js';
import { loadYaml, testPrometheusConfig } from './fixtures/prom-configs.js';
import {
  freePort,
  promQuery,
  promQueryRange,
  promTargets,
  REPO,
  startPrometheus,
  startService,
  tempDir,
} from './fixtures/prom-stack.js';

interface Target {
  refId: string;
  expr?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating?: { list: Array<{ name: string; datasource?: { uid?: string }; allValue?: string }> };
}

const DASHBOARD_DIR = join(REPO, 'grafana', 'dashboards');
const dashboards = readdirSync(DASHBOARD_DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => ({ file: f, d: JSON.parse(readFileSync(join(DASHBOARD_DIR, f), 'utf8')) as Dashboard }));
const datasources = loadYaml(join(REPO, 'grafana', 'provisioning', 'datasources', 'prometheus.yml')) as {
  datasources: Array<{ uid: string; type: string; url: string }>;
};
const DS_UID = datasources.datasources[0]?.uid ?? '';

const flatPanels = (ps: Panel[]): Panel[] => ps.flatMap((p) => [p, ...flatPanels(p.panels ?? [])]);

t.test('the provisioning', async (t) => {
  t.equal(datasources.datasources.length, 1);
  t.equal(datasources.datasources[0]?.type, 'prometheus');
  t.match(DS_UID, /^[a-zA-Z0-9_-]{1,40}$/, 'a fixed uid');
  const providers = loadYaml(join(REPO, 'grafana', 'provisioning', 'dashboards', 'autoheal.yml')) as {
    providers: Array<{ type: string; options: { path: string } }>;
  };
  t.equal(providers.providers[0]?.type, 'file');
  t.ok(dashboards.length >= 1, 'a dashboard');
});

t.test('the dashboard JSON', async (t) => {
  for (const { file, d } of dashboards) {
    t.ok(d.uid && d.title, `${file}: uid and title`);
    const panels = flatPanels(d.panels);
    const ids = panels.map((p) => p.id);
    t.equal(new Set(ids).size, ids.length, `${file}: unique panel ids`);
    for (const p of panels) {
      const g = p.gridPos;
      t.ok(
        Number.isInteger(g.x) && Number.isInteger(g.w) && g.x >= 0 && g.w > 0 && g.h > 0 && g.x + g.w <= 24,
        `${p.title}: inside 24 columns (${JSON.stringify(g)})`,
      );
      if (p.type === 'row') continue;
      t.equal(p.datasource?.uid, DS_UID, `${p.title}: panel data source`);
      t.ok((p.targets ?? []).length > 0, `${p.title}: has targets`);
      for (const target of p.targets ?? []) {
        t.ok((target.expr ?? '').trim().length > 0, `${p.title}/${target.refId}: expression`);
        t.equal(target.datasource?.uid, DS_UID, `${p.title}/${target.refId}: provisioned data source`);
      }
    }
    // Overlapping panels render on top of each other.
    const boxes = panels.filter((p) => p.type !== 'row').map((p) => ({ title: p.title, ...p.gridPos }));
    for (const [i, a] of boxes.entries()) {
      for (const b of boxes.slice(i + 1)) {
        const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        t.notOk(overlap, `${a.title} and ${b.title} do not overlap`);
      }
    }
    for (const v of d.templating?.list ?? []) {
      if (v.datasource) t.equal(v.datasource.uid, DS_UID, `variable ${v.name}: provisioned data source`);
    }
    const titles = panels.map((p) => p.title.toLowerCase()).join(' | ');
    for (const topic of [
      'remediations by action and result',
      'decisions by reason',
      'container health',
      'attempts',
      'given-up',
      'escalations',
      'notification failures',
      'webhook deliveries',
      'webhook latency',
    ]) {
      t.match(titles, topic, `a panel for ${topic}`);
    }
  }
});

/** Grafana's substitutions for a Prometheus scraping every second, looking at the last few minutes. */
const substitute = (expr: string) =>
  expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__interval', '1s')
    .replaceAll('$__range', '5m')
    .replaceAll('$instance', '.*');

t.test('every panel expression returns data from a real Prometheus scraping the service', async (t) => {
  const dir = tempDir(t, 'grafana');
  const tokenFile = join(dir, 'webhook_token');
  const token = 'grafana-test-webhook-token-0123456789';
  const project = uniqueName('grafana');
  writeFileSync(tokenFile, `${token}\n`);
  // A node exporter stand-in with a filling filesystem, for the forecast panel: the service forecasts
  // from this Prometheus (forecasts only: FORECAST_MAX_ACTIONS=0).
  const t0 = Date.now();
  const node = createServer((_req, res) => {
    const avail = 60e9 - ((Date.now() - t0) / 1000) * 1e8;
    res.end(
      `node_filesystem_size_bytes{mountpoint="/data",fstype="ext4"} 1e11\nnode_filesystem_avail_bytes{mountpoint="/data",fstype="ext4"} ${avail}\n`,
    );
  });
  await new Promise<void>((resolve) => node.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => node.close(() => resolve())));
  const promPort = await freePort();
  const svc = await startService(t, {
    dir,
    env: {
      WEBHOOK_TOKEN_FILE: tokenFile,
      ADMIN_TOKEN: 'grafana-test-admin-token-0123456789',
      // A project of its own, so that services of other tests on the same engine leave its container
      // alone. Heal only through the webhook below, so that the remediation panels see exactly one restart.
      WATCHER_HEAL: 'false',
      WATCH_SCOPE: 'project',
      COMPOSE_PROJECT: project,
      WATCHDOG_INTERVAL: '1',
      RESTART_COOLDOWN: '1',
      VERIFY_GRACE: '1',
      VERIFY_TIMEOUT: '30',
      PROMETHEUS_URL: `http://127.0.0.1:${promPort}`,
      FORECAST_INTERVAL: '1',
      FORECAST_WINDOW: '20',
      FORECAST_MIN_POINTS: '3',
      FORECAST_MAX_ACTIONS: '0',
    },
  });
  const prom = await startPrometheus(t, {
    port: promPort,
    config: testPrometheusConfig({
      targets: {
        autoheal: `127.0.0.1:${svc.port}`,
        prometheus: `127.0.0.1:${promPort}`,
        node: `127.0.0.1:${(node.address() as AddressInfo).port}`,
      },
      unused: `127.0.0.1:${await freePort()}`,
      alertmanager: `127.0.0.1:${await freePort()}`,
      interval: '1s',
    }),
  });
  const target = await createTestContainer(t, { labels: { 'com.docker.compose.project': project } });
  // A watched Compose service with a scale limit: its replicas are published (autoheal_replicas).
  await createTestContainer(t, {
    labels: {
      'com.docker.compose.project': project,
      'com.docker.compose.service': 'web',
      'autoheal.scale.max': '3',
    },
  });

  const post = (labels: Record<string, string>) =>
    fetch(`${svc.url}/webhooks/alertmanager`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({
        version: '4',
        status: 'firing',
        receiver: 'autoheal',
        alerts: [
          {
            status: 'firing',
            labels: { alertname: 'GrafanaTest', severity: 'warning', ...labels },
            annotations: { summary: 'grafana test' },
            startsAt: new Date().toISOString(),
            fingerprint: Math.random().toString(16).slice(2, 18),
          },
        ],
      }),
    });
  // Steady webhook traffic for the rate and latency panels: alerts the service records and skips.
  let traffic = true;
  const trafficDone = (async () => {
    while (traffic) {
      await post({ remediation: 'none', container: 'grafana-test-no-such-container' }).catch(() => undefined);
      await sleep(300);
    }
  })();
  t.teardown(async () => {
    traffic = false;
    await trafficDone;
  });

  await waitFor(
    'Prometheus to scrape the service',
    async () => (await promTargets(prom)).some((x) => x.labels.job === 'autoheal' && x.health === 'up'),
    30_000,
  );
  t.equal((await post({ remediation: 'restart', container: target.name })).status, 200);
  await waitFor(
    'the restart to be verified and scraped',
    async () =>
      (
        await promQuery(
          prom,
          `autoheal_remediations_total{action="restart",result="succeeded",job="autoheal"} >= 1`,
        )
      ).length > 0,
    60_000,
    250,
  );
  // A few more scrapes, so every rate() window holds the change.
  await sleep(3000);

  const end = Date.now() / 1000;
  for (const { d } of dashboards) {
    for (const p of flatPanels(d.panels)) {
      for (const target of p.targets ?? []) {
        const expr = substitute(target.expr ?? '');
        const result = await promQueryRange(prom, expr, { start: end - 60, end, step: 2 });
        const finite = result.some((s) => (s.values ?? []).some(([, v]) => Number.isFinite(Number(v))));
        t.ok(finite, `${p.title}/${target.refId}: ${result.length} series with data — ${expr}`);
      }
    }
  }
});
