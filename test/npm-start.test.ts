// `npm start` and `npm run cli` as the README runs them, in a directory of their own with a `.env`:
// the file is read (the real environment wins over it), nothing is compiled when nothing changed, the
// CLI finds the service from the same file, and SIGTERM to the npm process ends the server (no orphan).
// The directory links to this repository's files; only its `.env` is its own.
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { freePort, REPO } from './fixtures/prom-stack.js';
import { logLine, spawned, until } from './fixtures/spawned.js';

const TOKEN = 'npm-start-admin-token-0123456789';

t.test('npm start reads .env, does not recompile, and stops on SIGTERM to npm', async (t) => {
  // Built first if needed, so the start below finds an up-to-date build.
  const first = spawned(process.execPath, ['scripts/build-if-stale.mjs']);
  t.equal(await first.exited, 0, `build if stale: ${first.err()}`);
  const again = spawned(process.execPath, ['scripts/build-if-stale.mjs']);
  t.equal(await again.exited, 0);
  t.equal(again.err(), '', 'nothing changed: no build');

  const dir = mkdtempSync(join(tmpdir(), 'autoheal-npm-start-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const f of [
    'package.json',
    'dist',
    'node_modules',
    'src',
    'routes',
    'scripts',
    'tsconfig.json',
    'tsconfig.build.json',
  ])
    symlinkSync(join(REPO, f), join(dir, f));
  const port = await freePort();
  writeFileSync(
    join(dir, '.env'),
    [
      '# as a newcomer writes it',
      `PORT=${port}`,
      `ADMIN_TOKEN=${TOKEN}`,
      `DATA_DIR=${join(dir, 'data')}`,
      'LOG_FILE=',
      'WATCHER_HEAL=false',
      'DRY_RUN=false',
      '',
    ].join('\n'),
  );
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? dir,
    npm_config_update_notifier: 'false',
    // The real environment wins over the file.
    DRY_RUN: 'true',
  };
  const s = spawned('npm', ['start'], { cwd: dir, env });
  t.teardown(() => s.child.kill('SIGKILL'));
  await until(
    'the service to be ready on the port from .env',
    () => /"event":"starting"/.test(s.out()) || s.child.exitCode !== null,
    120_000,
  );
  const line = logLine(s.out(), 'starting') ?? {};
  t.equal(line.listen, `http://127.0.0.1:${port}`, 'PORT from .env');
  t.equal(line.dryRun, true, 'DRY_RUN from the environment, not from .env');
  t.equal(line.envFile, join(dir, '.env'));
  t.equal(line.adminAuth, true, 'ADMIN_TOKEN from .env');
  t.notMatch(`${s.out()}${s.err()}`, /building/, 'npm start did not compile');
  t.notMatch(s.out(), TOKEN, 'the token is not logged');
  let ok = false;
  const deadline = Date.now() + 60_000;
  while (!ok && Date.now() < deadline)
    ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
  t.ok(ok, 'listening');

  // The CLI, right after: the URL and the token from the same .env.
  const cli = spawned('npm', ['run', '--silent', 'cli', '--', 'status', '--json'], { cwd: dir, env });
  t.equal(await cli.exited, 0, `npm run cli -- status: ${cli.err()}`);
  t.ok(Array.isArray(JSON.parse(cli.out())), 'the status as JSON');
  const version = spawned('npm', ['run', '--silent', 'cli', '--', '--version'], { cwd: dir, env });
  t.equal(await version.exited, 0);
  t.match(version.out(), /^autoheal-nexus \d+\.\d+\.\d+\n$/);

  // SIGTERM to npm's own pid: npm passes it on, the server shuts down and exits, npm exits 0.
  s.child.kill('SIGTERM');
  t.equal(await s.exited, 0, 'npm start exits 0');
  t.match(s.out(), /"event":"stopped"/, 'the server shut down gracefully');
  const down = await fetch(`http://127.0.0.1:${port}/healthz`).then(
    () => false,
    () => true,
  );
  t.ok(down, 'nothing listens any more: no orphan');
});
