// A small durable key-value log: every change is appended as one JSON line with a synchronous write, so
// it survives kill -9 of the service (the line is in the kernel before the action it records runs).
//
// A write is complete or refused: a partial write is continued, and a write the disk refuses (full,
// I/O error) is cut back to where it started, so no torn line stays behind and the caller gets a
// StateWriteError (the webhook answers 503 and Alertmanager retries) instead of an acknowledgement.
//
// Compaction writes the live state as a snapshot (JSON lines too) to a temporary file, fsyncs it and
// renames it into place. While the service runs it happens in the background, a chunk per event-loop
// turn, so a large state never stalls requests: new changes go to a fresh journal at once and the old
// one (`.prev`) is removed only after the snapshot that covers it is in place. Start-up replays
// snapshot, `.prev` (if a compaction was cut short) and journal, in that order; every entry is a whole
// value, so replaying an entry the snapshot already holds changes nothing.
//
// Recovery keeps every valid entry: a torn last line (the service died mid-write) is dropped, a bad
// line elsewhere is skipped and counted, a copy of the damaged file is kept aside for the operator, and
// the log says how many lines were skipped and which. When the disk has no room for a snapshot at
// start-up, the service goes on appending to the journal (after its last whole line).
import {
  closeSync,
  constants,
  copyFileSync,
  existsSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';

export interface JournalLogger {
  error(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** A write to durable state failed: the caller must not act as if the change was kept. */
export class StateWriteError extends Error {
  override name = 'StateWriteError';
  /** The system's error code (ENOSPC, EIO, EROFS, ...), when there is one. */
  readonly code: string | undefined;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = errorCode(options?.cause);
  }
}

/**
 * The state directory cannot be used at all (created, read, or written): the service cannot start.
 * Its message names the path and the system's reason.
 */
export class StateOpenError extends Error {
  override name = 'StateOpenError';
  readonly code: string | undefined;
  constructor(
    message: string,
    readonly dir: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = errorCode(options?.cause);
  }
}

type Entry = { c: string; k: string; v?: unknown };

/**
 * The port every byte of state goes through (the contract of fs.writeSync with a position). Tests hand
 * in one that writes short, makes no progress or throws, to stand in for a full or failing disk.
 */
export type WriteFn = (fd: number, buf: Buffer, offset: number, length: number, position: number) => number;

/** The journal may grow to this many times the live entries before it is compacted. */
const COMPACT_RATIO = 4;
/** Entries a background compaction writes per event-loop turn. */
const COMPACT_CHUNK = 500;
/** Line numbers of skipped lines named in the log (the copy aside has them all). */
const MAX_LINES_NAMED = 20;

export interface JournalOptions {
  dir: string;
  name: string;
  log: JournalLogger;
  /** Compact once the journal holds this many lines. */
  compactEvery?: number;
  /** The write call (fs.writeSync by default). */
  write?: WriteFn;
  /** Told of every collection written, once the write is on disk (the change feed). */
  onWrite?: (collection: string) => void;
}

interface Compaction {
  readonly fd: number;
  readonly keys: Array<[string, string[]]>;
  collection: number;
  index: number;
  /** Bytes written to the temporary snapshot so far. */
  size: number;
  /** Entries written to it so far. */
  written: number;
}

/** What reading one state file found. */
interface Loaded {
  /** Bytes up to the end of its last whole line: where appending may go on. */
  readonly validBytes: number;
  readonly lines: number;
}

/**
 * Collections of JSON values keyed by string, kept in memory and journalled to disk.
 * `put` and `del` are synchronous and throw StateWriteError when the disk refuses the write.
 */
export class Journal {
  private readonly data = new Map<string, Map<string, unknown>>();
  private fd: number | undefined;
  /** Bytes in the journal file: the position of the next write. */
  private size = 0;
  /** A refused write that could not be cut back starts here (cut before the next write). */
  private tornAt: number | undefined;
  private lines = 0;
  /** Entries on disk outside the journal (snapshot, `.prev`): with `lines`, what the files hold. */
  private olderEntries = 0;
  /** After a failed compaction, the next one waits until the journal holds this many lines. */
  private retryCompactionAt = 0;
  private readonly snapshotPath: string;
  private readonly journalPath: string;
  private readonly prevPath: string;
  private readonly tmpPath: string;
  private readonly compactEvery: number;
  private readonly write: WriteFn;
  private pending: Array<{ entry: Entry; prev: unknown; had: boolean }> | undefined;
  private compaction: Compaction | undefined;

  constructor(private readonly opts: JournalOptions) {
    this.snapshotPath = join(opts.dir, `${opts.name}.snapshot.jsonl`);
    this.journalPath = join(opts.dir, `${opts.name}.journal`);
    this.prevPath = `${this.journalPath}.prev`;
    this.tmpPath = `${this.snapshotPath}.tmp`;
    this.compactEvery = opts.compactEvery ?? 5000;
    this.write = opts.write ?? writeSync;
  }

  /**
   * Reads the snapshot and replays the journals; then compacts so the next start reads one file.
   * Throws StateOpenError when the directory cannot be created, read or written.
   */
  open(): this {
    const { dir, name } = this.opts;
    try {
      makeDir(dir);
    } catch (err) {
      throw new StateOpenError(`cannot create the state directory ${dir}: ${describe(err)}`, dir, {
        cause: err,
      });
    }
    let journal: Loaded;
    try {
      const snapshot = this.load(this.snapshotPath, 'snapshot');
      const prev = this.load(this.prevPath, 'journal');
      this.olderEntries = snapshot.lines + prev.lines;
      journal = this.load(this.journalPath, 'journal');
    } catch (err) {
      throw new StateOpenError(`cannot read the ${name} journal in ${dir}: ${describe(err)}`, dir, {
        cause: err,
      });
    }
    try {
      this.compact();
    } catch (compactErr) {
      // No room for a snapshot (a full disk): go on with the journal as it is, after its last whole line.
      try {
        const fd = openSync(this.journalPath, constants.O_RDWR | constants.O_CREAT, 0o600);
        ftruncateSync(fd, journal.validBytes);
        this.fd = fd;
        this.size = journal.validBytes;
        this.lines = journal.lines;
        this.retryCompactionAt = this.lines + this.compactEvery;
      } catch (err) {
        throw new StateOpenError(`cannot write the ${name} journal in ${dir}: ${describe(err)}`, dir, {
          cause: err,
        });
      }
      this.opts.log.warn(
        { err: compactErr, dir, name },
        `cannot compact the ${name} journal at start-up (${describe(compactErr)}); appending to the ` +
          'existing journal instead, and compacting later once the disk has room',
      );
    }
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
    if (!this.pending) this.opts.onWrite?.(collection);
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
    const onWrite = this.opts.onWrite;
    if (onWrite) for (const c of new Set(pending.map((p) => p.entry.c))) onWrite(c);
    return result;
  }

  del(collection: string, key: string): void {
    if (!this.collection(collection).has(key)) return;
    this.append({ c: collection, k: key });
    this.collection(collection).delete(key);
    if (!this.pending) this.opts.onWrite?.(collection);
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

  /**
   * Starts a background compaction when most entries on disk are dead (after removing many entries:
   * the files shrink back to the live state). Never throws; a failure is logged and retried later.
   */
  compactIfWasteful(): void {
    if (this.compaction) return;
    const live = this.liveEntries();
    const dead = this.olderEntries + this.lines - live;
    if (dead >= Math.max(live, this.compactEvery)) this.startCompaction();
  }

  /** Compacts now, synchronously (start-up, tests): one snapshot, an empty journal, no `.prev`. */
  compact(): void {
    try {
      if (this.compaction) {
        // Finish the one under way: the journal since its start stays, and is valid on top of it.
        try {
          while (this.compaction) this.compactStep(Number.POSITIVE_INFINITY);
        } catch (err) {
          this.abandonCompaction();
          throw err;
        }
        return;
      }
      const entries: string[] = [];
      for (const [c, m] of this.data) for (const [k, v] of m) entries.push(JSON.stringify({ c, k, v }));
      this.writeSnapshot(entries.length ? `${entries.join('\n')}\n` : '');
      this.olderEntries = entries.length;
      // `.prev` goes before the journal is emptied: a snapshot followed by the whole old journal is
      // still right (its last value of each key is the snapshot's), a snapshot followed by an older
      // `.prev` and an empty journal is not.
      if (existsSync(this.prevPath)) unlinkSync(this.prevPath);
      const fd = openSync(this.journalPath, 'w', 0o600);
      if (this.fd !== undefined) closeSync(this.fd);
      this.fd = fd;
      this.size = 0;
      this.tornAt = undefined;
      this.lines = 0;
      this.retryCompactionAt = 0;
    } catch (err) {
      throw new StateWriteError(
        `cannot write the ${this.opts.name} journal in ${this.opts.dir}: ${describe(err)}`,
        { cause: err },
      );
    }
  }

  private writeSnapshot(text: string): void {
    const fd = openSync(this.tmpPath, 'w', 0o600);
    try {
      this.writeAll(fd, Buffer.from(text), 0);
      fsyncSync(fd);
    } catch (err) {
      closeSync(fd);
      removeQuietly(this.tmpPath); // gives the space back
      throw err;
    }
    closeSync(fd);
    renameSync(this.tmpPath, this.snapshotPath);
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
      this.lines >= this.retryCompactionAt &&
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

  /** Never throws: the change that triggered it is already written. */
  private startCompaction(): void {
    try {
      if (existsSync(this.prevPath)) {
        // An earlier compaction did not finish: its `.prev` still holds changes, so do it in one go.
        this.compact();
        return;
      }
      const tmp = openSync(this.tmpPath, 'w', 0o600);
      let fresh: number;
      try {
        // The old descriptor keeps pointing at the old journal (now `.prev`) until the new one is open.
        renameSync(this.journalPath, this.prevPath);
        try {
          fresh = openSync(this.journalPath, 'w', 0o600);
        } catch (err) {
          renameSync(this.prevPath, this.journalPath);
          throw err;
        }
      } catch (err) {
        closeSync(tmp);
        removeQuietly(this.tmpPath);
        throw err;
      }
      if (this.fd !== undefined) closeSync(this.fd);
      this.fd = fresh;
      this.size = 0;
      this.tornAt = undefined;
      this.olderEntries += this.lines;
      this.lines = 0;
      this.compaction = {
        fd: tmp,
        keys: [...this.data].map(([c, m]): [string, string[]] => [c, [...m.keys()]]),
        collection: 0,
        index: 0,
        size: 0,
        written: 0,
      };
    } catch (err) {
      this.compactionFailed(err);
      return;
    }
    setImmediate(() => this.backgroundStep());
  }

  private compactionFailed(err: unknown): void {
    this.retryCompactionAt = this.lines + this.compactEvery;
    this.opts.log.error(
      { err, name: this.opts.name, dir: this.opts.dir },
      `cannot compact the ${this.opts.name} journal (${describe(err)}); nothing is lost, ` +
        'the journal keeps growing until a later compaction succeeds',
    );
  }

  private backgroundStep(): void {
    if (!this.compaction) return;
    try {
      this.compactStep(COMPACT_CHUNK);
    } catch (err) {
      this.abandonCompaction();
      this.compactionFailed(err);
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
    if (out.length) {
      const buf = Buffer.from(`${out.join('\n')}\n`);
      this.writeAll(c.fd, buf, c.size);
      c.size += buf.length;
      c.written += out.length;
    }
    if (c.collection < c.keys.length) return;
    fsyncSync(c.fd);
    closeSync(c.fd);
    this.compaction = undefined;
    renameSync(this.tmpPath, this.snapshotPath);
    unlinkSync(this.prevPath);
    this.olderEntries = c.written;
    this.retryCompactionAt = 0;
  }

  private abandonCompaction(): void {
    const c = this.compaction;
    if (!c) return;
    this.compaction = undefined;
    try {
      closeSync(c.fd);
    } catch {
      // Already closed.
    }
    // The next open() ignores a stray temporary file; removing it gives the space back.
    removeQuietly(this.tmpPath);
  }

  /** Writes all of text at the end of the journal, or nothing: a refused write is cut back. */
  private writeLines(text: string): void {
    const fd = this.fd;
    if (fd === undefined) throw new StateWriteError(`the ${this.opts.name} journal is not open`);
    const start = this.size;
    const buf = Buffer.from(text);
    try {
      if (this.tornAt !== undefined) {
        ftruncateSync(fd, this.tornAt);
        this.tornAt = undefined;
      }
      this.writeAll(fd, buf, start);
    } catch (err) {
      this.cutBack(fd, start);
      throw new StateWriteError(
        `cannot write the ${this.opts.name} journal in ${this.opts.dir}: ${describe(err)}`,
        { cause: err },
      );
    }
    this.size = start + buf.length;
  }

  /** Loops on partial writes; a write that makes no progress is an error, not a loop. */
  private writeAll(fd: number, buf: Buffer, position: number): void {
    let done = 0;
    while (done < buf.length) {
      const n = this.write(fd, buf, done, buf.length - done, position + done);
      if (!(n > 0)) {
        throw Object.assign(new Error(`short write: ${done} of ${buf.length} bytes written`), {
          code: 'EIO',
        });
      }
      done += n;
    }
  }

  /** Removes what a refused write left after `start`, so no torn line stays on disk. */
  private cutBack(fd: number, start: number): void {
    try {
      ftruncateSync(fd, start);
    } catch (err) {
      // The next write starts at `start` and cuts there first; a start-up before that drops the line.
      this.tornAt = start;
      this.opts.log.error(
        { err, name: this.opts.name, offset: start },
        'cannot remove a partly written state line; it is cut before the next write or dropped at start-up',
      );
    }
  }

  /** Replays one state file into memory, keeping every valid entry. */
  private load(path: string, kind: 'snapshot' | 'journal'): Loaded {
    if (!existsSync(path)) return { validBytes: 0, lines: 0 };
    const buf = readFileSync(path);
    // Everything after the last newline is a line that was never finished.
    const validBytes = buf.lastIndexOf(0x0a) + 1;
    const lines = buf.subarray(0, validBytes).toString('utf8').split('\n');
    lines.pop();
    const skipped: number[] = [];
    const repaired: number[] = [];
    let replayed = 0;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if (!line) continue;
      let entry = parseEntry(line);
      if (!entry) {
        entry = salvage(line);
        if (entry) repaired.push(i + 1);
      }
      if (!entry || (kind === 'snapshot' && entry.v === undefined)) {
        skipped.push(i + 1);
        continue;
      }
      replayed++;
      if (entry.v === undefined) this.collection(entry.c).delete(entry.k);
      else this.collection(entry.c).set(entry.k, entry.v);
    }
    if (validBytes < buf.length) {
      if (kind === 'journal') {
        // The service died mid-write: the last line is incomplete and its change was never acknowledged.
        this.opts.log.warn(
          { path, line: lines.length + 1, offset: validBytes, bytes: buf.length - validBytes },
          'ignoring a torn last line in the state journal (a write cut short); every earlier entry is kept',
        );
      } else {
        // A snapshot is renamed into place only once complete: an unfinished line means damage.
        skipped.push(lines.length + 1);
      }
    }
    if (skipped.length || repaired.length) this.keepAside(path, { skipped, repaired, replayed });
    return { validBytes, lines: lines.length };
  }

  /** Keeps a copy of a damaged file for the operator and says what was skipped. */
  private keepAside(path: string, found: { skipped: number[]; repaired: number[]; replayed: number }): void {
    const { skipped, repaired, replayed } = found;
    const aside = `${path}.corrupt-${Date.now()}`;
    let copyError: string | undefined;
    try {
      copyFileSync(path, aside);
    } catch (err) {
      copyError = describe(err);
    }
    const what = [
      skipped.length
        ? `skipped ${skipped.length} bad line(s) (line ${nameLines(skipped)}); their changes are lost`
        : '',
      repaired.length
        ? `kept the whole entry at the end of ${repaired.length} line(s) torn by an earlier short write ` +
          `(line ${nameLines(repaired)}); the torn part before it is lost`
        : '',
    ].filter(Boolean);
    this.opts.log.error(
      {
        path,
        aside: copyError ? undefined : aside,
        skipped: skipped.length,
        skippedLines: skipped.slice(0, 100),
        repaired: repaired.length,
        repairedLines: repaired.slice(0, 100),
        replayed,
      },
      `state file ${path} is corrupt: ${what.join('; ')}; replayed ${replayed} valid entries. ` +
        (copyError
          ? `No copy could be kept (${copyError}).`
          : `A copy of the file is kept at ${aside} for inspection; delete it when done.`),
    );
  }
}

function nameLines(lines: number[]): string {
  return lines.slice(0, MAX_LINES_NAMED).join(', ') + (lines.length > MAX_LINES_NAMED ? ', …' : '');
}

function parseEntry(line: string): Entry | undefined {
  try {
    const e = JSON.parse(line) as Entry;
    return e && typeof e.c === 'string' && typeof e.k === 'string' ? e : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A line that an older version tore (a short write with no newline) and then wrote the next entry
 * after: the whole entry at its end is still good. Every entry starts with `{"c":`.
 */
function salvage(line: string): Entry | undefined {
  for (let i = line.indexOf('{"c":', 1); i > 0; i = line.indexOf('{"c":', i + 1)) {
    const e = parseEntry(line.slice(i));
    if (e) return e;
  }
  return undefined;
}

/**
 * mkdir -p that reports the real reason: Node's recursive mkdir says ENOENT where the parent is on a
 * read-only file system, so the first missing level is created alone to get EROFS or EACCES.
 */
function makeDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch {
    let missing = dir;
    while (dirname(missing) !== missing && !existsSync(dirname(missing))) missing = dirname(missing);
    mkdirSync(missing); // throws the precise error
    mkdirSync(dir, { recursive: true });
  }
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Not there, or the disk refuses: a stray temporary file is ignored by open().
  }
}
