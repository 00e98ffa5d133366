// Structured logging: JSON lines to stdout and to the audit file operators grep, with secrets removed.
// Secrets are removed from the finished line, whatever field, key, nested object, array, serializer
// output or Error cause they came in: nothing is written that still holds one. The audit file is
// written synchronously (the line is on disk before the action it describes runs) and rotated by size.
import {
  closeSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import pino, { type Logger } from 'pino';
import { type Config, secretsOf } from './config.js';

/** Paths pino blanks out wherever they appear; request headers carry the tokens (basic auth in base64). */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-admin-token"]',
  'headers.authorization',
  'authorization',
  'token',
  'botToken',
  'config.webhookToken',
  'config.adminToken',
  'config.telegram.botToken',
  '*.token',
  '*.botToken',
];

export const CENSOR = '<redacted>';

const escapeHtml = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * Each secret as it may appear in text: as it is, the secret half of a bot token (`id:secret`),
 * percent-encoded (URLs), JSON-escaped (a log line) and HTML-escaped (a Telegram message). Longest
 * first, so that a longer form is replaced before a shorter one inside it.
 */
export function secretForms(secrets: ReadonlyArray<string | undefined>): string[] {
  const forms = new Set<string>();
  for (const s of secrets) {
    if (!s || s.length < 4) continue;
    const bases = [s];
    const colon = s.indexOf(':');
    if (/^[0-9]+:/.test(s) && s.length - colon - 1 >= 16) bases.push(s.slice(colon + 1));
    for (const b of bases) {
      forms.add(b);
      forms.add(encodeURIComponent(b));
      forms.add(JSON.stringify(b).slice(1, -1));
      forms.add(escapeHtml(b));
    }
  }
  return [...forms].sort((a, b) => b.length - a.length);
}

/** A function that masks every form of the given secrets, and bot tokens in URLs, in a text. */
export function createScrubber(
  secrets: ReadonlyArray<string | undefined>,
  censor = CENSOR,
): (text: string) => string {
  const forms = secretForms(secrets);
  return (text) => {
    let out = text.includes('/bot') ? text.replace(/\/bot[0-9]+:[A-Za-z0-9_-]+/g, `/bot${censor}`) : text;
    for (const f of forms) if (out.includes(f)) out = out.split(f).join(censor);
    return out;
  };
}

/** Removes bot tokens from URLs and any known secret from free text (error messages carry URLs). */
export function scrubSecrets(text: string, secrets: ReadonlyArray<string | undefined> = []): string {
  return createScrubber(secrets)(text);
}

/** Every string in a value, keys included, scrubbed; Errors become plain objects (message, stack, cause). */
export function scrubDeep(value: unknown, scrub: (text: string) => string, seen = new WeakSet()): unknown {
  if (typeof value === 'string') return scrub(value);
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => scrubDeep(v, scrub, seen));
  const out: Record<string, unknown> = {};
  if (value instanceof Error) {
    out.name = value.name;
    out.message = scrub(value.message);
    if (value.stack) out.stack = scrub(value.stack);
    if (value.cause !== undefined) out.cause = scrubDeep(value.cause, scrub, seen);
  }
  for (const [k, v] of Object.entries(value)) out[scrub(k)] = scrubDeep(v, scrub, seen);
  return out;
}

export interface LoggerOptions {
  level: string;
  file: string;
  /** Rotate the audit file before it grows past this many bytes (default 50 MiB). */
  maxBytes?: number;
  /** Audit files kept, the current one included (default 5). */
  maxFiles?: number;
  secrets?: ReadonlyArray<string | undefined>;
  /** Extra destination (tests capture output here instead of stdout). */
  stream?: NodeJS.WritableStream;
}

/** The logger options of the service from its config: level, audit file and rotation, every secret. */
export function loggerOptions(config: Config): LoggerOptions {
  return {
    level: config.logLevel,
    file: config.logFile,
    maxBytes: config.logMaxBytes,
    maxFiles: config.logMaxFiles,
    secrets: secretsOf(config),
  };
}

interface LineSink {
  write(line: string): unknown;
}

/** Wraps a destination so that no line reaches it with a secret in it. */
function scrubbing(dest: LineSink, scrub: (text: string) => string): LineSink & { flushSync(): void } {
  return {
    write: (line: string) => dest.write(scrub(line)),
    flushSync: () => (dest as { flushSync?: () => void }).flushSync?.(),
  };
}

export function createLogger(opts: LoggerOptions): Logger {
  const scrub = createScrubber(opts.secrets ?? []);
  const streams: pino.StreamEntry[] = [
    { level: 'trace', stream: scrubbing(opts.stream ?? pino.destination(1), scrub) },
  ];
  if (opts.file) {
    const file = new RotatingFile(opts.file, opts.maxBytes ?? 52_428_800, opts.maxFiles ?? 5);
    streams.push({ level: 'trace', stream: scrubbing(file, scrub) });
  }
  return pino(
    {
      level: opts.level,
      base: { service: 'autoheal-nexus' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: CENSOR },
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.multistream(streams),
  );
}

/**
 * An append-only file written synchronously, rotated by size: before a line would take the file past
 * maxBytes, `file` becomes `file.1` (`file.1` becomes `file.2`, ...; the oldest beyond maxFiles is
 * deleted) and a new `file` is started. Lines are whole in exactly one file: a line is never split
 * across a rotation, and a write that fails half-way is cut back off, then reported by throwing (the
 * caller's action does not run without its audit line).
 */
export class RotatingFile {
  private fd: number;
  private size: number;
  /** After a failed rotation, the size at which it is tried again (the log goes on meanwhile). */
  private retryAt = 0;

  constructor(
    readonly path: string,
    readonly maxBytes: number,
    readonly maxFiles: number,
  ) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'a');
    this.size = fstatSync(this.fd).size;
  }

  write(line: string): boolean {
    const buf = Buffer.from(line);
    if (this.size > 0 && this.size + buf.length > this.maxBytes && this.size >= this.retryAt) this.rotate();
    let off = 0;
    try {
      // writeSync may write less than asked (a full disk, a signal): the rest follows, or it throws.
      while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
    } catch (err) {
      if (off > 0) {
        try {
          ftruncateSync(this.fd, this.size);
        } catch {
          // the torn tail stays; the next line still starts on its own line below
        }
      }
      throw err;
    }
    this.size += buf.length;
    return true;
  }

  /** Writes are synchronous: nothing is ever buffered. */
  flushSync(): void {}

  end(): void {
    closeSync(this.fd);
  }

  private rotate(): void {
    try {
      const name = (i: number) => (i === 0 ? this.path : `${this.path}.${i}`);
      rmSync(name(this.maxFiles - 1), { force: true });
      for (let i = this.maxFiles - 2; i >= 0; i--) {
        try {
          renameSync(name(i), name(i + 1));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
    } catch (err) {
      this.retryAt = this.size + this.maxBytes;
      process.stderr.write(
        `autoheal-nexus: cannot rotate the audit log ${this.path} (${(err as NodeJS.ErrnoException).code ?? err}): ` +
          'it keeps growing; check LOG_FILE permissions and free space\n',
      );
      return;
    }
    closeSync(this.fd);
    this.fd = openSync(this.path, 'a');
    this.size = fstatSync(this.fd).size;
    this.retryAt = 0;
  }
}
