// The real service process (node --import tsx src/server.ts) against the fake Bot API: what is pending
// when the service is killed with SIGKILL — a message Telegram keeps refusing, and an escalation still
// in its batch window — is delivered once after it starts again; the bot token appears in neither the
// log file, stdout, /metrics nor an API response, whatever the Bot API answered.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { ADMIN_TOKEN, amPayload, WEBHOOK_TOKEN } from './fixtures/app.js';
import { createTestContainer, DOCKER_HOST, uniqueName, waitFor, waitForHealth } from './fixtures/docker.js';
import { FAKE_TOKEN, startFakeTelegram } from './fixtures/fake-telegram.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

interface Service {
  proc: ChildProcess;
  output: string[];
  exited: Promise<number | null>;
}

async function startService(t: { teardown(fn: () => unknown): void }, env: Record<string, string>) {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  proc.stdout?.on('data', (c) => output.push(String(c)));
  proc.stderr?.on('data', (c) => output.push(String(c)));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  const base = `http://127.0.0.1:${env.PORT}`;
  await waitFor(
    'the service to listen',
    async () => {
      if (proc.exitCode !== null) throw new Error(`service exited: ${output.join('')}`);
      return (await fetch(`${base}/healthz`)).ok;
    },
    60_000,
    100,
  );
  return { proc, output, exited } satisfies Service;
}

t.test('pending notifications survive SIGKILL and are delivered once after the restart', async (t) => {
  const fake = await startFakeTelegram(t);
  const dir = mkdtempSync(join(tmpdir(), 'autoheal-restart-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const project = uniqueName('tgproj');
  const c = await createTestContainer(t, {
    labels: { 'autoheal.enable': 'true', 'com.docker.compose.project': project },
  });
  await waitForHealth(c.name, 'healthy');
  const port = await freePort();
  const logFile = join(dir, 'audit.log');
  const env = {
    PORT: String(port),
    HOST: '127.0.0.1',
    DOCKER_HOST,
    WEBHOOK_TOKEN,
    ADMIN_TOKEN,
    DATA_DIR: join(dir, 'data'),
    LOG_FILE: logFile,
    LOG_LEVEL: 'info',
    // Only this test's container is in scope, and the service heals nothing on its own.
    WATCH_SCOPE: 'project',
    COMPOSE_PROJECT: project,
    WATCHER_HEAL: 'false',
    RESTART_COOLDOWN: '60',
    VERIFY_TIMEOUT: '10',
    VERIFY_GRACE: '1',
    TELEGRAM_BOT_TOKEN: FAKE_TOKEN,
    TELEGRAM_CHAT_ID: '-1001',
    TELEGRAM_API_URL: fake.url,
  };
  const base = `http://127.0.0.1:${port}`;
  const alert = (alertname: string) =>
    fetch(`${base}/webhooks/alertmanager`, {
      method: 'POST',
      headers: { authorization: `Bearer ${WEBHOOK_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(
        amPayload([
          {
            labels: { alertname, container: c.name, remediation: 'restart', severity: 'critical' },
            annotations: { summary: `${alertname} on ${c.name}` },
          },
        ]),
      ),
    });

  // Life 1: the Bot API fails (quoting the token-bearing URL back, as some proxies do).
  fake.script.push(
    { echoUrl: 502 },
    { status: 500, description: `Internal error at /bot${FAKE_TOKEN}/sendMessage` },
  );
  fake.fallback = { status: 500 };
  const life1 = await startService(t, env);
  t.equal((await alert('FirstAlert')).status, 200);
  // The critical alert's message (after the restart and the batch window) is tried and refused.
  await fake.waitForRequests(2, 60_000);
  const outboxJournal = join(dir, 'data', 'outbox.journal');
  // A second alert: its escalation is journalled, then the service dies inside the batch window.
  t.equal((await alert('SecondAlert')).status, 200);
  await waitFor('the second escalation in the outbox journal', async () =>
    existsSync(outboxJournal) ? readFileSync(outboxJournal, 'utf8').includes('SecondAlert') : false,
  );
  life1.proc.kill('SIGKILL');
  t.equal(await life1.exited, null, 'killed');
  t.equal(life1.proc.signalCode, 'SIGKILL');
  t.equal(fake.delivered.length, 0, 'nothing was delivered before the kill');
  const refused = fake.requests.length;

  // Life 2: the Bot API works again.
  fake.fallback = { status: 200 };
  const life2 = await startService(t, env);
  await fake.waitForDelivered(2, 30_000);
  await sleep(2_000);
  const texts = fake.delivered.map((d) => d.plain);
  t.equal(fake.delivered.length, 2, 'two messages');
  t.equal(texts.filter((x) => x.includes('FirstAlert')).length, 1, 'the refused one, once');
  t.equal(texts.filter((x) => x.includes('SecondAlert')).length, 1, 'the one in its batch window, once');
  t.equal(fake.requests.length - refused, 2, 'no duplicate request');
  t.match(
    texts.find((x) => x.includes('FirstAlert')),
    /Alert \(critical\): FirstAlert on ah-c-/,
  );
  t.match(
    texts.find((x) => x.includes('FirstAlert')),
    /What was done: .*restart succeeded/,
  );

  // A 403 from the API through the admin API's notify: given up and counted, token nowhere.
  fake.script.push({ status: 403, description: `Forbidden: bot ${FAKE_TOKEN} was blocked by the user` });
  const res = await fetch(`${base}/api/v1/notify`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ text: 'to a blocked bot' }),
  });
  const resText = await res.text();
  t.equal(res.status, 202, resText);
  await waitFor('the 403', async () => fake.requests.some((r) => r.body.text === 'to a blocked bot'));
  const metrics = await waitFor('the failure counted', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    return text.includes('autoheal_notifications_total{channel="telegram",result="failed"} 1') ? text : false;
  });
  t.match(metrics, 'autoheal_notifications_total{channel="telegram",result="sent"} 2');
  t.match(metrics, 'autoheal_notification_queue_depth 0');

  life2.proc.kill('SIGTERM');
  t.equal(await life2.exited, 0, 'a clean shutdown');

  const log = readFileSync(logFile, 'utf8');
  const outputs = [...life1.output, ...life2.output].join('');
  const secret = [FAKE_TOKEN, encodeURIComponent(FAKE_TOKEN), FAKE_TOKEN.split(':')[1] as string];
  t.ok(log.includes('/bot<redacted>/sendMessage'), 'the echoed URL was logged, scrubbed');
  t.ok(log.includes('"result":"failed"'), 'the 403 is logged');
  for (const s of secret) {
    t.notOk(log.includes(s), 'the log file holds no token');
    t.notOk(outputs.includes(s), 'stdout and stderr hold no token');
    t.notOk(metrics.includes(s), '/metrics holds no token');
    t.notOk(resText.includes(s), 'the API response holds no token');
  }
});
