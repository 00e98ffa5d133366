// The README's "Manual remediation with curl" examples, run as written with curl against a live server
// on 127.0.0.1 and the real Docker engine. The test only sets AUTOHEAL_URL, ADMIN_TOKEN and ID (from the
// answer to the first request) instead of the example `export` line, names its own test container
// where the examples say "web", and asks curl for the status code (-w) so every answer can be checked.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import t from 'tap';
import { ADMIN_TOKEN, adminApp, RecordingTextNotifier } from './fixtures/admin-app.js';
import { createTestContainer, restartCountOf, waitForHealth } from './fixtures/docker.js';
import { sectionCommands } from './fixtures/readme.js';

const run = promisify(execFile);
const SECTION = '## Manual remediation with curl';

t.test('the README curl examples work against a live server', async (t) => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const commands = sectionCommands(readme, SECTION);
  t.ok(commands.length >= 9, `found ${commands.length} commands`);
  t.ok(commands[0]?.startsWith('export AUTOHEAL_URL='), 'the section starts by setting the two variables');

  const notifier = new RecordingTextNotifier();
  const a = await adminApp(t, { listen: true, notifier });
  const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' } });
  await waitForHealth(c.name, 'healthy');
  const before = await restartCountOf(c.name);

  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    AUTOHEAL_URL: a.url,
    ADMIN_TOKEN,
  };
  const seen: string[] = [];
  for (const command of commands) {
    if (command.startsWith('export ')) continue;
    t.match(command, /^curl /, 'every example is a curl command');
    const cmd = command.replace(/\bweb\b/g, c.name).replace(/^curl /, `curl -w '\\n%{http_code}' `);
    const { stdout } = await run('bash', ['-c', cmd], { env });
    const lines = stdout.trimEnd().split('\n');
    const code = Number(lines.pop());
    const body = JSON.parse(lines.join('\n')) as Record<string, unknown>;
    t.ok(code >= 200 && code < 300, `${code} for: ${command}`);
    t.notOk('error' in body, `no error in the answer to: ${command}`);
    const method = /-X (POST|DELETE)/.exec(command)?.[1] ?? 'GET';
    const path = /\$AUTOHEAL_URL(\/[^"?]*)/.exec(command)?.[1] ?? '';
    seen.push(`${method} ${path.replace(c.name, 'web')}`);
    if (method === 'POST' && path === '/api/v1/remediations' && !env.ID) {
      env.ID = String(body.id);
      // Follow it to the end before the next examples pause and reset the same container.
      t.equal((await a.settled(env.ID)).state, 'succeeded', 'the restart was verified');
    }
    if (path === '/api/v1/remediations/$ID')
      t.match(body, { state: 'succeeded', done: true, requestedBy: 'alice' });
    if (path === '/api/v1/containers')
      t.ok(
        (body.containers as Array<{ name: string }>).some((x) => x.name === c.name),
        'lists the container',
      );
    if (path.startsWith('/api/v1/incidents'))
      t.equal((body.incidents as unknown[]).length, 1, 'the restart made an incident');
  }
  t.same(seen, [
    'POST /api/v1/remediations',
    'GET /api/v1/remediations/$ID',
    'GET /api/v1/containers',
    'POST /api/v1/containers/web/pause',
    'DELETE /api/v1/containers/web/pause',
    'POST /api/v1/containers/web/reset',
    'GET /api/v1/incidents',
    'POST /api/v1/remediations',
    'POST /api/v1/notify',
  ]);
  t.not((await restartCountOf(c.name)).startedAt, before.startedAt, 'the container was really restarted');
  t.same(
    notifier.texts.map((x) => x.text),
    ['build 1234 deployed'],
  );
  await a.engine.idle();
  const cleanup = a.store.listRemediations().find((r) => r.action === 'cleanup');
  t.equal(cleanup?.state, 'dry_run');
  const audit = a.audit();
  t.match(
    audit.find((l) => l.event === 'manual_request' && l.action === 'restart'),
    { requestedBy: 'alice', reason: 'stuck after the deploy' },
  );
  t.ok(
    audit.some((l) => l.event === 'pause'),
    'the pause is in the audit log',
  );
});
