// Start-up as a newcomer meets it, with a real spawned server: a taken port is one line naming PORT
// and HOST (no EADDRINUSE stack), a refused Docker socket names its group and the fix, a SCHEDULES
// target that names no container stops the start, and the start-up line says what is where.
import { chownSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { freePort, REPO } from './fixtures/prom-stack.js';
import { logLine, spawnServer, until } from './fixtures/spawned.js';

const SOCKET = '/var/run/docker.sock';

const startServer = (env: Record<string, string>, o: { uid?: number; gid?: number } = {}) =>
  spawnServer(
    { LOG_FILE: '', WATCHER_HEAL: 'false', DRY_RUN: 'true', ...env },
    o.uid !== undefined ? { uid: o.uid, gid: o.gid ?? o.uid } : {},
  );

function tempDir(t: { teardown(fn: () => void): void }, uid?: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'autoheal-startup-'));
  if (uid !== undefined) chownSync(dir, uid, uid);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('a taken port: one line naming PORT and HOST, exit 2, no stack', async (t) => {
  const port = await freePort();
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(port, '127.0.0.1', resolve));
  t.teardown(() => holder.close());
  const s = startServer({ PORT: String(port), DATA_DIR: tempDir(t) });
  t.teardown(() => s.child.kill('SIGKILL'));
  t.equal(await s.exited, 2);
  const lines = s.err().trim().split('\n');
  t.equal(lines.length, 1, `one line: ${s.err()}`);
  t.match(
    lines[0],
    new RegExp(
      `^autoheal-nexus: PORT ${port} on HOST 127\\.0\\.0\\.1 is already in use .*set PORT to a free port`,
    ),
  );
  t.notMatch(s.err(), /EADDRINUSE|at .*\.ts:\d+/, 'no raw error, no stack');
});

t.test('a SCHEDULES target that names no container is refused at start', async (t) => {
  const ghost = `autoheal-no-such-${process.pid}-${Date.now()}`;
  const s = startServer({
    PORT: String(await freePort()),
    DATA_DIR: tempDir(t),
    SCHEDULES: `0 3 * * *=restart:${ghost}`,
  });
  t.teardown(() => s.child.kill('SIGKILL'));
  t.equal(await s.exited, 2);
  t.match(
    s.err(),
    `autoheal-nexus: configuration error: SCHEDULES: entry 1 "0 3 * * *=restart:${ghost}": no container named "${ghost}" on this engine`,
  );
});

t.test('the start-up line says where the audit log and the state are, and what is on', async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const s = startServer({
    PORT: String(port),
    DATA_DIR: join(dir, 'state'),
    LOG_FILE: join(dir, 'audit.log'),
    TELEGRAM_BOT_TOKEN: '123456:ABCDEF-not-a-real-token',
  });
  t.teardown(() => s.child.kill('SIGKILL'));
  await until('the starting line', () => /"event":"starting"/.test(s.out()) || s.child.exitCode !== null);
  const line = (logLine(s.out(), 'starting') ?? {}) as Record<string, string>;
  t.equal(line.auditLog, join(dir, 'audit.log'));
  t.equal(line.state, join(dir, 'state'));
  t.equal(line.telegram, false, 'a bot token without a chat id: off, as the notifier line says');
  t.match(line.msg, /channels: telegram off \(TELEGRAM_CHAT_ID is empty\)/);
  t.match(s.out(), /Telegram notifier off/);
  t.notMatch(s.out(), /ABCDEF-not-a-real-token/, 'the token is not logged');
  s.child.kill('SIGTERM');
  t.equal(await s.exited, 0);
});

t.test('EACCES on the Docker socket: its group id and the exact fix', async (t) => {
  const st = statSync(SOCKET);
  const nobody = 65534;
  if (st.gid === nobody || (st.mode & 0o006) !== 0) {
    t.pass('the socket is open to everyone here: no EACCES to provoke');
    return;
  }
  const dir = tempDir(t, nobody);
  const port = await freePort();
  const s = startServer(
    { PORT: String(port), DATA_DIR: join(dir, 'state'), TSX_TSCONFIG_PATH: join(REPO, 'tsconfig.json') },
    { uid: nobody, gid: nobody },
  );
  t.teardown(() => s.child.kill('SIGKILL'));
  await until(
    'the docker_unreachable line',
    () => /"event":"docker_unreachable"/.test(s.out()) || s.child.exitCode !== null,
  );
  const line = (logLine(s.out(), 'docker_unreachable') ?? {}) as Record<string, string>;
  t.match(line.msg, `EACCES ${SOCKET}`);
  t.match(line.msg, `${SOCKET} belongs to group ${st.gid} and this process (uid ${nobody}`);
  t.match(line.msg, `--group-add ${st.gid}`);
  t.match(line.msg, `DOCKER_GID=${st.gid}`);
  const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
  t.equal(ready.status, 503);
  t.match((await ready.json()).reason, `--group-add ${st.gid}`, '/readyz says the same');
  s.child.kill('SIGTERM');
  await s.exited;
});
