import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  breakContainer,
  createTestContainer,
  docker,
  uniqueName,
  waitFor,
  waitForHealth,
} from './fixtures/docker.js';
import { testAlertmanagerConfig, testPrometheusConfig } from './fixtures/prom-configs.js';
import {
  amAlerts,
  freePort,
  promAlerts,
  promQuery,
  promQueryRange,
  promTargets,
  sampleOf,
  startAlertmanager,
  startPrometheus,
  startService,
  tempDir,
} from './fixtures/prom-stack.js';
import { webhookProxy } from './fixtures/webhook-proxy.js';

/** What Alertmanager posted, as far as this test reads it. */
interface Payload {
  status: string;
  receiver: string;
  alerts: Array<{ status: string; labels: Record<string, string>; fingerprint: string }>;
}

t.test('Prometheus → Alertmanager → AutoHeal-Nexus → Docker, and back to resolved', async (t) => {
  const dir = tempDir(t, 'chain');
  const token = 'chain-test-webhook-token-0123456789abcdef';
  const project = uniqueName('chain');
  const tokenFile = join(dir, 'webhook_token');
  writeFileSync(tokenFile, `${token}\n`);

  const svc = await startService(t, {
    dir,
    env: {
      WEBHOOK_TOKEN_FILE: tokenFile,
      ADMIN_TOKEN: 'chain-test-admin-token-0123456789',
      // A project of its own: services of other tests running on the same engine (scope `label`) leave
      // this container alone, and this one touches nothing of theirs.
      WATCH_SCOPE: 'project',
      COMPOSE_PROJECT: project,
      // The watcher only publishes autoheal_container_*: the alert is the only way to heal.
      WATCHER_HEAL: 'false',
      WATCHDOG_INTERVAL: '1',
      RESTART_COOLDOWN: '1',
      VERIFY_TIMEOUT: '30',
      VERIFY_GRACE: '1',
    },
  });
  const proxy = await webhookProxy<Payload>(t, svc.url);
  const am = await startAlertmanager(t, {
    config: testAlertmanagerConfig({
      serviceUrl: proxy.url,
      tokenFile,
      groupWait: '1s',
      groupInterval: '1s',
    }),
  });
  const promPort = await freePort();
  const prom = await startPrometheus(t, {
    port: promPort,
    config: testPrometheusConfig({
      targets: {
        autoheal: `127.0.0.1:${svc.port}`,
        alertmanager: `127.0.0.1:${am.port}`,
        prometheus: `127.0.0.1:${promPort}`,
      },
      // cAdvisor and node_exporter do not run here: their jobs scrape a port nobody listens on.
      unused: `127.0.0.1:${await freePort()}`,
      alertmanager: `127.0.0.1:${am.port}`,
      interval: '1s',
    }),
  });

  const c = await createTestContainer(t, {
    labels: { 'com.docker.compose.project': project, 'com.docker.compose.service': 'web' },
  });
  await waitForHealth(c.name, 'healthy');
  const sel = `{container="${c.name}"}`;
  try {
    await waitFor(
      'Prometheus to scrape the service and see the container healthy',
      async () =>
        (await promTargets(prom)).some((x) => x.labels.job === 'autoheal' && x.health === 'up') &&
        (await promQuery(prom, `autoheal_container_healthy${sel} == 1`)).length > 0,
      30_000,
      200,
    );
  } catch (err) {
    const names = await promQuery(
      prom,
      'count by (__name__) ({job="autoheal", __name__=~"autoheal_container_.*"})',
    );
    t.fail(
      `${(err as Error).message}; autoheal_container_* series scraped: ${JSON.stringify(names.map((s) => s.metric.__name__))}` +
        ` (the health watcher publishes them; is it started by src/server.ts?)\n--- service ---\n${svc.tail(15)}`,
    );
    return;
  }
  const startedBefore = (await docker.getContainer(c.name).inspect()).State.StartedAt;

  // The failure.
  const t0 = Date.now();
  await breakContainer(c.name);
  await waitForHealth(c.name, 'unhealthy');
  const tUnhealthy = Date.now();

  const ruleAlert = async () =>
    (await promAlerts(prom)).find(
      (a) => a.labels.alertname === 'ContainerUnhealthy' && a.labels.container === c.name,
    );
  await waitFor(
    'ContainerUnhealthy pending',
    async () => (await ruleAlert())?.state === 'pending',
    20_000,
    100,
  );
  const tPending = Date.now();
  const firing = await waitFor(
    'ContainerUnhealthy firing',
    async () => {
      const a = await ruleAlert();
      return a?.state === 'firing' ? a : undefined;
    },
    90_000,
    100,
  ).catch(async (err: Error) => {
    // What Prometheus saw, second by second, says which link broke.
    const seen: string[] = [];
    const now = Date.now() / 1000;
    for (const q of [
      `autoheal_container_healthy${sel}`,
      `autoheal_container_up${sel}`,
      'up{job="autoheal"}',
      `ALERTS${sel}`,
    ]) {
      for (const r of await promQueryRange(prom, q, { start: t0 / 1000 - 2, end: now, step: 1 })) {
        const points = (r.values ?? []).map(([ts, v]) => `${Math.round(ts - t0 / 1000)}:${v}`).join(' ');
        seen.push(`${q} ${r.metric.alertstate ?? ''}: ${points}`);
      }
    }
    throw new Error(`${err.message}\n${seen.join('\n')}\n--- service ---\n${svc.tail(20)}`);
  });
  const tFiring = Date.now();
  t.equal(firing.labels.remediation, 'restart', 'the rule asks for a restart');
  t.equal(firing.labels.severity, 'warning');
  t.same(
    [firing.labels.service, firing.labels.project],
    ['web', project],
    'the alert names the Compose service and project too',
  );
  t.ok(Date.parse(firing.activeAt) >= t0 - 1000, `active since the failure (${firing.activeAt})`);

  const inAm = await waitFor(
    'the alert in Alertmanager',
    async () =>
      (await amAlerts(am, ['alertname="ContainerUnhealthy"', `container="${c.name}"`])).find(
        (a) => a.status.state === 'active',
      ),
    20_000,
    100,
  );
  t.same(
    inAm.receivers.map((r) => r.name),
    ['autoheal'],
    'Alertmanager routes it to the service',
  );

  const firingDelivery = await waitFor(
    'Alertmanager to post the alert',
    async () =>
      proxy.deliveries.find((d) =>
        d.payload.alerts.some((a) => a.status === 'firing' && a.labels.container === c.name),
      ),
    20_000,
    50,
  );
  t.equal(firingDelivery.authorization, `Bearer ${token}`, 'posted with the Bearer token from the file');
  t.equal(firingDelivery.status, 200, 'the service accepted it');
  t.equal(firingDelivery.payload.receiver, 'autoheal');

  // The service acts on it: the audit log says so, and the container is back.
  const mine = (e: Record<string, unknown>) => e.container === c.name;
  const action = await waitFor(
    'the restart in the audit log',
    async () => svc.audit().find((e) => mine(e) && e.event === 'action'),
    20_000,
    50,
  );
  const tAction = Date.parse(String(action.time));
  t.equal(action.action, 'restart');
  t.equal(action.source, 'alertmanager', 'the restart came from the alert, not from the watcher');
  t.equal(action.alertname, 'ContainerUnhealthy');
  await waitForHealth(c.name, 'healthy', 30_000);
  const tHealthy = Date.now();
  t.not(
    (await docker.getContainer(c.name).inspect()).State.StartedAt,
    startedBefore,
    'the container was restarted',
  );
  const remediation = await waitFor(
    'the verified result in the audit log',
    async () => svc.audit().find((e) => mine(e) && e.event === 'remediation'),
    30_000,
    100,
  );
  t.equal(remediation.result, 'succeeded', `verified: ${remediation.detail}`);
  const decisions = svc.audit().filter((e) => mine(e) && e.event === 'decision' && e.status === 'firing');
  t.ok(
    decisions.some((e) => e.source === 'alertmanager' && e.reason === 'ok'),
    'decision ok for the alert',
  );
  t.notOk(
    svc.audit().some((e) => mine(e) && e.event === 'action' && e.source !== 'alertmanager'),
    'no other input acted on the container',
  );

  // And back: the rule stops firing, Alertmanager resolves the alert and tells the service.
  await waitFor('the rule to stop firing', async () => (await ruleAlert()) === undefined, 30_000, 100);
  const tRuleResolved = Date.now();
  await waitFor(
    'Alertmanager to resolve it',
    async () =>
      (await amAlerts(am, ['alertname="ContainerUnhealthy"', `container="${c.name}"`])).length === 0,
    30_000,
    100,
  );
  const resolvedDelivery = await waitFor(
    'the resolved notification',
    async () =>
      proxy.deliveries.find((d) =>
        d.payload.alerts.some((a) => a.status === 'resolved' && a.labels.container === c.name),
      ),
    30_000,
    50,
  );
  t.equal(resolvedDelivery.authorization, `Bearer ${token}`);
  t.equal(resolvedDelivery.status, 200);
  await waitFor(
    'the resolved alert in the audit log',
    async () => svc.audit().some((e) => mine(e) && e.event === 'decision' && e.status === 'resolved'),
    10_000,
    50,
  );
  t.pass('the service recorded the resolution');
  t.equal(
    proxy.deliveries.filter((d) => d.status !== 200).length,
    0,
    'every delivery accepted (none refused for its token)',
  );

  // Alertmanager's own account of its deliveries, and the service's.
  const amMetrics = await (await fetch(`${am.url}/metrics`)).text();
  t.ok(
    (sampleOf(amMetrics, 'alertmanager_notifications_total', { integration: 'webhook' }) ?? 0) >= 2,
    'Alertmanager counts its webhook notifications (firing and resolved)',
  );
  t.equal(
    sampleOf(amMetrics, 'alertmanager_notifications_failed_total', { integration: 'webhook' }),
    0,
    'and no failed one',
  );
  const accepted = (await svc.metric('autoheal_webhook_requests_total', { code: '200' })) ?? 0;
  t.ok(accepted >= 2, `the service counts them (${accepted} accepted)`);
  t.equal(await svc.metric('autoheal_webhook_requests_total', { code: '401' }), 0, 'none refused');

  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  t.comment(
    [
      `failure → container unhealthy ${s(tUnhealthy - t0)}`,
      `→ rule pending ${s(tPending - t0)}`,
      `→ rule firing ${s(tFiring - t0)} (for: 30s)`,
      `→ webhook received ${s(firingDelivery.at - t0)}`,
      `→ restart started ${s(tAction - t0)}`,
      `→ healthy again ${s(tHealthy - t0)}`,
      `→ rule seen resolved ${s(tRuleResolved - t0)}`,
      `→ resolved webhook ${s(resolvedDelivery.at - t0)}`,
    ].join(' '),
  );
  t.comment(`failure → restart: ${s(tAction - t0)}`);
});
