#!/usr/bin/env node
// A smoke start of the built service under whichever node runs this script (.ci/run runs it under
// Node 24): it starts dist/src/server.js on a free port with a throw-away state directory and no
// healing, waits for /healthz and /readyz, sends SIGTERM, and expects a clean exit 0. Exit 1 with the
// service's output otherwise.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const root = new URL('..', import.meta.url).pathname;
const port = await new Promise((resolve) => {
  const srv = createServer();
  srv.listen(0, '127.0.0.1', () => {
    const { port: p } = srv.address();
    srv.close(() => resolve(p));
  });
});
const dir = mkdtempSync(join(tmpdir(), 'autoheal-smoke-'));
const child = spawn(process.execPath, ['dist/src/server.js'], {
  cwd: root,
  env: {
    PATH: process.env.PATH,
    PORT: String(port),
    DATA_DIR: join(dir, 'data'),
    LOG_FILE: '',
    WATCHER_HEAL: 'false',
    DRY_RUN: 'true',
    ...(process.env.DOCKER_HOST ? { DOCKER_HOST: process.env.DOCKER_HOST } : {}),
  },
  stdio: ['ignore', 'pipe', 'pipe'],
});
let out = '';
child.stdout.on('data', (d) => {
  out += d;
});
child.stderr.on('data', (d) => {
  out += d;
});
const fail = (why) => {
  process.stderr.write(`smoke start under node ${process.version}: ${why}\n${out}\n`);
  child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  process.exit(1);
};
const get = (path) =>
  fetch(`http://127.0.0.1:${port}${path}`).then(
    (r) => r.status,
    () => 0,
  );
const deadline = Date.now() + 120_000;
while ((await get('/readyz')) !== 200) {
  if (child.exitCode !== null) fail(`exited ${child.exitCode}`);
  if (Date.now() > deadline) fail('/readyz did not answer 200 within 120 s');
  await sleep(200);
}
if ((await get('/healthz')) !== 200) fail('/healthz is not 200');
const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
child.kill('SIGTERM');
const code = await exited;
rmSync(dir, { recursive: true, force: true });
if (code !== 0) fail(`exit ${code} after SIGTERM`);
process.stdout.write(`smoke start under node ${process.version}: ready, /healthz and /readyz 200, SIGTERM → exit 0\n`);
