// Channels beyond Telegram, through the durable outbox: a Discord/Slack-style JSON webhook
// (WEBHOOK_URL, WEBHOOK_JSON_KEY, as docker-autoheal has them) and an Apprise API endpoint (APPRISE_URL),
// against local HTTP receivers standing in for them. A delivery is retried on a 5xx, waits the
// Retry-After of a 429, and is not lost across a kill -9 of the service; the URL (its path is a token)
// never reaches a log line.
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { createNotifier } from '../src/notifiers/index.js';
import { ADMIN_TOKEN, testApp } from './fixtures/app.js';
import { waitFor } from './fixtures/docker.js';
import { startService } from './fixtures/service.js';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
const HOOK_PATH = '/api/webhooks/4711/hook-secret-token-abcdef';

interface Hit {
  readonly at: number;
  readonly body: Record<string, string>;
  readonly status: number;
}

/** A receiver that answers each POST with the next status of `script` (then 200), and records it. */
async function receiver(t: Test, script: number[] = []) {
  const hits: Hit[] = [];
  const answers = [...script];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += String(c);
    });
    req.on('end', () => {
      const status = answers.shift() ?? 200;
      hits.push({ at: Date.now(), body: JSON.parse(body), status });
      res.writeHead(status, status === 429 ? { 'retry-after': '1' } : {}).end(status === 200 ? 'ok' : 'busy');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${HOOK_PATH}`;
  return { url, hits, script: answers };
}

const fast = { batchWindowMs: 50, retryBaseMs: 200, minIntervalMs: 0 };

t.test('a JSON webhook: retried on a 5xx, the 429 waited out, delivered once under its key', async (t) => {
  const hook = await receiver(t, [500, 429]);
  const h = await testApp(t, {
    env: { WEBHOOK_URL: hook.url, WEBHOOK_JSON_KEY: 'content' },
    notifier: ({ config, log, metrics }) => createNotifier(config, { log, metrics, tuning: fast }),
  });
  const res = await h.app.inject({
    method: 'POST',
    url: '/api/v1/notify',
    headers: admin,
    payload: { text: 'build 1234 deployed' },
  });
  t.equal(res.statusCode, 202, res.body);
  await waitFor(
    'the delivery',
    async () => (hook.hits.some((x) => x.status === 200) ? true : undefined),
    20_000,
  );
  t.same(
    hook.hits.map((x) => x.status),
    [500, 429, 200],
    'a 5xx retried, a 429 retried, then delivered once',
  );
  t.match(hook.hits[2]?.body, { content: /build 1234 deployed/ }, 'the text under WEBHOOK_JSON_KEY');
  // The wait after the 429 is the Retry-After it named (1 s), not the back-off (200 ms): as the outbox
  // scheduled it, not as a clock measured it.
  const after429 = h.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.status === 429);
  t.match(after429, { event: 'notification', channel: 'webhook', result: 'retried', retryInMs: 1000 });
  t.comment(`429 → delivery: ${(hook.hits[2]?.at ?? 0) - (hook.hits[1]?.at ?? 0)} ms`);
  t.notOk(
    h.lines.some((l) => l.includes('hook-secret-token')),
    'the webhook URL, a token, is in no log line',
  );
  t.ok(
    h.lines.some((l) => l.includes('"channel":"webhook"')),
    'the channel is named in the log',
  );
});

t.test('an Apprise API endpoint gets title, body and type; a give-up reaches it', async (t) => {
  const apprise = await receiver(t);
  const h = await testApp(t, {
    env: { APPRISE_URL: apprise.url },
    notifier: ({ config, log, metrics }) => createNotifier(config, { log, metrics, tuning: fast }),
  });
  h.notifier?.raise({
    id: 'e1',
    kind: 'given_up',
    at: Date.now(),
    host: 'node-a',
    container: 'web',
    attempts: [{ at: Date.now(), action: 'restart', result: 'failed', detail: 'health check still failing' }],
    detail: '3 of 3 attempts failed',
  });
  await waitFor('the delivery', async () => (apprise.hits.length ? true : undefined), 20_000);
  t.match(apprise.hits[0]?.body, { title: 'AutoHeal-Nexus', type: 'warning', body: /web/ });
  t.notMatch(apprise.hits[0]?.body.body ?? '', /<\/?b>/, 'plain text, no HTML');
});

t.test('nothing is lost across a kill -9: what was pending is delivered by the next start', async (t) => {
  const hook = await receiver(t, [503, 503, 503, 503, 503, 503, 503, 503, 503, 503]);
  const env = { WEBHOOK_URL: hook.url, LOG_LEVEL: 'info' };
  const first = await startService(t, env);
  const res = await fetch(`${first.url}/api/v1/notify`, {
    method: 'POST',
    headers: admin,
    body: JSON.stringify({ text: 'the deploy of 1235 failed' }),
  });
  t.equal(res.status, 202);
  await waitFor('a first attempt', async () => (hook.hits.length ? true : undefined), 20_000);
  await first.kill('SIGKILL');
  hook.script.length = 0; // the receiver is back
  const before = hook.hits.length;
  const second = await startService(t, env, first.dir);
  await waitFor(
    'the delivery after the restart',
    async () => (hook.hits.some((x) => x.status === 200) ? true : undefined),
    30_000,
  );
  await new Promise((r) => setTimeout(r, 1500));
  const delivered = hook.hits.filter((x) => x.status === 200);
  t.equal(delivered.length, 1, 'delivered once');
  t.match(delivered[0]?.body, { text: /the deploy of 1235 failed/ });
  t.ok(hook.hits.length > before, 'by the second life');
  t.notOk(second.output().includes('hook-secret-token'), 'the URL is in neither life’s output');
  t.notOk(first.output().includes('hook-secret-token'));
});
