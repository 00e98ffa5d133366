// The autoheal-nexus CLI, spawned with tsx against a listening app on the real Docker engine: every
// command, tables and --json, progress while it waits, and a non-zero exit with a clear message for
// every kind of failure.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { ADMIN_TOKEN, adminApp, breakIt, RecordingTextNotifier } from './fixtures/admin-app.js';
import { createTestContainer, healthOf, restartCountOf, waitForHealth } from './fixtures/docker.js';

const ROOT = new URL('..', import.meta.url).pathname;

interface Run {
  code: number | null;
  out: string;
  err: string;
}

function cli(args: string[], o: { url: string; env?: Record<string, string>; stdin?: string }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', AUTOHEAL_URL: o.url, ADMIN_TOKEN, ...o.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += String(d);
    });
    child.stderr.on('data', (d) => {
      err += String(d);
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, out, err }));
    child.stdin.end(o.stdin ?? '');
  });
}

/** A port nothing listens on (fetch refuses the well-known "bad ports" such as 1 before connecting). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as { port: number };
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

const notifier = new RecordingTextNotifier();
const a = await adminApp(t, { listen: true, notifier });
const run = (args: string[], o: { env?: Record<string, string>; stdin?: string } = {}) =>
  cli(args, { url: a.url, ...o });

t.test('help and usage errors exit 2', async (t) => {
  const help = await run(['--help']);
  t.equal(help.code, 0);
  t.match(help.out, /Usage: autoheal-nexus <command>/);
  for (const c of [
    'status',
    'restart',
    'stop-start',
    'cleanup',
    'pause',
    'resume',
    'reset',
    'incidents',
    'notify',
  ]) {
    t.match(help.out, new RegExp(`\\n  ${c}\\b`), `help lists ${c}`);
  }
  const none = await run([]);
  t.equal(none.code, 2);
  t.match(none.err, /Usage:/);
  const unknown = await run(['reboot', 'web']);
  t.equal(unknown.code, 2);
  t.match(unknown.err, /unknown command "reboot"/);
  t.notMatch(unknown.err, /Usage:/, 'no usage dump for a mistyped command');
  const typo = await run(['stauts']);
  t.equal(typo.code, 2);
  t.equal(
    typo.err,
    'autoheal-nexus: unknown command "stauts"; did you mean "status"? (autoheal-nexus --help lists the commands)\n',
  );
  const badOption = await run(['status', '--colour']);
  t.equal(badOption.code, 2);
  t.match(badOption.err, /--colour/);
  const noTarget = await run(['restart']);
  t.equal(noTarget.code, 2);
  t.match(noTarget.err, /restart: expected one target/);
  const noFor = await run(['pause', 'web']);
  t.equal(noFor.code, 2);
  t.match(noFor.err, /--for/);
});

t.test('--version prints the version of package.json', async (t) => {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-v']) {
    const r = await cli([flag], { url: a.url, env: { ADMIN_TOKEN: '' } });
    t.equal(r.code, 0, flag);
    t.equal(r.out, `autoheal-nexus ${version}\n`);
  }
});

t.test('without AUTOHEAL_URL the CLI finds the service from PORT and HOST', async (t) => {
  const { port } = new URL(a.url);
  for (const host of ['127.0.0.1', '0.0.0.0', '']) {
    const r = await cli(['status', '--json'], { url: '', env: { PORT: port, HOST: host } });
    t.equal(r.code, 0, `PORT=${port} HOST=${JSON.stringify(host)}: ${r.err}`);
  }
  const other = await closedPort();
  const r = await cli(['status'], { url: '', env: { PORT: String(other) } });
  t.equal(r.code, 1);
  t.match(r.err, `cannot reach autoheal-nexus at http://127.0.0.1:${other}`, 'the URL it tried');
});

t.test('configuration and connection errors say what to fix', async (t) => {
  const noToken = await cli(['status'], { url: a.url, env: { ADMIN_TOKEN: '' } });
  t.equal(noToken.code, 2);
  t.match(noToken.err, /ADMIN_TOKEN is not set/);
  const wrong = await run(['status'], { env: { ADMIN_TOKEN: 'wrong-token-wrong-token' } });
  t.equal(wrong.code, 1);
  t.match(wrong.err, /refused the token \(HTTP 401\): check ADMIN_TOKEN/);
  t.notMatch(wrong.err, /wrong-token/, 'the token is not echoed');
  const port = await closedPort();
  const down = await cli(['status'], { url: `http://127.0.0.1:${port}` });
  t.equal(down.code, 1);
  t.match(down.err, `cannot reach autoheal-nexus at http://127.0.0.1:${port}: ECONNREFUSED (is it running?`);
  const badUrl = await cli(['status'], { url: 'ftp://example' });
  t.equal(badUrl.code, 2);
  t.match(badUrl.err, /AUTOHEAL_URL/);
});

t.test('restart waits for the verification and shows its progress', async (t) => {
  const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' } });
  await waitForHealth(c.name, 'healthy');
  await breakIt(c.name);
  await waitForHealth(c.name, 'unhealthy');
  const before = await restartCountOf(c.name);
  const r = await run(['restart', c.name, '--reason', 'stuck after deploy']);
  t.equal(r.code, 0, r.err);
  t.match(r.out, new RegExp(`restart of ${c.name} succeeded in [0-9.]+s: .*healthy`));
  t.match(
    r.err,
    new RegExp(`restart of ${c.name}: (queued|running, verifying recovery)\\n`),
    'progress lines',
  );
  t.equal(await healthOf(c.name), 'healthy');
  t.not((await restartCountOf(c.name)).startedAt, before.startedAt);
  const line = a.audit().find((l) => l.event === 'manual_request' && l.target === c.name);
  t.match(
    line,
    { requestedBy: /^cli/, reason: 'stuck after deploy' },
    'requester and reason in the audit log',
  );

  const status = await run(['status']);
  t.equal(status.code, 0);
  t.match(status.out, /^NAME +STATE +HEALTH +ATTEMPTS +COOLDOWN +PAUSED UNTIL +LAST ACTION +RESULT/);
  t.match(status.out, new RegExp(`${c.name} +running +healthy +1/3 .*restart .*succeeded`));
  const json = await run(['status', '--json']);
  const list = JSON.parse(json.out) as Array<{ name: string; lastResult?: string }>;
  t.equal(list.find((x) => x.name === c.name)?.lastResult, 'succeeded');

  const incidents = await run(['incidents', '--container', c.name]);
  t.equal(incidents.code, 0);
  t.match(incidents.out, /OPENED +CONTAINER +STATUS/);
  t.match(incidents.out, new RegExp(`${c.name} +recovered`));
  const incJson = await run(['incidents', '--since', '1h', '--json']);
  t.ok((JSON.parse(incJson.out) as Array<{ container: string }>).some((i) => i.container === c.name));
  const badSince = await run(['incidents', '--since', 'yesterday']);
  t.equal(badSince.code, 1);
  t.match(badSince.err, /since: "yesterday" is neither a duration .* \(HTTP 400\)/);
});

t.test('stop-start with --json prints the final remediation', async (t) => {
  const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' } });
  await waitForHealth(c.name, 'healthy');
  const r = await run(['stop-start', c.name, '--json']);
  t.equal(r.code, 0, r.err);
  t.match(JSON.parse(r.out), { action: 'stop_start', state: 'succeeded', container: c.name, done: true });
});

t.test('a failed remediation exits 1 with the reason', async (t) => {
  const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' }, recoverOnRestart: false });
  await waitForHealth(c.name, 'healthy');
  await breakIt(c.name);
  await waitForHealth(c.name, 'unhealthy');
  const r = await run(['restart', c.name]);
  t.equal(r.code, 1);
  t.match(r.err, new RegExp(`autoheal-nexus: restart of ${c.name} failed .*health check still failing`));
});

t.test('unknown targets exit 1 and name the target', async (t) => {
  const r = await run(['restart', 'no-such-container-xyz']);
  t.equal(r.code, 1);
  t.match(r.err, /no container named "no-such-container-xyz" \(HTTP 404\)/);
  const p = await run(['pause', 'no-such-container-xyz', '--for', '1h']);
  t.equal(p.code, 1);
  t.match(p.err, /no-such-container-xyz/);
});

t.test('pause, a skipped restart, resume and reset', async (t) => {
  const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' } });
  await waitForHealth(c.name, 'healthy');
  const bad = await run(['pause', c.name, '--for', 'forever']);
  t.equal(bad.code, 1);
  t.match(bad.err, /malformed duration "forever"/);

  const p = await run(['pause', c.name, '--for', '1h', '--reason', 'maintenance window']);
  t.equal(p.code, 0, p.err);
  t.match(p.out, new RegExp(`${c.name}: healing paused until [0-9]{4}-`));
  const st = await run(['status', '--json']);
  t.ok(
    (JSON.parse(st.out) as Array<{ name: string; pausedUntil: string | null }>).find((x) => x.name === c.name)
      ?.pausedUntil,
  );

  const before = await restartCountOf(c.name);
  const skipped = await run(['restart', c.name]);
  t.equal(skipped.code, 3, 'a skip is not a success');
  t.match(skipped.err, new RegExp(`restart of ${c.name} skipped: paused.*autoheal-nexus resume ${c.name}`));
  t.same(await restartCountOf(c.name), before, 'untouched');

  const resume = await run(['resume', c.name]);
  t.equal(resume.code, 0);
  t.match(resume.out, new RegExp(`${c.name}: healing resumed`));
  const reset = await run(['reset', c.name, '--json']);
  t.equal(reset.code, 0);
  t.same(JSON.parse(reset.out), { container: c.name, attempts: 0, givenUp: false });
  const resetText = await run(['reset', c.name]);
  t.match(resetText.out, new RegExp(`${c.name}: reset \\(attempts 0`));
});

t.test('cleanup, and --no-wait', async (t) => {
  const r = await run(['cleanup', '--dry-run', '--reason', 'disk at 91%']);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /cleanup of host: dry run/);
  const c = await createTestContainer(t, { labels: { 'autoheal.enable': 'true' } });
  const nw = await run(['restart', c.name, '--no-wait', '--dry-run']);
  t.equal(nw.code, 0);
  t.match(nw.out, new RegExp(`restart of ${c.name} accepted: [0-9a-f-]{36}`));
  await a.engine.idle();
});

t.test('notify sends text from arguments or stdin', async (t) => {
  const r = await run(['notify', 'build', '1234', 'deployed']);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /message queued \(msg-/);
  const s = await run(['notify', '-', '--silent'], { stdin: 'nightly backup done\n' });
  t.equal(s.code, 0, s.err);
  t.match(notifier.texts.slice(-2), [
    { text: 'build 1234 deployed', silent: false },
    { text: 'nightly backup done', silent: true },
  ]);
  const empty = await run(['notify']);
  t.equal(empty.code, 2);
});

t.test('notify without a notifier exits 1 naming TELEGRAM_BOT_TOKEN', async (t) => {
  const bare = await adminApp(t, { listen: true });
  const r = await cli(['notify', 'hello'], { url: bare.url });
  t.equal(r.code, 1);
  t.match(r.err, /TELEGRAM_BOT_TOKEN.*\(HTTP 503\)/);
});

t.test('scale: a step outside the limits exits 3 with the reason; a malformed step exits 2', async (t) => {
  const project = `cli${Math.random().toString(16).slice(2, 8)}`;
  await createTestContainer(t, {
    labels: {
      'autoheal.enable': 'true',
      'com.docker.compose.project': project,
      'com.docker.compose.service': 'web',
      'autoheal.scale.max': '1',
    },
  });
  const r = await run(['scale', `service:${project}/web`, '+1']);
  t.equal(r.code, 3, r.err);
  t.match(
    r.err,
    /scale_up of service:.*\/web skipped: scale_limit: 1 replicas, at its maximum \(autoheal.scale.max=1\); the service labels autoheal.scale.min/,
  );
  const bad = await run(['scale', 'web', '2']);
  t.equal(bad.code, 2);
  t.match(bad.err, /the step is \+N or -N/);
});
