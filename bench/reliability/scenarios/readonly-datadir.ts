// A read-only DATA_DIR (defect 13a): the service does not start, and says why in one line that names
// DATA_DIR, with exit code 2 (a configuration error), not a stack trace.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_TOKEN, WEBHOOK_TOKEN } from '../../../test/fixtures/app.js';
import { DOCKER_HOST } from '../../../test/fixtures/docker.js';
import { freePort } from '../../../test/fixtures/service.js';
import { BASE_ENV, type Scenario } from '../harness.js';

const ROOT = new URL('../../../', import.meta.url).pathname;

export const readOnlyDataDir: Scenario = {
  name: 'readonly-datadir',
  title: 'read-only DATA_DIR: one line naming DATA_DIR, exit code 2 (defect 13a)',
  timeoutMs: 60_000,
  async run(ctx) {
    const dir = ctx.tmpDir('ro');
    const dataDir = join(dir, 'data');
    mkdirSync(dataDir);
    await ctx.mountTmpfs(dataDir, 'ro,size=64k');
    const port = await freePort();
    const proc = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        ...BASE_ENV,
        DOCKER_HOST,
        PORT: String(port),
        HOST: '127.0.0.1',
        WEBHOOK_TOKEN,
        ADMIN_TOKEN,
        DATA_DIR: dataDir,
        LOG_FILE: join(dir, 'audit.log'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout?.on('data', (d) => {
      stdout += String(d);
    });
    proc.stderr?.on('data', (d) => {
      stderr += String(d);
    });
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    ctx.teardown(() => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    });
    const code = await Promise.race([
      exited,
      new Promise<'running'>((r) => setTimeout(() => r('running'), 30_000)),
    ]);
    const errLines = stderr.split('\n').filter((l) => l.trim());
    const stack = /\n\s+at\s/.test(`${stderr}\n${stdout}`);
    const line = errLines[0] ?? '';
    ctx.check(
      'read-only DATA_DIR: one line naming DATA_DIR, exit code 2',
      code === 2 && errLines.length === 1 && line.includes('DATA_DIR') && !stack,
      `exit ${code}; stderr ${errLines.length} line(s)${stack ? ' with a stack trace' : ''}: "${line.slice(0, 160)}"`,
    );
  },
};
