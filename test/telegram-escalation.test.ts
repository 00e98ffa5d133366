// The whole path on the real Docker engine: a container that never recovers is restarted
// MAX_RESTART_ATTEMPTS times by the engine, then exactly one escalation reaches the (fake) Bot API with
// the attempts listed; healed by hand and observed, it brings exactly one recovery message.
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { createNotifier } from '../src/notifiers/index.js';
import { amPayload, bearer, testApp } from './fixtures/app.js';
import { createTestContainer, fixContainer, waitForHealth } from './fixtures/docker.js';
import { FAKE_TOKEN, startFakeTelegram } from './fixtures/fake-telegram.js';

t.test('given up after MAX_RESTART_ATTEMPTS: one escalation; healed by hand: one recovery', async (t) => {
  const fake = await startFakeTelegram(t);
  const h = await testApp(t, {
    env: {
      MAX_RESTART_ATTEMPTS: '3',
      RESTART_COOLDOWN: '1',
      VERIFY_TIMEOUT: '5',
      TELEGRAM_BOT_TOKEN: FAKE_TOKEN,
      TELEGRAM_CHAT_ID: '-100200:5',
      TELEGRAM_API_URL: fake.url,
    },
    notifier: ({ config, log, metrics }) =>
      createNotifier(config, { log, metrics, tuning: { batchWindowMs: 300 } }),
  });
  const c = await createTestContainer(t, {
    labels: {
      'autoheal.enable': 'true',
      'com.docker.compose.service': 'api',
      'com.docker.compose.project': 'shop',
    },
    startBroken: true,
    recoverOnRestart: false,
  });
  await waitForHealth(c.name, 'unhealthy');

  const res = await h.app.inject({
    method: 'POST',
    url: '/webhooks/alertmanager',
    headers: bearer(),
    payload: amPayload([
      {
        labels: {
          alertname: 'ContainerUnhealthy',
          container: c.name,
          remediation: 'restart',
          severity: 'warning',
        },
        annotations: { summary: 'api is <down> & "out"' },
      },
    ]),
  });
  t.equal(res.statusCode, 200);

  const [msg] = await fake.waitForDelivered(1, 60_000);
  // Nothing else may follow: the engine is done with the incident and the batch window has passed.
  await h.engine.idle();
  await sleep(1_000);
  t.equal(fake.delivered.length, 1, 'exactly one escalation');
  const plain = msg?.plain ?? '';
  t.match(plain, `Gave up healing: ${c.name}`);
  t.match(plain, `Container: ${c.name}`);
  t.match(plain, 'Service: api');
  t.match(plain, 'Project: shop');
  t.match(plain, /3 of 3 attempts failed/);
  t.match(plain, 'Attempts (3, times UTC)');
  const attempts = plain.split('\n').filter((l) => /^\d\. \d\d:\d\d:\d\d restart → failed/.test(l));
  t.equal(attempts.length, 3, 'each attempt with time, action and result');
  t.equal(msg?.chatId, -100200);
  t.equal(msg?.threadId, 5, 'the forum topic');
  t.equal(msg?.parseMode, 'HTML');
  t.equal(await h.metric('autoheal_escalations_total', { kind: 'given_up' }), 1);
  t.equal(await h.metric('autoheal_remediations_total', { action: 'restart', result: 'failed' }), 3);

  // Healed by hand; the health watcher (not part of this test) would report it through observe().
  await fixContainer(c.name);
  await waitForHealth(c.name, 'healthy');
  const view = await h.docker.inspect(c.name);
  t.ok(view);
  if (view) {
    h.engine.observe(view);
    h.engine.observe(view); // a second sighting must not send a second message
  }
  const all = await fake.waitForDelivered(2, 15_000);
  await sleep(800);
  t.equal(fake.delivered.length, 2, 'exactly one recovery message');
  t.match(all[1]?.plain, `Recovered: ${c.name}`);
  t.equal(all[1]?.silent, true, 'good news does not ring');
  t.equal(await h.metric('autoheal_notifications_total', { channel: 'telegram', result: 'sent' }), 2);
  t.equal(await h.metric('autoheal_notification_queue_depth'), 0);
  t.notOk(h.lines.join('\n').includes(FAKE_TOKEN), 'no token in the log');
});
