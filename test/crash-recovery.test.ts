// The service killed with SIGKILL in the middle of an incident and started again: the intent recorded
// before the action holds the cooldown (no extra restart), and the same incident continues.
import t from 'tap';
import { ADMIN_TOKEN, amPayload, bearer } from './fixtures/app.js';
import {
  createTestContainer,
  followEvents,
  followRestarts,
  restartCountOf,
  waitFor,
  waitForHealth,
} from './fixtures/docker.js';
import { startService } from './fixtures/service.js';

const COOLDOWN_S = 15;

t.test('SIGKILL mid-incident: no extra restart inside the cooldown, the incident continues', async (t) => {
  const env = {
    RESTART_COOLDOWN: String(COOLDOWN_S),
    VERIFY_TIMEOUT: '30',
    MAX_RESTART_ATTEMPTS: '3',
    WATCHER_HEAL: 'false',
  };
  const first = await startService(t, env);
  const c = await createTestContainer(t, {
    labels: { 'autoheal.enable': 'true' },
    recoverOnRestart: false,
    startBroken: true,
  });
  await waitForHealth(c.name, 'unhealthy');
  const labels = { alertname: 'ContainerUnhealthy', container: c.name, remediation: 'restart' };
  const payload = amPayload([{ labels, fingerprint: 'crash1' }]);
  const post = (url: string, body = payload) =>
    fetch(`${url}/webhooks/alertmanager`, {
      method: 'POST',
      headers: { ...bearer(), 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  t.equal((await post(first.url)).status, 200);

  const action = await waitFor('the first restart to start', async () =>
    first.audit().find((l) => l.event === 'action' && l.container === c.name),
  );
  // Mid-incident: the restart was issued and its verification is running.
  await first.kill('SIGKILL');
  const killedAt = Date.now();
  // The restart request may or may not have reached the engine before the kill; if it did, the engine
  // finishes it (stop timeout 2 s). Count from where things settle.
  await new Promise((r) => setTimeout(r, 3500));
  const restartsAfterKill = await restartCountOf(c.name);

  const second = await startService(t, env, first.dir);
  // Alertmanager retries the same payload and later re-sends with a new startsAt.
  t.equal((await post(second.url)).status, 200);
  t.equal(
    (await post(second.url, amPayload([{ labels, fingerprint: 'crash1', startsAt: '2026-11-28T00:09:00Z' }])))
      .status,
    200,
  );

  const resumed = await waitFor('the resume line', async () =>
    second.audit().find((l) => l.event === 'resume' && l.container === c.name),
  );
  t.equal(resumed.action, 'restart');
  const decisions = await waitFor('the decisions after the restart', async () => {
    const d = second
      .audit()
      .filter(
        (l) => l.event === 'decision' && l.container === c.name && Date.parse(String(l.time)) >= killedAt,
      );
    return d.some((l) => l.reason !== 'duplicate') ? d : undefined;
  });
  t.ok(
    decisions.some((l) => l.reason === 'cooldown_active'),
    `inside the cooldown: ${decisions.map((l) => l.reason).join(', ')}`,
  );
  t.ok(
    second.audit().some((l) => l.reason === 'duplicate'),
    'the retried payload is a duplicate',
  );
  t.same(await restartCountOf(c.name), restartsAfterKill, 'no restart inside the cooldown');

  const second2 = await waitFor(
    'the incident to continue with attempt 2',
    async () =>
      second
        .audit()
        .find(
          (l) => l.event === 'action' && l.container === c.name && Date.parse(String(l.time)) >= killedAt,
        ),
    COOLDOWN_S * 1000 + 15_000,
  );
  t.equal(second2.attempt, 2, 'the interrupted restart counted as attempt 1');
  t.equal(second2.incidentId, action.incidentId, 'the same incident');
  const gap = Date.parse(String(second2.time)) - Date.parse(String(action.time));
  t.ok(gap >= COOLDOWN_S * 1000, `the next restart waited for the cooldown (${gap} ms)`);
  await second.kill('SIGTERM');
});

t.test(
  'a forced manual restart, SIGKILL during it and again during its verification: one restart',
  async (t) => {
    const env = { WATCHER_HEAL: 'false', VERIFY_TIMEOUT: '30', RESTART_COOLDOWN: '1' };
    const first = await startService(t, env);
    // PID 1 ignores TERM: the engine's restart waits the whole 3 s stop timeout, so the kill lands in it.
    const c = await createTestContainer(t, {
      labels: { 'autoheal.enable': 'true', 'autoheal.stop.timeout': '3' },
      cmd: ['sh', '-c', "trap '' TERM; rm -f /tmp/broken; sleep 2147483 & wait; sleep 2147483"],
    });
    const restarts = await followRestarts(t, c.name);
    const stops = await followEvents(t, c.name, ['kill']);
    await waitForHealth(c.name, 'healthy');
    const res = await fetch(`${first.url}/api/v1/remediations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ target: c.name, action: 'restart', force: true, reason: 'crash test' }),
    });
    t.equal(res.status, 202);
    const { id } = (await res.json()) as { id: string };
    await waitFor('the restart to start', async () =>
      first.audit().find((l) => l.event === 'action' && l.container === c.name),
    );
    // The engine has the restart (its SIGTERM is the first kill event): the kill lands in its stop
    // timeout, not in the instant between the audit line and the request reaching the engine.
    await waitFor('the engine to stop it', async () => stops.count() > 0 || undefined);
    await first.kill('SIGKILL');

    const second = await startService(t, env, first.dir);
    await waitFor('the resume line', async () =>
      second.audit().find((l) => l.event === 'resume' && l.container === c.name),
    );
    await second.kill('SIGKILL');

    const third = await startService(t, env, first.dir);
    const result = await waitFor(
      'the verified result',
      async () => third.audit().find((l) => l.event === 'remediation' && l.remediationId === id),
      40_000,
    );
    t.equal(result.result, 'succeeded', JSON.stringify(result));
    await waitForHealth(c.name, 'healthy');
    const audit = third.audit();
    t.equal(
      audit.filter((l) => l.event === 'decision' && l.container === c.name && l.reason === 'forced').length,
      1,
      'decided once, across three lives of the service',
    );
    t.equal(audit.filter((l) => l.event === 'action' && l.container === c.name).length, 1, 'acted once');
    t.equal(restarts.count(), 1, 'the engine restarted it exactly once');
    await third.kill('SIGTERM');
  },
);
