// DATA_DIR on a 64 KiB tmpfs, filled up (defect 4): an alert whose line does not fit is refused with 503,
// never acknowledged with 200 and a torn line; every alert answered 200 is on disk. After space is freed
// and the service restarted, the attempts, the cooldown and the de-duplication keys are all still there.
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import {
  containerRecord,
  decisionsOf,
  EventFollower,
  poll,
  postAlerts,
  readState,
  restartAlert,
  type Scenario,
  sleep,
} from '../harness.js';

/** Fills the file system of `path` with a file until it refuses one more byte. */
function fill(path: string): number {
  const fd = openSync(path, 'w');
  let n = 0;
  try {
    for (const size of [4096, 1]) {
      const chunk = Buffer.alloc(size, 0x78);
      for (;;) {
        try {
          const w = writeSync(fd, chunk);
          n += w;
          if (w < size) break;
        } catch {
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return n;
}

/** Lines of the state journal that are not a whole entry (torn or otherwise damaged). */
function tornLines(dataDir: string): Array<{ line: number; bytes: number }> {
  const path = `${dataDir}/state.journal`;
  if (!existsSync(path)) return [];
  const out: Array<{ line: number; bytes: number }> = [];
  const text = readFileSync(path, 'utf8');
  text.split('\n').forEach((l, i, all) => {
    if (!l) return;
    let ok = false;
    try {
      const e = JSON.parse(l) as { c?: unknown; k?: unknown };
      ok = typeof e.c === 'string' && typeof e.k === 'string';
    } catch {
      ok = false;
    }
    // A last line without its newline is torn even when it parses.
    if (!ok || (i === all.length - 1 && !text.endsWith('\n')))
      out.push({ line: i + 1, bytes: Buffer.byteLength(l) });
  });
  return out;
}

/** The whole, valid lines of the state journal. */
function wholeLines(dataDir: string): string[] {
  const path = `${dataDir}/state.journal`;
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  if (!text.endsWith('\n')) lines.pop();
  return lines.filter((l) => {
    try {
      const e = JSON.parse(l) as { c?: unknown };
      return typeof e.c === 'string';
    } catch {
      return false;
    }
  });
}

export const diskFull: Scenario = {
  name: 'disk-full',
  title: 'DATA_DIR on a full 64 KiB tmpfs: 503, no torn line, state survives (defect 4)',
  timeoutMs: 180_000,
  async run(ctx) {
    const events = await EventFollower.start(ctx);
    const dir = ctx.tmpDir('disk');
    const dataDir = `${dir}/data`;
    mkdirSync(dataDir);
    await ctx.mountTmpfs(dataDir, 'size=64k');
    // A long cooldown: after the restart of the service it must still hold.
    const env = { WATCHER_HEAL: 'false', RESTART_COOLDOWN: '600' };
    const c = await ctx.testContainer('disk');
    const t0 = Date.now();
    const s1 = await ctx.startSvc(env, dir);
    const first = restartAlert(c.name, 'disk-first', '2026-11-28T02:00:00Z');
    const { labels } = first;
    ctx.say('one alert acted on (attempt 1, cooldown 600 s, a de-duplication key)');
    const r0 = await postAlerts(s1.url, [first]);
    if (r0.status !== 200) throw new Error(`the first alert got ${r0.status}`);
    await ctx.resultRecorded(s1, c.name);
    await sleep(500);

    ctx.say('filling the tmpfs');
    const filled = fill(`${dataDir}/filler`);
    // Alerts with a 3 KB label until one does not fit: 200 only for those written whole.
    const blob = 'b'.repeat(3072);
    const answers: Array<{ status: number; fingerprint: string }> = [];
    for (let i = 0; i < 12; i++) {
      const fingerprint = `disk-big-${i}`;
      const r = await postAlerts(s1.url, [
        { labels: { ...labels, blob, n: String(i) }, fingerprint, startsAt: '2026-11-28T02:01:00Z' },
      ]);
      answers.push({ status: r.status, fingerprint });
      if (r.status !== 200 && answers.filter((a) => a.status !== 200).length >= 3) break;
    }
    await sleep(1000);
    const torn = tornLines(dataDir);
    const acked = answers.filter((a) => a.status === 200);
    // Acknowledged means the signal, 3 KB label and all, is in a whole journal line.
    const whole = wholeLines(dataDir);
    const ackedMissing = acked.filter(
      (a) => !whole.some((l) => l.includes(`"${a.fingerprint}"`) && l.includes(blob)),
    );
    const refused = answers.filter((a) => a.status === 503).length;
    const codes = answers.map((a) => a.status).join(',');
    ctx.check(
      'disk full: every 200 is on disk whole; an alert that does not fit gets 503',
      refused > 0 && ackedMissing.length === 0 && answers.every((a) => a.status === 200 || a.status === 503),
      `filler ${Math.round(filled / 1024)} KiB; webhook answers: ${codes}; answered 200 but not whole on disk: ${ackedMissing.length} of ${acked.length}`,
    );
    ctx.check(
      'disk full: no torn line in the journal',
      torn.length === 0,
      `torn or damaged journal lines: ${torn.length}${torn.length ? ` (${torn.map((t) => `line ${t.line}: ${t.bytes} B`).join(', ')})` : ''}`,
    );

    ctx.say('freeing the space and restarting the service');
    rmSync(`${dataDir}/filler`);
    // The service goes on after the space is back: new lines land after anything torn before.
    const later = { labels, fingerprint: 'disk-later', startsAt: '2026-11-28T02:03:00Z' };
    await postAlerts(s1.url, [later]);
    await poll(() => decisionsOf(s1, { fingerprint: 'disk-later' }).length > 0, 15_000);
    await sleep(500);
    const before = containerRecord(readState(dataDir), c.name);
    await s1.kill('SIGTERM');
    const s2At = Date.now();
    const s2 = await ctx.startSvc(env, dir);
    const after = readState(dataDir);
    const rec = containerRecord(after, c.name);
    const aside = readdirSync(dataDir).filter((f) => f.includes('corrupt'));
    // The second process's own output: its start-up replay of the journal.
    const corruptLog = /corrupt|moved aside/i.test(s2.output());

    // The same alert again (a duplicate), and a new firing of it (a new key) inside the cooldown.
    await postAlerts(s2.url, [first]);
    await postAlerts(s2.url, [{ ...first, startsAt: '2026-11-28T02:05:00Z', fingerprint: 'disk-first' }]);
    const ackedAgain = acked[0];
    if (ackedAgain) {
      await postAlerts(s2.url, [
        {
          labels: { ...labels, blob, n: '0' },
          fingerprint: ackedAgain.fingerprint,
          startsAt: '2026-11-28T02:01:00Z',
        },
      ]);
    }
    await poll(() => decisionsOf(s2, { container: c.name, sinceMs: s2At }).length >= 2, 20_000);
    await sleep(2000);
    const ds = decisionsOf(s2, { sinceMs: s2At });
    const firstDs = ds.filter((l) => l.fingerprint === 'disk-first').map((l) => String(l.reason));
    const bigDs = ackedAgain
      ? ds.filter((l) => l.fingerprint === ackedAgain.fingerprint).map((l) => String(l.reason))
      : [];
    const restarts = events.count(c.name, 'restart', t0);
    const attemptsKept = rec?.attempts === before?.attempts && Number(rec?.attempts) >= 1;
    const cooldownKept = typeof rec?.nextAllowedAt === 'number' && (rec.nextAllowedAt as number) > Date.now();
    ctx.check(
      'after freeing space and a restart: attempts, cooldown and de-duplication keys survive',
      aside.length === 0 &&
        !corruptLog &&
        attemptsKept &&
        cooldownKept &&
        firstDs.includes('duplicate') &&
        firstDs.includes('cooldown_active') &&
        !firstDs.includes('ok') &&
        (!ackedAgain || bigDs.includes('duplicate')) &&
        restarts === 1,
      `files moved aside: ${aside.length}; attempts ${String(before?.attempts)} → ${String(rec?.attempts)}; cooldown ${cooldownKept ? 'kept' : 'lost'}; re-sent alert: ${firstDs.join(', ') || 'no decision'}; a 200-acknowledged big alert re-sent: ${bigDs.join(', ') || 'n/a'}; engine restarts: ${restarts}`,
    );
    await s2.kill('SIGTERM');
  },
};
