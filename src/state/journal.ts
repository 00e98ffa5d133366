// A small durable key-value log: every change is appended as one JSON line with a synchronous write, so
// it survives kill -9 of the service (the line is in the kernel before the action it records runs).
//
// Compaction writes the live state as a snapshot (JSON lines too) to a temporary file, fsyncs it and
// renames it into place. While the service runs it happens in the background, a chunk per event-loop
// turn, so a large state never stalls requests: new changes go to a fresh journal at once and the old
// one (`.prev`) is removed only after the snapshot that covers it is in place. Start-up replays
// snapshot, `.prev` (if a compaction was cut short) and journal, in that order; every entry is a whole
// value, so replaying an entry the snapshot already holds changes nothing.
// A corrupt snapshot or journal is moved aside with a clear log line and the service starts anyway.
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

export interface JournalLogger {
  error(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** A write to durable state failed: the caller must not act as if the change was kept. */
export class StateWriteError extends Error {
  override name = 'StateWriteError';
}

type Entry = { c: string; k: string; v?: unknown };

/** The journal may grow to this many times the live entries before it is compacted. */
const COMPACT_RATIO = 4;
/** Entries a background compaction writes per event-loop turn. */
const COMPACT_CHUNK = 500;

export interface JournalOptions {
  dir: string;
  name: string;
  log: JournalLogger;
  /** Compact once the journal holds this many lines. */
  compactEvery?: number;
}

interface Compaction {
  readonly fd: number;
  readonly keys: Array<[string, string[]]>;
  collection: number;
  index: number;
}

/**
 * Collections of JSON values keyed by string, kept in memory and journalled to disk.
 * `put` and `del` are synchronous and throw StateWriteError when the disk refuses the write.
 */
export class Journal {
  private readonly data = new Map<string, Map<string, unknown>>();
  private fd: number | undefined;
  private lines = 0;
  private readonly snapshotPath: string;
  private readonly journalPath: string;
  private readonly prevPath: string;
  private readonly tmpPath: string;
  private readonly compactEvery: number;
  private pending: Array<{ entry: Entry; prev: unknown; had: boolean }> | undefined;
  private compaction: Compaction | undefined;
  /** Test hook: makes the next writes fail as a full or read-only disk would. */
  failWrites = false;

  constructor(private readonly opts: JournalOptions) {
    this.snapshotPath = join(opts.dir, `${opts.name}.snapshot.jsonl`);
    this.journalPath = join(opts.dir, `${opts.name}.journal`);
    this.prevPath = `${this.journalPath}.prev`;
    this.tmpPath = `${this.snapshotPath}.tmp`;
    this.compactEvery = opts.compactEvery ?? 5000;
  }

  /** Reads the snapshot and replays the journals; then compacts so the next start reads one file. */
  open(): this {
    mkdirSync(this.opts.dir, { recursive: true });
    this.loadSnapshot();
    this.replay(this.prevPath);
    this.replay(this.journalPath);
    this.compact();
    return this;
  }

  collection<T>(name: string): Map<string, T> {
    let m = this.data.get(name);
    if (!m) {
      m = new Map();
      this.data.set(name, m);
    }
    return m as Map<string, T>;
  }

  put<T>(collection: string, key: string, value: T): void {
    this.append({ c: collection, k: key, v: value });
    this.collection<T>(collection).set(key, value);
  }

  /**
   * Runs fn with its writes gathered into one write call (one syscall for a whole webhook batch).
   * The batch is on disk when batch() returns; if the write fails, fn's changes are rolled back in
   * memory and StateWriteError is thrown.
   */
  batch<R>(fn: () => R): R {
    if (this.pending) return fn();
    const pending: Array<{ entry: Entry; prev: unknown; had: boolean }> = [];
    this.pending = pending;
    let result: R;
    try {
      result = fn();
    } finally {
      this.pending = undefined;
    }
    if (pending.length === 0) return result;
    try {
      this.writeLines(pending.map((p) => `${JSON.stringify(p.entry)}\n`).join(''));
    } catch (err) {
      for (const p of pending.reverse()) {
        const m = this.collection(p.entry.c);
        if (p.had) m.set(p.entry.k, p.prev);
        else m.delete(p.entry.k);
      }
      throw err;
    }
    this.wrote(pending.length);
    return result;
  }

  del(collection: string, key: string): void {
    if (!this.collection(collection).has(key)) return;
    this.append({ c: collection, k: key });
    this.collection(collection).delete(key);
  }

  /** Closes the files. A background compaction is abandoned; the next open() replays around it. */
  close(): void {
    this.abandonCompaction();
    if (this.fd !== undefined) {
      try {
        fsyncSync(this.fd);
      } catch {
        // Closing anyway: the lines are already written.
      }
      closeSync(this.fd);
      this.fd = undefined;
    }
  }

  /** Compacts now, synchronously (start-up, tests): one snapshot, an empty journal, no `.prev`. */
  compact(): void {
    try {
      if (this.failWrites) throw new Error('writes disabled');
      if (this.compaction) {
        // Finish the one under way: the journal since its start stays, and is valid on top of it.
        while (this.compaction) this.compactStep(Number.POSITIVE_INFINITY);
        return;
      }
      const fd = openSync(this.tmpPath, 'w', 0o600);
      try {
        const lines: string[] = [];
        for (const [c, m] of this.data) for (const [k, v] of m) lines.push(JSON.stringify({ c, k, v }));
        writeSync(fd, lines.length ? `${lines.join('\n')}\n` : '');
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(this.tmpPath, this.snapshotPath);
      if (this.fd !== undefined) closeSync(this.fd);
      this.fd = openSync(this.journalPath, 'w', 0o600);
      this.lines = 0;
      if (existsSync(this.prevPath)) unlinkSync(this.prevPath);
    } catch (err) {
      throw new StateWriteError(
        `cannot write ${this.opts.name} state in ${this.opts.dir}: ${(err as Error).message}`,
      );
    }
  }

  private append(entry: Entry): void {
    if (this.pending) {
      const m = this.collection(entry.c);
      this.pending.push({ entry, prev: m.get(entry.k), had: m.has(entry.k) });
      return;
    }
    this.writeLines(`${JSON.stringify(entry)}\n`);
    this.wrote(1);
  }

  private wrote(n: number): void {
    this.lines += n;
    // Compaction costs the size of the live state, so it starts only once the journal has outgrown it:
    // amortised O(1) per write however large the state gets.
    if (
      !this.compaction &&
      this.lines >= this.compactEvery &&
      this.lines >= COMPACT_RATIO * this.liveEntries()
    ) {
      this.startCompaction();
    }
  }

  private liveEntries(): number {
    let n = 0;
    for (const m of this.data.values()) n += m.size;
    return n;
  }

  private startCompaction(): void {
    try {
      if (this.failWrites) throw new Error('writes disabled');
      if (existsSync(this.prevPath)) {
        // An earlier compaction did not finish: its `.prev` still holds changes, so do it in one go.
        this.compact();
        return;
      }
      if (this.fd !== undefined) closeSync(this.fd);
      this.fd = undefined;
      renameSync(this.journalPath, this.prevPath);
      this.fd = openSync(this.journalPath, 'w', 0o600);
      this.lines = 0;
      this.compaction = {
        fd: openSync(this.tmpPath, 'w', 0o600),
        keys: [...this.data].map(([c, m]): [string, string[]] => [c, [...m.keys()]]),
        collection: 0,
        index: 0,
      };
    } catch (err) {
      this.opts.log.error({ err, name: this.opts.name }, 'cannot start compacting the state journal');
      if (this.fd === undefined) this.fd = openSync(this.journalPath, 'a', 0o600);
      return;
    }
    setImmediate(() => this.backgroundStep());
  }

  private backgroundStep(): void {
    if (!this.compaction) return;
    try {
      this.compactStep(COMPACT_CHUNK);
    } catch (err) {
      this.opts.log.error({ err, name: this.opts.name }, 'compacting the state journal failed; will retry');
      this.abandonCompaction();
      return;
    }
    if (this.compaction) setImmediate(() => this.backgroundStep());
  }

  /** Writes up to `budget` entries of the snapshot; installs it when all are written. */
  private compactStep(budget: number): void {
    const c = this.compaction;
    if (!c) return;
    const out: string[] = [];
    while (out.length < budget && c.collection < c.keys.length) {
      const [name, keys] = c.keys[c.collection] as [string, string[]];
      const m = this.collection(name);
      for (; c.index < keys.length && out.length < budget; c.index++) {
        const k = keys[c.index] as string;
        // Values changed since the start are written as they are now; the new journal has them too.
        if (m.has(k)) out.push(JSON.stringify({ c: name, k, v: m.get(k) }));
      }
      if (c.index >= keys.length) {
        c.collection++;
        c.index = 0;
      }
    }
    if (out.length) writeSync(c.fd, `${out.join('\n')}\n`);
    if (c.collection < c.keys.length) return;
    fsyncSync(c.fd);
    closeSync(c.fd);
    this.compaction = undefined;
    renameSync(this.tmpPath, this.snapshotPath);
    unlinkSync(this.prevPath);
  }

  private abandonCompaction(): void {
    const c = this.compaction;
    if (!c) return;
    this.compaction = undefined;
    try {
      closeSync(c.fd);
      unlinkSync(this.tmpPath);
    } catch {
      // The next open() ignores a stray temporary file.
    }
  }

  private writeLines(text: string): void {
    if (this.fd === undefined) throw new StateWriteError(`${this.opts.name} state is not open`);
    try {
      if (this.failWrites) throw new Error('writes disabled');
      writeSync(this.fd, text);
    } catch (err) {
      throw new StateWriteError(`cannot write ${this.opts.name} state: ${(err as Error).message}`);
    }
  }

  private moveAside(path: string, why: string): void {
    const aside = `${path}.corrupt-${Date.now()}`;
    renameSync(path, aside);
    this.opts.log.error({ path, aside, why }, 'state file is corrupt: moved aside, continuing without it');
  }

  private loadSnapshot(): void {
    if (!existsSync(this.snapshotPath)) return;
    const lines = readFileSync(this.snapshotPath, 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if (!line) continue;
      const entry = parseEntry(line);
      if (!entry || entry.v === undefined) {
        // A snapshot is renamed into place only once complete: a bad line means the file was damaged.
        this.data.clear();
        this.moveAside(this.snapshotPath, `line ${i + 1} is not a state entry`);
        return;
      }
      this.collection(entry.c).set(entry.k, entry.v);
    }
  }

  private replay(path: string): void {
    if (!existsSync(path)) return;
    const lines = readFileSync(path, 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if (!line) continue;
      const entry = parseEntry(line);
      if (!entry) {
        const isTornTail = lines.slice(i + 1).every((l) => l === '');
        if (isTornTail) {
          // The service died mid-write: the last line is incomplete and its change never took effect.
          this.opts.log.warn({ path, line: i + 1 }, 'ignoring a torn last line in the state journal');
          continue;
        }
        this.moveAside(path, `line ${i + 1} is not a state entry`);
        return;
      }
      if (entry.v === undefined) this.collection(entry.c).delete(entry.k);
      else this.collection(entry.c).set(entry.k, entry.v);
    }
  }
}

function parseEntry(line: string): Entry | undefined {
  try {
    const e = JSON.parse(line) as Entry;
    return e && typeof e.c === 'string' && typeof e.k === 'string' ? e : undefined;
  } catch {
    return undefined;
  }
}
