// Alertmanager silences while the service heals, against a real Alertmanager 0.25: a remediation
// started from an alert silences exactly that alert (its labels as matchers, the service as creator,
// why in the comment) for as long as it runs, and the silence is expired once the restart is verified,
// or at once when the container is given up. An Alertmanager that cannot be reached never blocks a
// remediation, and credentials in ALERTMANAGER_URL never reach the log.
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import { systemClock } from '../src/core/clock.js';
import { createMetrics } from '../src/metrics.js';
import { AlertmanagerSilencer } from '../src/notifiers/silences.js';
import { Store } from '../src/state/store.js';
import { ADMIN_TOKEN, testApp } from './fixtures/app.js';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
import {
  breakContainer as breakIt,
  createTestContainer,
  docker,
  fixContainer,
  followEngineEvents,
  waitFor,
  waitForHealth,
} from './fixtures/docker.js';
import { freePort, startAlertmanager } from './fixtures/prom-stack.js';

const AM_CONFIG = 'route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n';

interface Silence {
  id: string;
  status: { state: string };
  matchers: Array<{ name: string; value: string; isRegex: boolean; isEqual?: boolean }>;
  startsAt: string;
  endsAt: string;
  createdBy: string;
  comment: string;
}

const silencesOf = async (url: string): Promise<Silence[]> =>
  (await (await fetch(`${url}/api/v2/silences`)).json()) as Silence[];

const labelsFor = (container: string) => ({
  alertname: 'ContainerDown',
  container,
  remediation: 'restart',
  severity: 'warning',
});

t.test('a verified restart: its alert silenced while it ran, expired once it was verified', async (t) => {
  const am = await startAlertmanager(t, { config: AM_CONFIG });
  const h = await testApp(t, { env: { ALERTMANAGER_URL: am.url } });
  const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' } });
  await waitForHealth(c.name, 'healthy');
  const events = await followEngineEvents(t, { event: ['restart'] });
  await breakIt(c.name);
  const labels = labelsFor(c.name);
  t.equal((await h.postAlerts([{ labels }])).statusCode, 200);
  await h.engine.idle();
  await waitForHealth(c.name, 'healthy');
  const ours = await waitFor('the silence expired', async () => {
    const s = (await silencesOf(am.url)).filter((x) => x.createdBy === 'autoheal-nexus');
    return s.length === 1 && s[0]?.status.state === 'expired' ? s[0] : undefined;
  });
  t.same(
    ours.matchers.map((m) => [m.name, m.value, m.isRegex, m.isEqual]),
    Object.entries(labels)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => [k, v, false, true]),
    'exactly that alert: its labels as equality matchers',
  );
  t.match(ours.comment, new RegExp(`remediating ${c.name} \\(restart, remediation .+\\)`));
  const restartAt = events.find((e) => e.name === c.name)?.at ?? 0;
  t.ok(Date.parse(ours.startsAt) <= restartAt, 'active before the restart');
  t.ok(Date.parse(ours.endsAt) >= restartAt, 'expired after it');
  t.equal(await h.metric('autoheal_silences_total', { op: 'create', result: 'ok' }), 1);
  t.equal(await h.metric('autoheal_silences_total', { op: 'expire', result: 'ok' }), 1);
  t.same(h.store.silencedTargets(), [], 'nothing left to expire');
  t.comment(`silence ${ours.startsAt} → ${ours.endsAt}; restart at ${new Date(restartAt).toISOString()}`);
});

t.test('given up: the silence expires at once, so the humans are paged', async (t) => {
  const am = await startAlertmanager(t, { config: AM_CONFIG });
  const h = await testApp(t, {
    env: { ALERTMANAGER_URL: am.url, MAX_RESTART_ATTEMPTS: '1', VERIFY_TIMEOUT: '3' },
  });
  const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' }, recoverOnRestart: false });
  await waitForHealth(c.name, 'healthy');
  await breakIt(c.name);
  await waitForHealth(c.name, 'unhealthy');
  await h.postAlerts([{ labels: labelsFor(c.name) }]);
  await h.engine.idle();
  t.equal(h.store.record(c.name)?.givenUp, true, 'given up after its one attempt');
  const ours = await waitFor('the silence expired', async () => {
    const s = (await silencesOf(am.url)).find((x) => x.createdBy === 'autoheal-nexus');
    return s?.status.state === 'expired' ? s : undefined;
  });
  const givenUpAt = h.store.record(c.name)?.givenUpAt ?? 0;
  t.ok(Date.parse(ours.endsAt) >= givenUpAt - 1000, 'expired when the service gave up');
  t.ok(Date.parse(ours.endsAt) - givenUpAt < 10_000, 'not left to run to ALERTMANAGER_SILENCE_MAX');
});

t.test(
  'an unreachable Alertmanager never blocks a remediation; its credentials stay out of the log',
  async (t) => {
    const port = await freePort();
    const h = await testApp(t, {
      env: { ALERTMANAGER_URL: `http://silencer:am-secret-pass-4711@127.0.0.1:${port}` },
    });
    const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' } });
    await waitForHealth(c.name, 'healthy');
    await breakIt(c.name);
    await h.postAlerts([{ labels: labelsFor(c.name) }]);
    await h.engine.idle();
    t.equal(h.store.record(c.name)?.lastResult, 'succeeded', 'healed all the same');
    await waitFor('the failed silence counted', async () =>
      (await h.metric('autoheal_silences_total', { op: 'create', result: 'failed' })) === 1
        ? true
        : undefined,
    );
    const warn = h.lines.find((l) => l.includes('"event":"silence"'));
    t.match(warn, /cannot create the Alertmanager silence/);
    t.notOk(
      h.lines.some((l) => l.includes('am-secret-pass-4711')),
      'the password is in no log line',
    );
    // The container record is what the policy sees: untouched by the failure.
    const inspected = await docker.getContainer(c.name).inspect();
    t.equal(inspected.State.Health?.Status, 'healthy');
  },
);

t.test('a silence whose remediation ended before a restart is expired at the next start', async (t) => {
  const am = await startAlertmanager(t, { config: AM_CONFIG });
  // A silence the service made, and remembered, for a container that has no remediation running now
  // (the process died between the verification and the expiry).
  const made = await fetch(`${am.url}/api/v2/silences`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      matchers: [{ name: 'alertname', value: 'Left', isRegex: false, isEqual: true }],
      startsAt: new Date().toISOString(),
      endsAt: new Date(Date.now() + 3_600_000).toISOString(),
      createdBy: 'autoheal-nexus',
      comment: 'left by a service that died',
    }),
  });
  const { silenceID } = (await made.json()) as { silenceID: string };
  const dir = mkdtempSync(join(tmpdir(), 'autoheal-silence-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const first = await testApp(t, { dataDir: dir, env: { ALERTMANAGER_URL: am.url } });
  first.store.batch(() =>
    first.store.putSilence('gone-web', { id: silenceID, at: Date.now(), alertname: 'Left' }),
  );
  const second = await testApp(t, { dataDir: dir, env: { ALERTMANAGER_URL: am.url } });
  await waitFor('the silence expired', async () =>
    (await silencesOf(am.url)).find((s) => s.id === silenceID)?.status.state === 'expired' ? true : undefined,
  );
  t.same(second.store.silencedTargets(), []);
});

t.test(
  'ESCALATE_VIA=alertmanager: a give-up arrives at a receiver as AutohealEscalation, and resolves on recovery',
  async (t) => {
    // A receiver Alertmanager notifies (a Slack or PagerDuty stand-in), with the resolved notification.
    const received: Array<{
      status: string;
      alerts: Array<{ status: string; labels: Record<string, string> }>;
    }> = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += String(c);
      });
      req.on('end', () => {
        received.push(JSON.parse(body));
        res.end('ok');
      });
    });
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    t.teardown(() => new Promise<void>((resolve) => receiver.close(() => resolve())));
    const port = (receiver.address() as AddressInfo).port;
    const am = await startAlertmanager(t, {
      config: [
        'route:',
        '  receiver: oncall',
        '  group_by: [alertname, target]',
        '  group_wait: 0s',
        '  group_interval: 1s',
        '  repeat_interval: 1h',
        'receivers:',
        '  - name: oncall',
        '    webhook_configs:',
        `      - url: http://127.0.0.1:${port}/hook`,
        '        send_resolved: true',
        '',
      ].join('\n'),
    });
    const h = await testApp(t, {
      env: {
        ALERTMANAGER_URL: am.url,
        ESCALATE_VIA: 'alertmanager',
        MAX_RESTART_ATTEMPTS: '1',
        VERIFY_TIMEOUT: '3',
      },
    });
    const c = await createTestContainer(t, {
      labels: { 'autoheal.enable': 'true' },
      recoverOnRestart: false,
    });
    await waitForHealth(c.name, 'healthy');
    await breakIt(c.name);
    await waitForHealth(c.name, 'unhealthy');
    await h.postAlerts([{ labels: labelsFor(c.name) }]);
    await h.engine.idle();
    t.equal(h.store.record(c.name)?.givenUp, true);
    const firing = await waitFor(
      'the escalation at the receiver',
      async () =>
        received
          .flatMap((n) => n.alerts)
          .find((a) => a.status === 'firing' && a.labels.alertname === 'AutohealEscalation'),
      20_000,
    );
    t.match(firing.labels, { kind: 'given_up', container: c.name, target: c.name, severity: 'critical' });

    // An operator fixes it, resets it and restarts it: verified, so the escalation resolves.
    await fixContainer(c.name);
    const reset = await h.app.inject({
      method: 'POST',
      url: `/api/v1/containers/${c.name}/reset`,
      headers: { authorization: admin.authorization },
    });
    t.equal(reset.statusCode, 200, reset.body);
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/v1/remediations',
      headers: admin,
      payload: { action: 'restart', target: c.name, reason: 'fixed by hand' },
    });
    const healed = await h.settled(String(JSON.parse(res.body).id));
    t.equal(healed.state, 'succeeded', JSON.stringify(healed));
    const resolved = await waitFor(
      'the resolved escalation at the receiver',
      async () =>
        received
          .flatMap((n) => n.alerts)
          .find((a) => a.status === 'resolved' && a.labels.alertname === 'AutohealEscalation'),
      20_000,
    );
    t.match(resolved.labels, { kind: 'given_up', container: c.name });
    t.same(h.store.escalationAlerts(), [], 'nothing left to resend');
    t.equal((await h.metric('autoheal_escalation_alerts_total', { op: 'fire', result: 'ok' })) >= 1, true);
    t.equal(await h.metric('autoheal_escalation_alerts_total', { op: 'resolve', result: 'ok' }), 1);
  },
);

t.test(
  'Silence 1 h from the chat: every alert of the container, for the hour, named for who asked',
  async (t) => {
    const am = await startAlertmanager(t, { config: AM_CONFIG });
    const dir = mkdtempSync(join(tmpdir(), 'autoheal-silence-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const log = pino({ level: 'silent' });
    const store = new Store(dir, log);
    t.teardown(() => store.close());
    const silencer = new AlertmanagerSilencer(
      { url: am.url, maxMs: 3_600_000 },
      { store, log, metrics: createMetrics(new Registry()), clock: systemClock },
    );
    const until = Date.now() + 3_600_000;
    const id = await silencer.silenceContainer('shop-web-1', until, 'telegram:4242 Alice (@alice)');
    const s = (await silencesOf(am.url)).find((x) => x.id === id);
    t.same(
      s?.matchers.map((m) => [m.name, m.value, m.isRegex]),
      [['container', 'shop-web-1', false]],
    );
    t.equal(s?.status.state, 'active');
    t.equal(s?.createdBy, 'autoheal-nexus');
    t.match(s?.comment, /Silenced from Telegram by telegram:4242 Alice \(@alice\) for shop-web-1/);
    t.ok(Math.abs(Date.parse(s?.endsAt ?? '') - until) < 1_000, 'ends after the hour');
    t.same(store.silencedTargets(), [], 'not tied to a remediation: the service never expires it');
    // An Alertmanager that refuses is an error the chat answer names; nothing is recorded.
    const down = new AlertmanagerSilencer(
      { url: `http://127.0.0.1:${await freePort()}`, maxMs: 3_600_000, timeoutMs: 2_000 },
      { store, log, metrics: createMetrics(new Registry()), clock: systemClock },
    );
    await t.rejects(down.silenceContainer('shop-web-1', until, 'x'));
  },
);
