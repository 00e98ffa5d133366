// The audit log (LOG_FILE) is rotated by size and stays synchronous: with a small LOG_MAX_BYTES, many
// lines leave at most LOG_MAX_FILES files, each within the cap (a single line longer than the cap gets a
// file of its own), every line whole and in exactly one file, none lost among the files kept; each line
// is in the file when the log call returns.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { createLogger, loggerOptions } from '../../src/logger.js';
import { testConfig } from '../fixtures/config.js';

const quiet = () =>
  new Writable({
    write(_chunk, _enc, cb) {
      cb();
    },
  });

function tempDir(t: { teardown(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'autoheal-logrot-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The audit files, oldest first (file.N ... file.1, file), with their parsed lines. */
function auditFiles(dir: string, base = 'audit.log') {
  const names = readdirSync(dir).filter((f) => f === base || f.startsWith(`${base}.`));
  const rank = (f: string) => (f === base ? 0 : Number(f.slice(base.length + 1)));
  return names
    .sort((a, b) => rank(b) - rank(a))
    .map((name) => {
      const text = readFileSync(join(dir, name), 'utf8');
      return { name, size: statSync(join(dir, name)).size, text, lines: text.split('\n').filter(Boolean) };
    });
}

t.test(
  'many lines leave at most LOG_MAX_FILES files within LOG_MAX_BYTES, no line torn or lost',
  async (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'audit.log');
    const maxBytes = 8_192;
    const log = createLogger({ level: 'info', file, maxBytes, maxFiles: 4, stream: quiet() });
    const total = 3_000;
    for (let i = 0; i < total; i++) {
      // Lines of varying length, so that rotations fall at every kind of offset.
      log.info({ event: 'duplicate', seq: i, pad: 'x'.repeat((i * 37) % 300) }, 'an alert seen again');
    }
    const files = auditFiles(dir);
    t.equal(files.length, 4, 'LOG_MAX_FILES files: the current one and three rotated');
    t.same(
      files.map((f) => f.name),
      ['audit.log.3', 'audit.log.2', 'audit.log.1', 'audit.log'],
    );
    for (const f of files) {
      t.ok(f.size <= maxBytes, `${f.name}: ${f.size} bytes <= ${maxBytes}`);
      t.ok(f.text.endsWith('\n'), `${f.name} ends with a whole line`);
    }
    const seqs: number[] = [];
    for (const f of files) {
      for (const l of f.lines) {
        const parsed = JSON.parse(l) as { seq: number }; // throws on a torn line
        seqs.push(parsed.seq);
      }
    }
    t.equal(seqs.at(-1), total - 1, 'the newest line is the last written');
    t.ok(
      seqs.every((s, i) => i === 0 || s === (seqs[i - 1] as number) + 1),
      'the kept lines are one unbroken run: none lost or doubled across rotations',
    );
    // Files are filled: a rotated file is short of the cap by less than the next line.
    for (const f of files.slice(0, -1)) t.ok(f.size > maxBytes - 600, `${f.name} was filled before rotating`);
  },
);

t.test('each line is in the file when the log call returns (synchronous writes)', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'audit.log');
  const log = createLogger({ level: 'info', file, maxBytes: 4_096, maxFiles: 2, stream: quiet() });
  for (let i = 0; i < 200; i++) {
    log.info({ event: 'action', seq: i }, 'about to act');
    const last = readFileSync(file, 'utf8').trimEnd().split('\n').at(-1) ?? '';
    if (!last.includes(`"seq":${i}`)) {
      t.fail(`line ${i} was not on disk when log.info returned`);
      return;
    }
  }
  t.pass('every line was on disk before the next statement ran');
  t.equal(auditFiles(dir).length, 2);
});

t.test('a line longer than the cap gets a file of its own; an existing file is counted', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'audit.log');
  writeFileSync(file, `${JSON.stringify({ seq: 'before' })}\n`.padStart(3_000, ' '));
  const log = createLogger({ level: 'info', file, maxBytes: 4_096, maxFiles: 3, stream: quiet() });
  log.info({ seq: 'small' }, 'small');
  log.info({ seq: 'huge', pad: 'y'.repeat(10_000) }, 'huge');
  log.info({ seq: 'after' }, 'after');
  const files = auditFiles(dir);
  t.same(
    files.map((f) => f.lines.map((l) => (JSON.parse(l) as { seq: string }).seq)),
    [['before', 'small'], ['huge'], ['after']],
    'the huge line alone, whole',
  );
  t.ok((files[0]?.size ?? 0) <= 4_096, 'the existing file was not taken past the cap');
});

t.test('LOG_MAX_FILES=1 keeps the current file only', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'audit.log');
  const log = createLogger({ level: 'info', file, maxBytes: 4_096, maxFiles: 1, stream: quiet() });
  for (let i = 0; i < 500; i++) log.info({ seq: i }, 'line');
  const files = auditFiles(dir);
  t.same(
    files.map((f) => f.name),
    ['audit.log'],
  );
  t.ok((files[0]?.size ?? 0) <= 4_096);
  t.match(files[0]?.lines.at(-1), /"seq":499/);
  t.notOk(existsSync(`${file}.1`));
});

t.test('LOG_MAX_BYTES and LOG_MAX_FILES are settings with defaults, handed to the logger', async (t) => {
  const defaults = testConfig({});
  t.equal(defaults.logMaxBytes, 52_428_800, '50 MiB');
  t.equal(defaults.logMaxFiles, 5);
  const c = testConfig({ LOG_MAX_BYTES: '65536', LOG_MAX_FILES: '3', LOG_FILE: '/x/audit.log' });
  t.match(loggerOptions(c), { file: '/x/audit.log', maxBytes: 65_536, maxFiles: 3 });
  t.throws(() => testConfig({ LOG_MAX_BYTES: '100' }), /^LOG_MAX_BYTES: /);
  t.throws(() => testConfig({ LOG_MAX_FILES: '0' }), /^LOG_MAX_FILES: /);
});

t.test(
  'an audit line that cannot be written stops the caller (the action does not run)',
  {
    skip: existsSync('/dev/full') ? false : 'no /dev/full here',
  },
  async (t) => {
    const log = createLogger({ level: 'info', file: '/dev/full', stream: quiet() });
    t.throws(() => log.info({ event: 'action' }, 'about to act'), { code: 'ENOSPC' });
  },
);
