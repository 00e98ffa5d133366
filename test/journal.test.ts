// Durable state: survives a reopen, tolerates a torn last line, moves a corrupt file aside.
import { appendFileSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Journal, StateWriteError } from '../src/state/journal.js';

const quietLog = () => {
  const seen: string[] = [];
  return {
    seen,
    error: (_o: object, m: string) => seen.push(m),
    warn: (_o: object, m: string) => seen.push(m),
  };
};

t.test('values survive a reopen, deletes too', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'journal-'));
  const j = new Journal({ dir, name: 's', log: quietLog() }).open();
  j.put('a', 'k1', { n: 1 });
  j.put('a', 'k2', { n: 2 });
  j.del('a', 'k1');
  // No close: as after kill -9.
  const again = new Journal({ dir, name: 's', log: quietLog() }).open();
  t.same([...again.collection('a').entries()], [['k2', { n: 2 }]]);
});

t.test('compaction keeps every value', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'journal-'));
  const j = new Journal({ dir, name: 's', log: quietLog(), compactEvery: 10 }).open();
  for (let i = 0; i < 55; i++) j.put('a', `k${i % 20}`, i);
  const again = new Journal({ dir, name: 's', log: quietLog() }).open();
  t.equal(again.collection('a').size, 20);
  t.equal(again.collection('a').get('k14'), 54);
});

t.test('a torn last line is ignored', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'journal-'));
  const j = new Journal({ dir, name: 's', log: quietLog() }).open();
  j.put('a', 'k', 1);
  appendFileSync(join(dir, 's.journal'), '{"c":"a","k":"x","v":');
  const log = quietLog();
  const again = new Journal({ dir, name: 's', log }).open();
  t.equal(again.collection('a').get('k'), 1);
  t.equal(again.collection('a').has('x'), false);
  t.match(log.seen.join(), /torn/);
});

t.test('a corrupt snapshot is moved aside and the service starts empty', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'journal-'));
  writeFileSync(join(dir, 's.snapshot.jsonl'), '{not json');
  const log = quietLog();
  const j = new Journal({ dir, name: 's', log }).open();
  t.equal(j.collection('a').size, 0);
  t.match(log.seen.join(), /corrupt/);
  t.ok(readdirSync(dir).some((f) => f.startsWith('s.snapshot.jsonl.corrupt-')));
  j.put('a', 'k', 1);
  t.equal(new Journal({ dir, name: 's', log: quietLog() }).open().collection('a').get('k'), 1);
});

t.test('a failing disk is reported, not hidden', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'journal-'));
  const j = new Journal({ dir, name: 's', log: quietLog() }).open();
  j.failWrites = true;
  t.throws(() => j.put('a', 'k', 1), StateWriteError);
  t.equal(j.collection('a').has('k'), false, 'memory does not run ahead of the disk');
});

t.test('background compaction: writes go on meanwhile, and nothing is lost', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'journal-'));
  const j = new Journal({ dir, name: 's', log: quietLog(), compactEvery: 100 }).open();
  // Rewriting the same 1,000 keys: the journal outgrows the live state and a compaction starts.
  for (let i = 0; i < 5000; i++) j.put('a', `k${i % 1000}`, i);
  // A compaction has started; keep changing state while it runs in the background.
  t.ok(readdirSync(dir).includes('s.journal.prev'), 'the old journal is kept until the snapshot covers it');
  j.put('a', 'k1', 'changed');
  j.del('a', 'k2');
  j.put('b', 'new', true);
  await new Promise((r) => setTimeout(r, 200));
  t.notOk(readdirSync(dir).includes('s.journal.prev'), 'installed');
  const again = new Journal({ dir, name: 's', log: quietLog() }).open();
  t.equal(again.collection('a').size, 999);
  t.equal(again.collection('a').get('k999'), 4999);
  t.equal(again.collection('a').get('k1'), 'changed');
  t.equal(again.collection('a').has('k2'), false);
  t.equal(again.collection('b').get('new'), true);
});

t.test('a compaction cut short (crash) loses nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'journal-'));
  const j = new Journal({ dir, name: 's', log: quietLog(), compactEvery: 100 }).open();
  for (let i = 0; i < 3000; i++) j.put('a', `k${i % 500}`, i);
  t.ok(readdirSync(dir).includes('s.journal.prev'), 'a compaction is under way');
  j.del('a', 'k7');
  j.put('a', 'k8', 'late');
  // close() abandons the compaction under way, as a crash would (the old journal and `.prev` stay).
  j.close();
  const again = new Journal({ dir, name: 's', log: quietLog() }).open();
  t.equal(again.collection('a').size, 499);
  t.equal(again.collection('a').get('k499'), 2999);
  t.equal(again.collection('a').has('k7'), false);
  t.equal(again.collection('a').get('k8'), 'late');
});
