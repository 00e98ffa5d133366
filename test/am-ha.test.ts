// Beyond one host, the Alertmanager side. (1) The fleet routing file, prometheus/alertmanager-fleet.yml:
// amtool accepts it and sends each host's alerts to that host's instance, by the same labels the
// service itself reads (alertHost). (2) An Alertmanager HA pair, for real: two Alertmanager 0.25
// processes clustered by gossip on loopback, fed by one Prometheus whose rule fires for one broken
// container, both posting to one service: both deliver, the service keeps one, one restart, one
// incident. An alert for another host being refused (skip other_host, 2xx) is covered in
// test/webhook.test.ts ("unlabelled, unknown, other-host and action-less alerts") and
// test/unit/host.test.ts.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { alertHost } from '../src/core/host.js';
import {
  breakContainer,
  createTestContainer,
  followRestarts,
  uniqueName,
  waitFor,
  waitForHealth,
} from './fixtures/docker.js';
import { testAlertmanagerConfig } from './fixtures/prom-configs.js';
import {
  ALERTMANAGER_BIN,
  amAlerts,
  freePort,
  type Proc,
  promAlerts,
  promQuery,
  REPO,
  sampleOf,
  startPrometheus,
  startProcess,
  startService,
  tempDir,
} from './fixtures/prom-stack.js';
import { webhookProxy } from './fixtures/webhook-proxy.js';

const run = promisify(execFile);
const FLEET_YML = join(REPO, 'prometheus', 'alertmanager-fleet.yml');
type Teardown = { teardown(fn: () => unknown): void };

t.test('alertmanager-fleet.yml: amtool accepts it and routes each host to its own instance', async (t) => {
  const { stdout } = await run('amtool', ['check-config', FLEET_YML]);
  t.match(stdout, /SUCCESS/);
  const route = async (labels: Record<string, string>) => {
    const args = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
    const res = await run('amtool', ['config', 'routes', 'test', `--config.file=${FLEET_YML}`, ...args]);
    return res.stdout.trim();
  };
  const fleet = new Set(['node-a', 'node-b']);
  const cases: Array<Record<string, string>> = [
    { host: 'node-a' },
    { host: 'node-b' },
    { nodename: 'node-a' },
    { nodename: 'node-b', instance: 'node-a:9100' },
    { node: 'node-b' },
    { instance: 'node-a:9095' },
    { instance: 'node-b:8080' },
    { instance: 'node-b' },
    { host: 'node-a', nodename: 'node-b', instance: 'node-b:9100' },
    // Naming no host of the fleet: people decide.
    { host: 'node-c', nodename: 'node-a' },
    { instance: 'localhost:9100' },
    {},
  ];
  for (const labels of cases) {
    const host = alertHost(labels);
    const want = host !== undefined && fleet.has(host) ? `autoheal-${host}` : 'humans';
    const alert = { alertname: 'ContainerUnhealthy', remediation: 'restart', container: 'web', ...labels };
    t.equal(await route(alert), want, `${JSON.stringify(labels)} → ${want} (the service reads ${host})`);
  }
  t.equal(await route({ alertname: 'AutohealHeartbeat' }), 'deadmansswitch');
  t.equal(await route({ alertname: 'Other', host: 'node-a' }), 'humans', 'no remediation label: humans');
});

interface ClusteredAm extends Proc {
  readonly url: string;
  readonly name: string;
}

/**
 * One member of a gossip cluster on loopback (prom-stack's startAlertmanager turns clustering off).
 * peer-timeout 0 and slow gossip make each member send as soon as its group is due, before it can
 * hear of the other's notification: the duplicate delivery Alertmanager's HA allows (it promises at
 * least once; a member also sends whenever its peer's notification log reaches it later than the
 * peer timeout). The settle wait is cut short so notifications start within seconds.
 */
function startClusterMember(
  t: Teardown,
  o: { name: string; config: string; port: number; clusterPort: number; peerPort: number },
): ClusteredAm {
  const dir = tempDir(t, `am-${o.name}`);
  const configFile = join(dir, 'alertmanager.yml');
  writeFileSync(configFile, o.config);
  const url = `http://127.0.0.1:${o.port}`;
  const p = startProcess(
    t,
    'alertmanager',
    ALERTMANAGER_BIN,
    [
      `--config.file=${configFile}`,
      `--storage.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${o.port}`,
      `--web.external-url=${url}`,
      `--cluster.listen-address=127.0.0.1:${o.clusterPort}`,
      `--cluster.advertise-address=127.0.0.1:${o.clusterPort}`,
      `--cluster.peer=127.0.0.1:${o.peerPort}`,
      '--cluster.peer-timeout=0s',
      '--cluster.gossip-interval=5s',
      '--cluster.pushpull-interval=10m',
      '--cluster.settle-timeout=3s',
      '--cluster.reconnect-interval=1s',
      '--log.level=info',
    ],
    { dir },
  );
  return { ...p, url, name: o.name };
}

interface AmStatus {
  cluster: { status: string; peers: Array<{ name: string; address: string }> };
}

/** Both members up, each seeing the other, the settle wait over. */
async function waitForCluster(ams: ClusteredAm[]): Promise<void> {
  for (const am of ams) {
    await waitFor(
      `${am.name} in a cluster of ${ams.length}`,
      async () => {
        if (am.child.exitCode !== null) throw new Error(`exited with ${am.child.exitCode}\n${am.tail()}`);
        const res = await fetch(`${am.url}/api/v2/status`, { signal: AbortSignal.timeout(2000) });
        if (!res.ok) return false;
        const s = (await res.json()) as AmStatus;
        return s.cluster.status === 'ready' && s.cluster.peers.length === ams.length;
      },
      60_000,
      200,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n--- ${am.name} ---\n${am.tail()}`);
    });
  }
}

/** What each Alertmanager posted (its externalURL names it), and what the service answered. */
interface Payload {
  externalURL: string;
  alerts: Array<{ status: string; labels: Record<string, string> }>;
}
type Answer = { accepted?: number; duplicates?: number };

t.test('an Alertmanager HA pair: both deliver the alert, one restart, one incident', async (t) => {
  const dir = tempDir(t, 'am-ha');
  const project = uniqueName('amha');
  const tokenFile = join(dir, 'webhook_token');
  const adminToken = 'am-ha-test-admin-token-0123456789';
  writeFileSync(tokenFile, 'am-ha-test-webhook-token-0123456789abcdef\n');
  const svc = await startService(t, {
    dir,
    env: {
      WEBHOOK_TOKEN_FILE: tokenFile,
      ADMIN_TOKEN: adminToken,
      // A project of its own, so that other tests' services and this one leave each other alone.
      WATCH_SCOPE: 'project',
      COMPOSE_PROJECT: project,
      // Only the alert heals: the watcher publishes autoheal_container_* and does nothing else.
      WATCHER_HEAL: 'false',
      WATCHDOG_INTERVAL: '1',
      // Short: were the second delivery not recognised as a duplicate, a second restart would follow.
      RESTART_COOLDOWN: '1',
      VERIFY_TIMEOUT: '30',
      VERIFY_GRACE: '1',
    },
  });
  const proxy = await webhookProxy<Payload, Answer>(t, svc.url);
  // The shipped routing (prometheus/alertmanager.yml), the same for both members.
  const amConfig = testAlertmanagerConfig({
    serviceUrl: proxy.url,
    tokenFile,
    groupWait: '1s',
    groupInterval: '1s',
  });
  const ports = [await freePort(), await freePort()];
  const gossip = [await freePort(), await freePort()];
  const promPort = await freePort();
  const ams = [0, 1].map((i) =>
    startClusterMember(t, {
      name: `am${i + 1}`,
      config: amConfig,
      port: ports[i] as number,
      clusterPort: gossip[i] as number,
      peerPort: gossip[1 - i] as number,
    }),
  );
  await waitForCluster(ams);
  t.pass('two Alertmanagers clustered on loopback, each listing both peers');

  const c = await createTestContainer(t, {
    labels: { 'com.docker.compose.project': project, 'com.docker.compose.service': 'web' },
  });
  await waitForHealth(c.name, 'healthy');
  const sel = `container="${c.name}"`;
  const rulesFile = join(dir, 'rules.yml');
  writeFileSync(
    rulesFile,
    JSON.stringify({
      groups: [
        {
          name: 'am-ha',
          rules: [
            {
              alert: 'HaContainerUnhealthy',
              expr: `autoheal_container_healthy{${sel}} == 0 and autoheal_container_up{${sel}} == 1`,
              for: '2s',
              labels: { severity: 'warning', remediation: 'restart' },
              annotations: { summary: 'Container {{ $labels.container }} is unhealthy' },
            },
          ],
        },
      ],
    }),
  );
  const prom = await startPrometheus(t, {
    port: promPort,
    config: JSON.stringify({
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      // Every Prometheus sends to every member of the pair (Alertmanager does not share alerts).
      alerting: { alertmanagers: [{ static_configs: [{ targets: ams.map((a) => a.url.slice(7)) }] }] },
      rule_files: [rulesFile],
      scrape_configs: [{ job_name: 'autoheal', static_configs: [{ targets: [`127.0.0.1:${svc.port}`] }] }],
    }),
  });
  await waitFor(
    'Prometheus to see the container healthy',
    async () => (await promQuery(prom, `autoheal_container_healthy{${sel}} == 1`)).length > 0,
    60_000,
    200,
  );
  await waitFor(
    'Prometheus to discover both Alertmanagers',
    async () => {
      const res = await fetch(`${prom.url}/api/v1/alertmanagers`);
      const body = (await res.json()) as { data: { activeAlertmanagers: unknown[] } };
      return body.data.activeAlertmanagers.length === 2;
    },
    30_000,
    200,
  );

  const starts = await followRestarts(t, c.name);
  await breakContainer(c.name);
  await waitForHealth(c.name, 'unhealthy');
  await waitFor(
    'HaContainerUnhealthy firing',
    async () =>
      (await promAlerts(prom)).some(
        (a) =>
          a.labels.alertname === 'HaContainerUnhealthy' &&
          a.labels.container === c.name &&
          a.state === 'firing',
      ),
    90_000,
    100,
  );
  const tFiring = Date.now();

  const held = await Promise.all(
    ams.map((am) =>
      waitFor(
        `the alert in ${am.name}`,
        async () =>
          (await amAlerts(am, ['alertname="HaContainerUnhealthy"', `container="${c.name}"`])).find(
            (a) => a.status.state === 'active',
          ),
        30_000,
        100,
      ),
    ),
  );
  t.same(
    held.map((a) => a.receivers.map((r) => r.name)),
    [['autoheal'], ['autoheal']],
    'each Alertmanager holds the alert, routed to the service',
  );
  t.equal(held[0]?.fingerprint, held[1]?.fingerprint, 'with the same fingerprint');
  t.equal(held[0]?.startsAt, held[1]?.startsAt, 'and the same start time');

  const firingFrom = (am: ClusteredAm) =>
    proxy.deliveries.filter(
      (d) =>
        d.payload.externalURL === am.url &&
        d.payload.alerts.some((a) => a.status === 'firing' && a.labels.container === c.name),
    );
  await waitFor(
    'a firing delivery from each Alertmanager',
    async () => ams.every((am) => firingFrom(am).length > 0),
    30_000,
    50,
  ).catch((err: Error) => {
    const seen = proxy.deliveries.map(
      (d) => `${d.payload.externalURL} ${d.payload.alerts.map((a) => a.status)}`,
    );
    throw new Error(
      `${err.message}; deliveries: ${JSON.stringify(seen)}\n${ams.map((a) => a.tail(10)).join('\n')}`,
    );
  });
  t.pass('both Alertmanagers posted the firing alert');
  const firing = ams.flatMap((am) => firingFrom(am));
  t.ok(
    firing.every((d) => d.status === 200),
    'the service accepted every delivery',
  );
  t.equal(
    firing.reduce((n, d) => n + (d.answer.accepted ?? 0), 0),
    1,
    'the service took the alert once',
  );
  t.equal(
    firing.reduce((n, d) => n + (d.answer.duplicates ?? 0), 0),
    firing.length - 1,
    'and answered every other delivery as a duplicate',
  );
  for (const am of ams) {
    const text = await (await fetch(`${am.url}/metrics`)).text();
    t.ok(
      (sampleOf(text, 'alertmanager_notifications_total', { integration: 'webhook' }) ?? 0) >= 1,
      `${am.name} counts its own webhook notification`,
    );
  }

  const mine = (e: Record<string, unknown>) => e.container === c.name;
  const action = await waitFor(
    'the restart in the audit log',
    async () => svc.audit().find((e) => mine(e) && e.event === 'action'),
    30_000,
    50,
  );
  const tAction = Date.parse(String(action.time));
  t.equal(action.source, 'alertmanager', 'the restart came from the alert');
  const remediation = await waitFor(
    'the verified result',
    async () => svc.audit().find((e) => mine(e) && e.event === 'remediation'),
    45_000,
    100,
  );
  t.equal(remediation.result, 'succeeded', `verified: ${remediation.detail}`);
  await waitForHealth(c.name, 'healthy', 30_000);

  // Back to resolved: both members send that too, and it is one signal as well.
  await waitFor(
    'a resolved delivery from each Alertmanager',
    async () =>
      ams.every((am) =>
        proxy.deliveries.some(
          (d) =>
            d.payload.externalURL === am.url &&
            d.payload.alerts.some((a) => a.status === 'resolved' && a.labels.container === c.name),
        ),
      ),
    60_000,
    100,
  );
  await waitFor(
    'the resolved alert in the audit log',
    async () => svc.audit().some((e) => mine(e) && e.event === 'decision' && e.status === 'resolved'),
    10_000,
    50,
  );
  // The pair really is one cluster: a position each, and each has had the other's notification log
  // (or silence) updates by gossip, which is what keeps them from sending twice when gossip is quick.
  const amMetric = async (am: ClusteredAm, name: string, labels: Record<string, string> = {}) =>
    sampleOf(await (await fetch(`${am.url}/metrics`)).text(), name, labels);
  t.same(
    (await Promise.all(ams.map((am) => amMetric(am, 'alertmanager_peer_position')))).sort(),
    [0, 1],
    'peer positions 0 and 1',
  );
  for (const am of ams) {
    await waitFor(
      `gossip updates received by ${am.name}`,
      async () =>
        ((await amMetric(am, 'alertmanager_cluster_messages_received_total', { msg_type: 'update' })) ?? 0) >
        0,
      60_000,
      200,
    );
  }
  t.pass('each member received gossip updates from the other');

  const decisions = svc.audit().filter((e) => mine(e) && e.event === 'decision');
  const reasons = (status: string) =>
    decisions
      .filter((e) => e.status === status)
      .map((e) => String(e.reason))
      .sort();
  const firingReasons = reasons('firing');
  t.equal(firingReasons.filter((r) => r === 'ok').length, 1, 'one decision to act');
  t.same(
    firingReasons.filter((r) => r !== 'ok'),
    firingReasons.filter((r) => r === 'duplicate'),
    `every other firing delivery a duplicate (${firingReasons.join(', ')})`,
  );
  t.ok(firingReasons.includes('duplicate'), 'the second delivery was dropped as a duplicate');
  const dup = decisions.find((e) => e.reason === 'duplicate');
  t.match(String(dup?.detail), new RegExp(`^am:${held[0]?.fingerprint}:`), 'keyed by the fingerprint');
  t.equal(reasons('resolved').filter((r) => r !== 'duplicate').length, 1, 'the resolution taken once');

  t.equal(starts.count(), 1, 'the engine started the container exactly once');
  t.equal(svc.audit().filter((e) => mine(e) && e.event === 'action').length, 1, 'one action');
  const res = await fetch(`${svc.url}/api/v1/incidents`, {
    headers: { authorization: `Bearer ${adminToken}` },
  });
  const { incidents } = (await res.json()) as { incidents: Array<{ container: string; status: string }> };
  const ours = incidents.filter((i) => i.container === c.name);
  t.equal(ours.length, 1, `one incident (${ours.map((i) => i.status).join(', ')})`);

  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const firstDelivery = Math.min(...firing.map((d) => d.at));
  t.comment(
    `alert firing → first delivery ${s(firstDelivery - tFiring)} → restart ${s(tAction - tFiring)}; ` +
      `deliveries of the firing alert: ${firing.length}, ${firing.map((d) => `${d.payload.externalURL.slice(-5)} ${JSON.stringify(d.answer)}`).join('; ')}`,
  );
});
