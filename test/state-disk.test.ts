// Durable state on a real disk that runs out of room or is read-only (issue 10, defects 4 and 13a), and
// state that stays bounded (defect 10): writes are complete or refused, recovery keeps every entry,
// a DATA_DIR the service cannot use stops it with one line that says what to do, and pruning holds
// the caps on disk as well as in memory.
//
// The disk tests mount small tmpfs file systems (root is needed; this suite runs as root in CI).
import { execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  statSync,
  truncateSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { emptyRecord, type Signal } from '../src/core/types.js';
import { Journal, StateWriteError } from '../src/state/journal.js';
import {
  DEDUP_TTL_MS,
  type Incident,
  MAX_CLOSED_INCIDENTS,
  MAX_REMEDIATIONS,
  type RemediationRecord,
  Store,
} from '../src/state/store.js';
import { ADMIN_TOKEN, amPayload, bearer, testApp, WEBHOOK_TOKEN } from './fixtures/app.js';
import { ManualClock } from './fixtures/clock.js';
import { refusingDisk } from './fixtures/disk.js';
import { DOCKER_HOST, waitFor } from './fixtures/docker.js';
import { freePort, startService } from './fixtures/service.js';

const ROOT = new URL('..', import.meta.url).pathname;
const PAGE = 4096;

interface Teardown {
  teardown(fn: () => unknown): void;
}

const quietLog = () => {
  const seen: string[] = [];
  return {
    seen,
    error: (_o: object, m: string) => seen.push(m),
    warn: (_o: object, m: string) => seen.push(m),
  };
};

/** Mounts a tmpfs with the given options on a new directory; unmounted in teardown. */
function mountTmpfs(t: Teardown, options: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'state-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
  t.teardown(() => {
    // Lazy: a descriptor still open in this process must not fail the teardown.
    execFileSync('umount', ['-l', dir]);
    rmdirSync(dir);
  });
  return dir;
}

function canMount(): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'state-disk-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', dir], { stdio: 'pipe' });
    execFileSync('umount', [dir]);
    return undefined;
  } catch (err) {
    return `mounting a tmpfs is not permitted here (${(err as Error).message.split('\n')[0]}); the disk tests need root`;
  } finally {
    rmdirSync(dir);
  }
}

/** Fills the file system until it refuses, then frees `leave` bytes; returns the filler's path. */
function fill(dir: string, leave = 0): string {
  const path = join(dir, 'filler');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(PAGE, 0x61);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  const size = statSync(path).size;
  if (leave) truncateSync(path, Math.max(0, size - leave));
  return path;
}

type Checks = Pick<typeof t, 'ok' | 'same'>;

/** Every line of a journal file is a whole entry and the file ends with a newline. */
function assertNoTornLine(t: Checks, path: string): void {
  const text = readFileSync(path, 'utf8');
  t.ok(text === '' || text.endsWith('\n'), `${path} ends with a whole line`);
  const bad = text
    .split('\n')
    .filter(Boolean)
    .filter((l) => {
      try {
        const e = JSON.parse(l) as { c?: unknown; k?: unknown };
        return typeof e.c !== 'string' || typeof e.k !== 'string';
      } catch {
        return true;
      }
    });
  t.same(bad, [], 'no torn or partial line on disk');
}

const signal = (id: string, labels: Record<string, string> = {}): Signal => ({
  id,
  source: 'alertmanager',
  status: 'firing',
  receivedAt: Date.UTC(2026, 0, 1),
  condition: 'alert',
  target: { kind: 'container', name: 'web' },
  action: 'restart',
  params: {},
  labels: { alertname: 'ContainerDown', container: 'web', ...labels },
  annotations: {},
  alertname: 'ContainerDown',
  fingerprint: id,
});

const cannotMount = canMount();

t.test(
  'disk full: the write is refused, no torn line, every earlier entry survives',
  { skip: cannotMount },
  async (t) => {
    const mnt = mountTmpfs(t, 'size=64k');
    const dir = join(mnt, 'data');
    const store = new Store(dir, quietLog());
    t.teardown(() => store.close());
    const now = Date.UTC(2026, 0, 1);
    // The state a restart inside a cooldown would need: attempts, cooldown, de-duplication keys.
    t.ok(store.claim('am:fp-1', now));
    t.ok(store.claim('am:fp-2', now));
    const record = {
      ...emptyRecord('web'),
      attempts: 2,
      failures: 1,
      lastActionAt: now,
      nextAllowedAt: now + 600_000,
    };
    store.putRecord(record);
    const incidentId = store.openIncident('web', signal('s1'), now);
    store.putRemediation({
      id: 'r1',
      target: 'web',
      action: 'restart',
      state: 'succeeded',
      source: 'alertmanager',
      createdAt: now,
      updatedAt: now,
    });
    const journal = join(dir, 'state.journal');
    const before = readFileSync(journal);

    // One page free, and an alert whose line is larger: the kernel takes a part of it, then refuses.
    const filler = fill(mnt, PAGE);
    const big = signal('s-big', { note: 'x'.repeat(8 * 1024), more: 'y'.repeat(8 * 1024) });
    const err = t.throws(() =>
      store.batch(() => {
        store.claim('am:fp-big', now);
        store.accept(big);
      }),
    ) as unknown;
    t.ok(err instanceof StateWriteError, 'StateWriteError: the caller does not acknowledge');
    t.equal((err as StateWriteError).code, 'ENOSPC');
    t.same(readFileSync(journal), before, 'the journal is exactly as before the refused write');
    assertNoTornLine(t, journal);
    t.notOk(store.journal.collection('dedup').has('am:fp-big'), 'the claim was taken back');
    t.same(store.pending(), [], 'the signal was not accepted');

    // Space is freed; the service goes on, then dies (no close) and starts again.
    unlinkSync(filler);
    t.ok(store.claim('am:fp-3', now), 'writes work again');
    assertNoTornLine(t, journal);
    const log = quietLog();
    const again = new Store(dir, log);
    t.teardown(() => again.close());
    t.same(log.seen, [], 'nothing corrupt, nothing skipped, nothing moved aside');
    for (const k of ['am:fp-1', 'am:fp-2', 'am:fp-3']) {
      t.equal(again.claim(k, now), false, `${k} is still a duplicate`);
    }
    t.same(again.record('web'), { ...record, incidentId }, 'attempts and cooldown kept');
    t.equal(again.incident(incidentId)?.container, 'web', 'the incident kept');
    t.equal(again.remediation('r1')?.state, 'succeeded', 'the remediation kept');
    t.equal(again.claim('am:fp-big', now), true, 'the refused alert was never recorded: its retry is new');
  },
);

t.test(
  'start-up on a disk that is still full: every entry is replayed, a torn tail is cut',
  { skip: cannotMount },
  async (t) => {
    const mnt = mountTmpfs(t, 'size=64k');
    const dir = join(mnt, 'data');
    const first = new Store(dir, quietLog());
    const now = Date.UTC(2026, 0, 1);
    for (let i = 0; i < 20; i++) first.claim(`am:fp-${i}`, now);
    first.putRecord({ ...emptyRecord('web'), attempts: 3, nextAllowedAt: now + 60_000 });
    first.close();
    // Killed mid-write (the line never finished), then the disk filled up while the service was down.
    const journal = join(dir, 'state.journal');
    writeFileSync(journal, `${readFileSync(journal, 'utf8')}{"c":"dedup","k":"am:torn","v":`);
    const filler = fill(mnt);

    const log = quietLog();
    const store = new Store(dir, log);
    t.teardown(() => store.close());
    t.match(log.seen.join('\n'), /torn last line/);
    t.match(log.seen.join('\n'), /cannot compact the state journal at start-up .*no space left.*appending/);
    t.notMatch(log.seen.join('\n'), /corrupt/);
    for (let i = 0; i < 20; i++) t.equal(store.claim(`am:fp-${i}`, now), false);
    t.equal(store.record('web')?.attempts, 3);
    t.notOk(store.journal.collection('dedup').has('am:torn'));
    assertNoTornLine(t, journal);
    t.throws(() => store.accept(signal('s-big', { note: 'x'.repeat(8000) })), StateWriteError);
    assertNoTornLine(t, journal);

    unlinkSync(filler);
    t.ok(store.claim('am:after', now));
    const again = new Store(dir, quietLog());
    t.teardown(() => again.close());
    t.equal(again.claim('am:fp-0', now), false);
    t.equal(again.claim('am:after', now), false);
    t.equal(again.record('web')?.attempts, 3);
  },
);

t.test(
  'webhook on a full disk: 503 (Alertmanager retries), no torn line, the retry is accepted',
  { skip: cannotMount },
  async (t) => {
    const mnt = mountTmpfs(t, 'size=64k');
    // The audit log elsewhere: only the state is on the small disk.
    const h = await testApp(t, { dataDir: mnt, env: { LOG_FILE: '' } });
    const post = (payload: unknown) =>
      h.app.inject({
        method: 'POST',
        url: '/webhooks/alertmanager',
        payload: payload as object,
        headers: bearer(),
      });
    const small = amPayload([
      { labels: { alertname: 'X', container: 'nope-disk' }, fingerprint: 'disk-small' },
    ]);
    t.equal((await post(small)).statusCode, 200);
    await waitFor('the first alert to be decided', async () => h.store.pending().length === 0);

    const journal = join(h.config.dataDir, 'state.journal');
    const filler = fill(mnt, PAGE);
    const before = readFileSync(journal);
    // A large label and annotation: more than the room left, so the kernel takes part and refuses the rest.
    const big = amPayload([
      {
        labels: { alertname: 'X', container: 'nope-disk', detail: 'x'.repeat(8 * 1024) },
        annotations: { summary: 'y'.repeat(8 * 1024) },
        fingerprint: 'disk-big',
      },
    ]);
    const refused = await post(big);
    t.equal(refused.statusCode, 503);
    t.equal(refused.json().error, 'state_unavailable');
    t.same(readFileSync(journal), before, 'nothing of the refused alert is on disk');
    assertNoTornLine(t, journal);

    unlinkSync(filler);
    const retry = await post(big);
    t.equal(retry.statusCode, 200);
    t.same(retry.json(), { status: 'accepted', accepted: 1, duplicates: 0 });
    t.same((await post(small)).json(), { status: 'accepted', accepted: 0, duplicates: 1 }, 'dedup key kept');
    assertNoTornLine(t, journal);
  },
);

// --- A DATA_DIR the service cannot use (defect 13a) ----------------------------------------------------

interface Exit {
  code: number | null;
  out: string;
}

async function runServer(env: Record<string, string>): Promise<Exit> {
  const port = await freePort();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        DOCKER_HOST,
        PORT: String(port),
        HOST: '127.0.0.1',
        WEBHOOK_TOKEN,
        ADMIN_TOKEN,
        LOG_FILE: '',
        LOG_LEVEL: 'info',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += String(d);
    });
    child.stderr.on('data', (d) => {
      out += String(d);
    });
    // A bound so a service that starts after all does not hang the suite (not a timing assertion).
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

t.test(
  'a read-only DATA_DIR stops the service with one line naming it, and exit code 2',
  { skip: cannotMount },
  async (t) => {
    const mnt = mountTmpfs(t, 'size=64k');
    // A volume that holds state and was then mounted read-only.
    const seeded = new Journal({ dir: mnt, name: 'state', log: quietLog() }).open();
    seeded.put('dedup', 'am:fp', Date.now() + DEDUP_TTL_MS);
    seeded.close();
    execFileSync('mount', ['-o', 'remount,ro', mnt]);

    for (const dataDir of [mnt, join(mnt, 'not-yet-created')]) {
      const run = await runServer({ DATA_DIR: dataDir });
      t.equal(run.code, 2, `exit code 2 for ${dataDir}`);
      const lines = run.out.split('\n').filter(Boolean);
      const line = lines.find((l) => l.includes('DATA_DIR')) ?? '';
      t.match(line, `DATA_DIR ${dataDir} cannot be used`, 'names DATA_DIR and the path');
      t.match(line, /EROFS: read-only file system/, 'says why, in words');
      t.match(line, `Mount a writable volume at ${dataDir} or set DATA_DIR to a writable directory`);
      t.notMatch(run.out, /\n\s+at /, 'no stack trace');
      t.notMatch(run.out, /fatal/);
    }
  },
);

t.test(
  'a LOG_FILE that cannot be written stops the service with one line naming it, and exit code 2',
  { skip: cannotMount },
  async (t) => {
    const mnt = mountTmpfs(t, 'size=64k,ro');
    const dataDir = mkdtempSync(join(tmpdir(), 'ah-logro-'));
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
    const logFile = join(mnt, 'logs', 'auto_repair.log');
    const run = await runServer({ DATA_DIR: dataDir, LOG_FILE: logFile });
    t.equal(run.code, 2, 'exit code 2');
    const line = run.out.split('\n').find((l) => l.includes('LOG_FILE')) ?? '';
    t.match(line, `LOG_FILE ${logFile} cannot be written`, 'names LOG_FILE and the path');
    t.match(line, /EROFS|ENOENT/, 'says why');
    t.match(line, 'set LOG_FILE= (empty) to log to stdout only', 'says what to do');
    t.notMatch(run.out, /\n\s+at /, 'no stack trace');
  },
);

// --- Pruning: the caps and the de-duplication expiry are enforced (defect 10) ----------------------------

function stateBytes(dir: string): number {
  return readdirSync(dir)
    .filter((f) => f.startsWith('state.'))
    .reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

const closedIncident = (n: number, at: number): Incident => ({
  id: `i${n}`,
  container: 'web',
  openedAt: at,
  closedAt: at,
  status: 'recovered',
  events: [{ at, type: 'note', result: 'recovered' }],
});

const remediation = (n: number, at: number, state: RemediationRecord['state']): RemediationRecord => ({
  id: `r${n}`,
  target: 'web',
  action: 'restart',
  state,
  source: 'alertmanager',
  createdAt: at,
  updatedAt: at,
});

t.test('pruning drops what is past its limits, keeps the rest, and the files shrink', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'state-prune-'));
  const clock = new ManualClock();
  const t0 = clock.now();
  const store = new Store(dir, quietLog());
  const OLD_KEYS = 20_000;
  const EXTRA = 50;
  store.batch(() => {
    for (let i = 0; i < OLD_KEYS; i++) store.claim(`am:old-${i}`, t0);
    for (let i = 0; i < MAX_CLOSED_INCIDENTS + EXTRA; i++) store.putIncident(closedIncident(i, t0 + i));
    // The oldest of all, but open / still running: never pruned.
    store.putIncident({ id: 'open', container: 'db', openedAt: t0 - 1, status: 'open', events: [] });
    for (let i = 0; i < MAX_REMEDIATIONS + EXTRA; i++)
      store.putRemediation(remediation(i, t0 + i, 'succeeded'));
    store.putRemediation({ ...remediation(-1, t0 - 1, 'running'), id: 'running' });
  });
  clock.advance(DEDUP_TTL_MS - 60_000);
  t.ok(store.claim('am:fresh', clock.now()));
  store.journal.compact();
  const bytesBefore = stateBytes(dir);

  clock.advance(60_000); // the old keys are 7 days old now
  store.startPruning(clock, 3_600_000);
  t.teardown(() => store.close());

  const dedup = store.journal.collection('dedup');
  t.equal(dedup.size, 1, 'expired de-duplication keys are gone');
  t.ok(dedup.has('am:fresh'), 'a key inside its 7 days is kept');
  const incidents = store.listIncidents();
  t.equal(incidents.filter((i) => i.closedAt !== undefined).length, MAX_CLOSED_INCIDENTS);
  t.notOk(store.incident('i0'), 'the oldest closed incidents go first');
  t.ok(store.incident(`i${EXTRA}`), 'the newest are kept');
  t.ok(store.incident('open'), 'an open incident is kept');
  t.equal(store.listRemediations().length, MAX_REMEDIATIONS + 1);
  t.notOk(store.remediation('r0'));
  t.ok(store.remediation(`r${EXTRA}`));
  t.ok(store.remediation('running'), 'a remediation under way is kept');

  // The files shrink: pruning starts a compaction in the background.
  await waitFor('the compaction after pruning', async () => !existsSync(join(dir, 'state.journal.prev')));
  t.notMatch(readFileSync(join(dir, 'state.snapshot.jsonl'), 'utf8'), /am:old-/);
  t.ok(stateBytes(dir) < bytesBefore, `state files shrank (${bytesBefore} → ${stateBytes(dir)} bytes)`);

  store.close();
  const again = new Store(dir, quietLog());
  t.teardown(() => again.close());
  t.equal(again.journal.collection('dedup').size, 1);
  t.equal(again.listIncidents().length, MAX_CLOSED_INCIDENTS + 1);
  t.equal(again.listRemediations().length, MAX_REMEDIATIONS + 1);
  t.notOk(again.incident('i0'));
  t.ok(again.remediation('running'));
});

t.test('the prune timer enforces the limits while the service runs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'state-prune-'));
  const clock = new ManualClock();
  const store = new Store(dir, quietLog());
  t.teardown(() => store.close());
  store.claim('am:k', clock.now());
  store.startPruning(clock, 20);
  t.ok(store.journal.collection('dedup').has('am:k'), 'not expired yet');
  clock.advance(DEDUP_TTL_MS);
  await waitFor(
    'the timer to prune the expired key',
    async () => !store.journal.collection('dedup').has('am:k'),
  );
  store.close();
  t.notOk(new Store(dir, quietLog()).journal.collection('dedup').has('am:k'), 'and it stays gone');
});

t.test('a prune the disk refuses removes nothing and is logged', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'state-prune-'));
  const clock = new ManualClock();
  const log = quietLog();
  const disk = refusingDisk();
  const store = new Store(dir, log, { write: disk.write });
  t.teardown(() => store.close());
  store.claim('am:k', clock.now());
  clock.advance(DEDUP_TTL_MS);
  disk.refusing = true;
  store.startPruning(clock, 3_600_000);
  t.ok(store.journal.collection('dedup').has('am:k'), 'rolled back with the refused write');
  t.match(log.seen.join('\n'), /cannot prune the state/);
  disk.refusing = false;
});

t.test('the service prunes at start-up', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'autoheal-svc-'));
  const data = join(dir, 'data');
  mkdirSync(data);
  // Left by a run that never pruned: a key expired long ago, one still live.
  writeFileSync(
    join(data, 'state.snapshot.jsonl'),
    `${JSON.stringify({ c: 'dedup', k: 'am:expired', v: Date.now() - 1000 })}\n` +
      `${JSON.stringify({ c: 'dedup', k: 'am:live', v: Date.now() + DEDUP_TTL_MS })}\n`,
  );
  const svc = await startService(t, { WATCHER_HEAL: 'false' }, dir);
  t.equal(await svc.kill('SIGTERM'), 0);
  const state = new Journal({ dir: data, name: 'state', log: quietLog() }).open();
  t.teardown(() => state.close());
  t.notOk(state.collection('dedup').has('am:expired'), 'the expired key was pruned');
  t.ok(state.collection('dedup').has('am:live'));
});
