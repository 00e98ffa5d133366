// A small durable key-value log: every change is appended as one JSON line with a synchronous write, so
// it survives kill -9 of the service (the line is in the kernel before the action it records runs).
// The journal is compacted into a snapshot written to a temporary file, fsynced and renamed into place.
// A corrupt snapshot or journal is moved aside with a clear log line and the service starts anyway.
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
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

export interface JournalOptions {
  dir: string;
  name: string;
  log: JournalLogger;
  /** Compact once the journal holds this many lines. */
  compactEvery?: number;
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
  private readonly compactEvery: number;
  private pending: Array<{ entry: Entry; prev: unknown; had: boolean }> | undefined;
  /** Test hook: makes the next writes fail as a full or read-only disk would. */
  failWrites = false;

  constructor(private readonly opts: JournalOptions) {
    this.snapshotPath = join(opts.dir, `${opts.name}.snapshot.json`);
    this.journalPath = join(opts.dir, `${opts.name}.journal`);
    this.compactEvery = opts.compactEvery ?? 5000;
  }

  /** Reads the snapshot and replays the journal; then compacts so the next start reads one file. */
  open(): this {
    mkdirSync(this.opts.dir, { recursive: true });
    this.loadSnapshot();
    this.replayJournal();
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
    this.lines += pending.length;
    if (this.lines >= this.compactEvery && this.lines >= 2 * this.liveEntries()) this.compact();
    return result;
  }

  del(collection: string, key: string): void {
    if (!this.collection(collection).has(key)) return;
    this.append({ c: collection, k: key });
    this.collection(collection).delete(key);
  }

  close(): void {
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

  /** Writes every collection to a fresh snapshot and starts an empty journal. */
  compact(): void {
    const obj: Record<string, Record<string, unknown>> = {};
    for (const [name, m] of this.data) obj[name] = Object.fromEntries(m);
    const tmp = `${this.snapshotPath}.tmp`;
    try {
      if (this.failWrites) throw new Error('writes disabled');
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, JSON.stringify(obj));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.snapshotPath);
      // Replaying an old journal over the new snapshot is harmless (every entry is a whole value),
      // so a crash between the rename and this truncation loses nothing.
      this.close();
      this.fd = openSync(this.journalPath, 'w', 0o600);
      this.lines = 0;
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
    this.lines++;
    // Compaction costs the size of the live state, so it runs only once the journal has outgrown it:
    // amortised O(1) per write however large the state gets.
    if (this.lines >= this.compactEvery && this.lines >= 2 * this.liveEntries()) this.compact();
  }

  private liveEntries(): number {
    let n = 0;
    for (const m of this.data.values()) n += m.size;
    return n;
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
    try {
      const obj = JSON.parse(readFileSync(this.snapshotPath, 'utf8')) as Record<
        string,
        Record<string, unknown>
      >;
      if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw new Error('not an object');
      for (const [name, entries] of Object.entries(obj)) {
        if (!entries || typeof entries !== 'object') throw new Error(`collection ${name} is not an object`);
        this.data.set(name, new Map(Object.entries(entries)));
      }
    } catch (err) {
      this.data.clear();
      this.moveAside(this.snapshotPath, (err as Error).message);
    }
  }

  private replayJournal(): void {
    if (!existsSync(this.journalPath)) return;
    const text = readFileSync(this.journalPath, 'utf8');
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if (!line) continue;
      let entry: Entry;
      try {
        entry = JSON.parse(line) as Entry;
        if (typeof entry.c !== 'string' || typeof entry.k !== 'string') throw new Error('bad entry');
      } catch (err) {
        const isTornTail = lines.slice(i + 1).every((l) => l === '');
        if (isTornTail) {
          // The service died mid-write: the last line is incomplete and its change never took effect.
          this.opts.log.warn(
            { path: this.journalPath, line: i + 1 },
            'ignoring a torn last line in the state journal',
          );
          continue;
        }
        this.moveAside(this.journalPath, `line ${i + 1}: ${(err as Error).message}`);
        return;
      }
      if (entry.v === undefined) this.collection(entry.c).delete(entry.k);
      else this.collection(entry.c).set(entry.k, entry.v);
    }
  }
}
