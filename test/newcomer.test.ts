// The README's "Your first heal", followed as written: its fenced commands are read from the README and
// run one by one (execFile with an argument array, no shell) against a live server and a real Docker
// engine. The engine is a private dockerd (test/fixtures/second-dockerd.ts), so the section's
// `--label autoheal.enable=true` container named "web" is the only one the server can see, and the
// server heals nothing of the tests running alongside; its `busybox` is the test image tagged so.
// The only change to a command is the port: the README's 9095 becomes the server's own.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import t from 'tap';
import { TEST_IMAGE } from './fixtures/docker.js';
import { freePort, REPO } from './fixtures/prom-stack.js';
import { startSecondDockerd } from './fixtures/second-dockerd.js';
import { sectionCommands } from './fixtures/readme.js';
import { shellWords } from './fixtures/shell-words.js';
import { spawnServer, until } from './fixtures/spawned.js';

const run = promisify(execFile);
const SECTION = '## Your first heal';
const WEBHOOK_TOKEN = 'newcomer-webhook-token-0123456789';
const ADMIN_TOKEN = 'newcomer-admin-token-0123456789';

t.test('shellWords splits as sh does, and refuses shell syntax', async (t) => {
  t.same(shellWords(`a 'b c' "d $X" $X e'f'g`, { X: 'x' }), ['a', 'b c', 'd x', 'x', 'efg']);
  t.same(shellWords(`sh -c 'trap "exit 0" TERM; sleep 1 & wait'`, {}), [
    'sh',
    '-c',
    'trap "exit 0" TERM; sleep 1 & wait',
  ]);
  t.throws(() => shellWords('a | b', {}));
  t.throws(() => shellWords('echo "$(id)"', {}));
});

t.test("the README's first heal, as written, on a live server and a real engine", async (t) => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const commands = sectionCommands(readme, SECTION);
  t.ok(commands.length >= 6, `the section has its commands (${commands.length})`);
  const [create, ...later] = commands;
  t.match(
    create,
    /^docker run .*--label autoheal\.enable=true .*busybox /,
    'it starts by labelling a container',
  );

  const engine = await startSecondDockerd(t);
  await run('docker', ['-H', engine.host, 'tag', TEST_IMAGE, 'busybox:latest']);
  const dir = mkdtempSync(join(tmpdir(), 'autoheal-newcomer-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const server = spawnServer({
    DOCKER_HOST: engine.host,
    PORT: String(port),
    WEBHOOK_TOKEN,
    ADMIN_TOKEN,
    DATA_DIR: join(dir, 'data'),
    LOG_FILE: join(dir, 'audit.log'),
  });
  t.teardown(async () => {
    server.child.kill('SIGTERM');
    await server.exited;
  });
  await until(
    'the server to listen',
    () => /"event":"docker_connected"/.test(server.out()) || server.child.exitCode !== null,
    120_000,
  );
  t.equal(server.child.exitCode, null, `the server runs: ${server.err()}`);

  // What a newcomer's terminal has: PATH, HOME, the engine (here the private one), and the .env
  // settings the CLI and the curl read.
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? dir,
    DOCKER_HOST: engine.host,
    PORT: String(port),
    ADMIN_TOKEN,
    WEBHOOK_TOKEN,
    npm_config_update_notifier: 'false',
  };
  const sh = async (command: string) => {
    const [file = '', ...args] = shellWords(command.replaceAll(':9095', `:${port}`), env);
    const r = await run(file, args, { cwd: REPO, env, maxBuffer: 8 * 1024 * 1024 });
    t.comment(`$ ${command.length > 110 ? `${command.slice(0, 110)}…` : command}\n${r.stdout.trimEnd()}`);
    return r.stdout;
  };
  t.teardown(() => run('docker', ['-H', engine.host, 'rm', '-f', 'web']).catch(() => undefined));

  await sh(create ?? '');
  const inspect = commands.find((c) => c.startsWith('docker inspect')) ?? '';
  for (let i = 0; i < 300 && (await sh(inspect)).trim() !== 'healthy'; i++) await sleep(200);
  t.equal((await sh(inspect)).trim(), 'healthy', 'healthy before it is broken');

  const status = commands.find((c) => c.includes('cli -- status')) ?? '';
  const brokenAt = Date.now();
  for (const command of later) {
    if (command === status) {
      // Healed and verified: the status shows the restart and its result (a bound for a stuck heal).
      let out = '';
      for (let i = 0; i < 120; i++) {
        out = await sh(command);
        if (/\bweb\b.*restart.*succeeded/.test(out)) break;
        await sleep(1000);
      }
      t.match(out, /\bweb\b.*restart.*succeeded/, 'npm run cli -- status shows the verified restart');
      t.comment(`broken → healed and verified in ${((Date.now() - brokenAt) / 1000).toFixed(1)} s`);
      continue;
    }
    const out = await sh(command);
    if (command.startsWith('docker exec')) continue;
    if (command.includes('incidents')) t.match(out, /web/, 'the incident of web');
    if (command.startsWith('curl ')) t.match(JSON.parse(out), { status: 'accepted', accepted: 1 });
  }
  t.equal((await sh(inspect)).trim(), 'healthy', 'healthy again');
  const audit = readFileSync(join(dir, 'audit.log'), 'utf8');
  t.match(audit, /"container":"web"/, 'the audit log has it');
  t.notMatch(audit + server.out(), new RegExp(`${ADMIN_TOKEN}|${WEBHOOK_TOKEN}`), 'no token in the logs');
});
