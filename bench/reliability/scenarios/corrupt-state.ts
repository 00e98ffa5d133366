// A bad line in the middle of the state journal (defect 4): the service starts, keeps every valid entry
// (before and after the bad line), and says which line it skipped.
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import {
  containerRecord,
  decisionsOf,
  outputLine,
  poll,
  postAlerts,
  readState,
  restartAlert,
  type Scenario,
  sleep,
} from '../harness.js';

const KEPT = ['containers', 'dedup', 'incidents', 'remediations', 'inbox'];

/**
 * The state the second process recovered: the snapshot it writes once it has replayed the files (so
 * nothing it did since is mixed in), or everything on disk if it wrote none.
 */
function recovered(dataDir: string, since: number) {
  const snap = `${dataDir}/state.snapshot.jsonl`;
  if (existsSync(snap) && statSync(snap).mtimeMs >= since - 1000) {
    const only = mkdtempSync('/tmp/ahrel-snap-');
    try {
      copyFileSync(snap, `${only}/state.snapshot.jsonl`);
      return { state: readState(only), from: 'its start-up snapshot' };
    } finally {
      rmSync(only, { recursive: true, force: true });
    }
  }
  return { state: readState(dataDir), from: 'the files on disk' };
}

export const corruptState: Scenario = {
  name: 'corrupt-state',
  title: 'a bad line in the middle of the journal: valid entries kept, the skip reported (defect 4)',
  timeoutMs: 120_000,
  async run(ctx) {
    const dir = ctx.tmpDir('corrupt');
    const dataDir = `${dir}/data`;
    const env = { WATCHER_HEAL: 'false', RESTART_COOLDOWN: '600' };
    const c = await ctx.testContainer('corr');
    const s1 = await ctx.startSvc(env, dir);
    const alert = restartAlert(c.name, 'corrupt-1', '2026-11-28T03:00:00Z');
    if ((await postAlerts(s1.url, [alert])).status !== 200) throw new Error('the alert was not accepted');
    await ctx.resultRecorded(s1, c.name);
    await sleep(500);
    await s1.kill('SIGTERM');

    // What a correct recovery must give back: the state as it was, read before the damage.
    const expected = readState(dataDir);
    const journal = `${dataDir}/state.journal`;
    const lines = readFileSync(journal, 'utf8').split('\n').filter(Boolean);
    if (lines.length < 3) throw new Error(`the journal has only ${lines.length} lines`);
    const at = Math.floor(lines.length / 2);
    const bad = '{"c":"containers","k":"half-written","v":{"attempts":';
    writeFileSync(journal, `${[...lines.slice(0, at), bad, ...lines.slice(at)].join('\n')}\n`);
    const badLine = at + 1;
    ctx.say(`bad line inserted at line ${badLine} of ${lines.length + 1}`);

    const s2At = Date.now();
    const s2 = await ctx.startSvc(env, dir);
    const { state: got, from } = recovered(dataDir, s2At);
    let want = 0;
    let kept = 0;
    const lost: string[] = [];
    for (const col of KEPT) {
      const exp = expected.data.get(col) ?? new Map<string, unknown>();
      const have = got.data.get(col) ?? new Map<string, unknown>();
      for (const [key, value] of exp) {
        want++;
        if (JSON.stringify(have.get(key)) === JSON.stringify(value)) kept++;
        else lost.push(`${col}/${key.slice(0, 20)}${have.has(key) ? ' (older value)' : ''}`);
      }
      // An entry the damage brought back (e.g. an inbox signal whose processed mark was lost).
      for (const key of have.keys()) if (!exp.has(key)) lost.push(`${col}/${key.slice(0, 20)} (revived)`);
    }
    const attemptsBefore = containerRecord(expected, c.name)?.attempts;
    const attemptsAfter = containerRecord(got, c.name)?.attempts;
    // The skip, in the second process's own output: a warning or error naming the line.
    const { line: reportLine, msg } = outputLine(
      s2,
      (l) =>
        /"level":"(warn|error|fatal)"/.test(l) &&
        (new RegExp(`line[^0-9\\n]{0,4}${badLine}\\b`).test(l) ||
          new RegExp(`"skippedLines":\\[[^\\]]*\\b${badLine}\\b`).test(l)),
    );
    ctx.check(
      'corrupt journal: every valid entry is kept',
      want > 0 && kept === want && lost.length === 0 && attemptsAfter === attemptsBefore,
      `${from}: ${kept} of ${want} entries as they were${lost.length ? ` (lost: ${lost.slice(0, 3).join(', ')}${lost.length > 3 ? ', …' : ''})` : ''}; attempts ${String(attemptsBefore)} → ${String(attemptsAfter)}`,
    );
    ctx.check(
      'corrupt journal: the skip is reported',
      Boolean(reportLine),
      reportLine
        ? `log: "${msg.slice(0, 140)}${msg.length > 140 ? '…' : ''}"`
        : `no warning or error naming line ${badLine}`,
    );

    // The kept de-duplication key and cooldown at work: the re-sent alert is a duplicate.
    await postAlerts(s2.url, [alert]);
    const resent = { fingerprint: 'corrupt-1', sinceMs: s2At };
    await poll(() => decisionsOf(s2, resent).length > 0, 10_000);
    const reasons = decisionsOf(s2, resent).map((l) => String(l.reason));
    ctx.check(
      'corrupt journal: the service runs on the kept state',
      reasons.length > 0 && reasons.every((r) => r === 'duplicate'),
      `the alert re-sent after the restart: ${reasons.join(', ') || 'no decision'}`,
    );
    await s2.kill('SIGTERM');
  },
};
