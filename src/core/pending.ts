// When a signal could not be decided (the Docker engine or the state did not answer), it stays in the
// inbox and is tried again: which errors a later try can cure, and how long to wait before it.
// Pure: no I/O here.

/** A signal whose processing keeps failing for another reason (a bug, bad data) ends after this many tries. */
export const MAX_TRIES_OF_A_FAULTY_SIGNAL = 5;

const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 60_000;

/** Errors of the engine connection, the file system or the process's limits: they pass. */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ENOENT',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EMFILE',
  'ENFILE',
  'ENOSPC',
  'EIO',
  'EAGAIN',
  'EBUSY',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'ABORT_ERR',
]);
const TRANSIENT_NAMES = new Set(['AbortError', 'TimeoutError', 'StateWriteError']);

/** Whether a later try may succeed: the engine or the disk was unreachable, slow or out of resources. */
export function isTransientError(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    const x = e as { code?: unknown; name?: unknown; statusCode?: unknown; cause?: unknown };
    if (typeof x.code === 'string' && TRANSIENT_CODES.has(x.code)) return true;
    if (typeof x.name === 'string' && TRANSIENT_NAMES.has(x.name)) return true;
    // The engine answered, but with a server error (it is starting, overloaded, or its backend is).
    if (typeof x.statusCode === 'number' && x.statusCode >= 500) return true;
    e = x.cause;
  }
  return false;
}

/** Delay before try number `tries + 1`: 1 s, doubling, at most a minute. */
export function deferDelayMs(tries: number): number {
  return Math.min(FIRST_DELAY_MS * 2 ** Math.max(0, tries - 1), MAX_DELAY_MS);
}
