// Structured logging: JSON lines to stdout and to the audit file operators grep, with secrets redacted.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import pino, { type Logger } from 'pino';

/** Paths pino blanks out wherever they appear; request headers carry the tokens. */
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

/** Removes bot tokens from URLs and any known secret from free text (error messages carry URLs). */
export function scrubSecrets(text: string, secrets: ReadonlyArray<string | undefined> = []): string {
  let out = text.replace(/\/bot[0-9]+:[A-Za-z0-9_-]+/g, '/bot<redacted>');
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('<redacted>');
  return out;
}

export interface LoggerOptions {
  level: string;
  file: string;
  secrets?: ReadonlyArray<string | undefined>;
  /** Extra destination (tests capture output here instead of stdout). */
  stream?: NodeJS.WritableStream;
}

export function createLogger(opts: LoggerOptions): Logger {
  const streams: pino.StreamEntry[] = [{ level: 'trace', stream: opts.stream ?? pino.destination(1) }];
  if (opts.file) {
    mkdirSync(dirname(opts.file), { recursive: true });
    // sync: the audit line is on disk (in the page cache) before the action it describes runs.
    streams.push({ level: 'trace', stream: pino.destination({ dest: opts.file, sync: true, mkdir: true }) });
  }
  const secrets = opts.secrets ?? [];
  return pino(
    {
      level: opts.level,
      base: { service: 'autoheal-nexus' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '<redacted>' },
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        // Last line of defence: a secret that slipped into a message or error text is masked.
        logMethod(args, method) {
          const scrubbed = args.map((a) =>
            typeof a === 'string' ? scrubSecrets(a, secrets) : scrubDeep(a, secrets),
          );
          method.apply(this, scrubbed as Parameters<typeof method>);
        },
      },
    },
    pino.multistream(streams),
  );
}

function scrubDeep(value: unknown, secrets: ReadonlyArray<string | undefined>): unknown {
  if (value instanceof Error) return scrubError(value, secrets);
  // Only the error of a merge object is rewritten: request objects must reach pino's serializers intact.
  if (
    value &&
    typeof value === 'object' &&
    'err' in value &&
    (value as { err: unknown }).err instanceof Error
  ) {
    const v = value as { err: Error };
    return { ...v, err: scrubError(v.err, secrets) };
  }
  return value;
}

function scrubError(err: Error, secrets: ReadonlyArray<string | undefined>): Error {
  const copy = new Error(scrubSecrets(err.message, secrets));
  copy.name = err.name;
  if (err.stack) copy.stack = scrubSecrets(err.stack, secrets);
  for (const key of ['code', 'statusCode'] as const) {
    if (key in err)
      (copy as unknown as Record<string, unknown>)[key] = (err as unknown as Record<string, unknown>)[key];
  }
  return copy;
}
