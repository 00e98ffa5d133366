// The reliability script's harness: a scenario is a function that starts the real service (a child
// process), does something a bad day does to it, measures what happened (engine events, files on disk,
// HTTP codes) and records checks: a promise, what was observed, pass or fail. Each scenario has its own
// timeout and its own cleanup stack (processes by pid, containers by label, mounts, directories).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { EnvSchema } from '../../src/config.js';
import { CONTAINER_LABELS } from '../../src/core/labels.js';
import { ADMIN_TOKEN, amPayload, WEBHOOK_TOKEN } from '../../test/fixtures/app.js';
import {
  BROKEN,
  createTestContainer,
  docker as mainDocker,
  TEST_IMAGE,
  type TestContainer,
  waitForHealth,
} from '../../test/fixtures/docker.js';
import { TEST_LABEL } from '../../test/fixtures/labels.js';
import { type RunningService, startService } from '../../test/fixtures/service.js';

export const run = promisify(execFile);
export { sleep };

/** Every container of this run carries this compose project, and every service watches only it:
 * another helper's containers on the same engine are never in scope, and cleanup finds ours alone. */
export const PROJECT = `ahrel${process.pid}`;

export interface Check {
  readonly promise: string;
  readonly observed: string;
  readonly pass: boolean;
}

export interface Scenario {
  readonly name: string;
  readonly title: string;
  readonly timeoutMs: number;
  run(ctx: Ctx): Promise<void>;
}

/**
 * What a scenario gets: checks to record, a step label for timeouts, and what it starts (directories,
 * mounts, services, containers), each undone by the cleanup stack, last made first.
 */
export class Ctx {
  readonly checks: Check[] = [];
  private readonly cleanups: Array<() => unknown> = [];
  step = 'starting';

  constructor(readonly scenario: string) {}

  /** The fixtures' Teardown interface: cleanups run last-in first-out. */
  teardown(fn: () => unknown): void {
    this.cleanups.push(fn);
  }

  check(promise: string, pass: boolean, observed: string): void {
    this.checks.push({ promise, observed, pass });
    log(`  ${pass ? 'PASS' : 'FAIL'} ${promise}: ${observed}`);
  }

  say(text: string): void {
    this.step = text;
    log(`  · ${text}`);
  }

  /** A fresh directory under /tmp, removed (after any mount in it is gone) in cleanup. */
  tmpDir(prefix: string): string {
    const dir = mkdtempSync(`/tmp/ahrel-${prefix}-`);
    this.teardown(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  /** Mounts a tmpfs (unmounted in cleanup, before its directory is removed). */
  async mountTmpfs(path: string, options: string): Promise<void> {
    await run('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', path]);
    this.teardown(() => run('umount', ['-l', path]).catch(() => undefined));
  }

  /** Starts the real service (node --import tsx src/server.ts) via the test fixture; killed in cleanup. */
  startSvc(env: Record<string, string>, dir: string): Promise<RunningService> {
    return startService(this, { ...BASE_ENV, ...env }, dir);
  }

  /**
   * A started test container of this run on the main engine (labelled so the service may heal it),
   * once its health check says `health`: the service then starts against a container in a known state.
   */
  async testContainer(
    prefix: string,
    o: { labels?: Record<string, string>; cmd?: string[]; health?: 'healthy' | 'unhealthy' } = {},
  ): Promise<TestContainer> {
    const c = await createTestContainer(this, {
      name: uniq(prefix),
      labels: labelsFor(o.labels),
      cmd: o.cmd,
    });
    await waitForHealth(c.name, o.health ?? 'healthy', 30_000);
    return c;
  }

  /** Like poll, but a timeout throws (the scenario fails at this step). */
  async waitUntil<T>(
    what: string,
    fn: () => T | undefined | false | Promise<T | undefined | false>,
    timeoutMs: number,
    everyMs = 100,
  ): Promise<T> {
    this.step = `waiting for ${what}`;
    const v = await poll(fn, timeoutMs, everyMs);
    if (v === undefined)
      throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    return v;
  }

  /** Waits until a remediation of the container has its result in the audit log (the step fails if not). */
  resultRecorded(
    svc: RunningService,
    container: string,
    what = 'the restart to be verified',
  ): Promise<Record<string, unknown>> {
    return this.waitUntil(what, () => remediationResult(svc, container), 45_000, 200);
  }

  /** Records that the service never exited; `onExit` says what to show when it did. */
  checkNeverExited(
    promise: string,
    svc: RunningService,
    onExit: (svc: RunningService) => string = () => 'exited',
  ): void {
    this.check(promise, isAlive(svc), isAlive(svc) ? 'up throughout' : onExit(svc));
  }

  async cleanup(): Promise<void> {
    while (this.cleanups.length) {
      const fn = this.cleanups.pop() as () => unknown;
      try {
        await Promise.race([
          Promise.resolve().then(fn),
          sleep(45_000).then(() => {
            throw new Error('cleanup step timed out');
          }),
        ]);
      } catch (err) {
        log(`  cleanup: ${(err as Error).message}`);
      }
    }
  }
}

export function log(text: string): void {
  process.stderr.write(`${text}\n`);
}

let current: Ctx | undefined;

/** Cleans up the scenario under way (the script was interrupted). */
export async function cleanupCurrent(): Promise<void> {
  const ctx = current;
  current = undefined;
  await ctx?.cleanup();
}

/** Runs one scenario under its timeout, always cleaning up; a throw or a timeout is a failed check. */
export async function runScenario(s: Scenario): Promise<{ checks: Check[]; ms: number }> {
  const ctx = new Ctx(s.name);
  current = ctx;
  const t0 = Date.now();
  log(`▶ ${s.name}: ${s.title}`);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      s.run(ctx),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`timed out after ${Math.round(s.timeoutMs / 1000)} s`)),
          s.timeoutMs,
        );
      }),
    ]);
  } catch (err) {
    ctx.check('the scenario runs to its end', false, `${(err as Error).message} (during: ${ctx.step})`);
  } finally {
    clearTimeout(timer);
    current = undefined;
    await ctx.cleanup();
  }
  const ms = Date.now() - t0;
  log(`  (${(ms / 1000).toFixed(1)} s)`);
  return { checks: ctx.checks, ms };
}

// Files and directories -----------------------------------------------------------------------------

export function dirBytes(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  let n = 0;
  for (const e of readdirSync(path)) n += dirBytes(join(path, e));
  return n;
}

/** Bytes of the audit log and any rotated siblings (audit.log, audit.log.1, audit.log.2.gz, ...). */
export function auditBytes(logFile: string): { total: number; files: number } {
  const dir = logFile.slice(0, logFile.lastIndexOf('/'));
  const base = logFile.slice(logFile.lastIndexOf('/') + 1);
  let total = 0;
  let files = 0;
  for (const e of readdirSync(dir)) {
    if (e === base || e.startsWith(`${base}.`)) {
      total += statSync(join(dir, e)).size;
      files++;
    }
  }
  return { total, files };
}

/** The audit log's JSON lines; a line that does not parse is returned as { unparsed }. */
export function auditLines(logFile: string): Array<Record<string, unknown>> {
  if (!existsSync(logFile)) return [];
  return readFileSync(logFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return { unparsed: l };
      }
    });
}

export interface StateView {
  /** collection → key → value, replayed as the service replays its files. */
  readonly data: Map<string, Map<string, unknown>>;
  /** Lines that were not a state entry, by file. */
  readonly badLines: Array<{ file: string; line: number; text: string }>;
}

/**
 * Reads the service's durable state the way it replays it (snapshot, then `.prev`, then journal; an
 * entry without a value deletes). Tolerant: a line that is not an entry is listed, not fatal.
 */
export function readState(dataDir: string, name = 'state'): StateView {
  const data = new Map<string, Map<string, unknown>>();
  const badLines: StateView['badLines'] = [];
  const files = [`${name}.snapshot.jsonl`, `${name}.journal.prev`, `${name}.journal`];
  for (const f of files) {
    const path = join(dataDir, f);
    if (!existsSync(path)) continue;
    const lines = readFileSync(path, 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (!line) return;
      let e: { c?: unknown; k?: unknown; v?: unknown } | undefined;
      try {
        e = JSON.parse(line) as typeof e;
      } catch {
        e = undefined;
      }
      if (!e || typeof e.c !== 'string' || typeof e.k !== 'string') {
        badLines.push({ file: f, line: i + 1, text: line.slice(0, 80) });
        return;
      }
      let m = data.get(e.c);
      if (!m) {
        m = new Map();
        data.set(e.c, m);
      }
      if (e.v === undefined) m.delete(e.k);
      else m.set(e.k, e.v);
    });
  }
  return { data, badLines };
}

/** The inbox entries (accepted, not yet processed signals) that mention a text (a container name). */
export function inboxIdsMentioning(state: StateView, text: string): string[] {
  const inbox = state.data.get('inbox') ?? new Map<string, unknown>();
  return [...inbox].filter(([, v]) => JSON.stringify(v).includes(text)).map(([k]) => k);
}

export function containerRecord(state: StateView, name: string): Record<string, unknown> | undefined {
  return state.data.get('containers')?.get(name) as Record<string, unknown> | undefined;
}

// The service ------------------------------------------------------------------------------------------

/** Settings shared by every service of this run: only our compose project is in scope. */
export const BASE_ENV: Record<string, string> = {
  WATCH_SCOPE: 'project',
  COMPOSE_PROJECT: PROJECT,
  VERIFY_TIMEOUT: '30',
  VERIFY_GRACE: '1',
  RESTART_COOLDOWN: '1',
  SHUTDOWN_GRACE: '30',
};

export const isAlive = (svc: RunningService) => svc.proc.exitCode === null && svc.proc.signalCode === null;

/** The first line of the service's own output that matches, with its pino message ('' when none). */
export function outputLine(
  svc: RunningService,
  matches: (line: string) => boolean,
): { line: string | undefined; msg: string } {
  const line = svc.output().split('\n').find(matches);
  return { line, msg: line ? String((JSON.parse(line) as { msg?: string }).msg ?? '') : '' };
}

export interface HttpResult {
  status: number;
  body: string;
  ms: number;
}

/** One HTTP call with a timeout; a network error or timeout is status 0 with the error as body. */
export async function http(
  url: string,
  init: RequestInit & { timeoutMs?: number } = {},
): Promise<HttpResult> {
  const t0 = performanceNow();
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(init.timeoutMs ?? 10_000) });
    const body = await res.text();
    return { status: res.status, body, ms: performanceNow() - t0 };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { status: 0, body: `${e.name}: ${e.cause?.code ?? e.message}`, ms: performanceNow() - t0 };
  }
}

const performanceNow = () => Number(process.hrtime.bigint() / 1_000_000n);

export type AlertSpec = Parameters<typeof amPayload>[0][number];

/** Posts alerts to the webhook as Alertmanager does. */
export function postAlerts(url: string, alerts: AlertSpec[], token = WEBHOOK_TOKEN): Promise<HttpResult> {
  return http(`${url}/webhooks/alertmanager`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(amPayload(alerts)),
  });
}

/** An alert asking to restart one container, as the shipped rules send it. */
export const restartAlert = (
  container: string,
  fingerprint: string,
  startsAt?: string,
  alertname = 'ContainerUnhealthy',
): AlertSpec => ({ labels: { alertname, container, remediation: 'restart' }, fingerprint, startsAt });

/** Calls the admin API with the admin token. */
export function admin(
  url: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<HttpResult> {
  return http(`${url}/api/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${ADMIN_TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** A forced manual restart through the admin API; `id` is the request's, when it was accepted (202). */
export async function forceRestart(
  url: string,
  target: string,
  reason: string,
): Promise<{ res: HttpResult; id: string | undefined }> {
  const res = await admin(url, 'POST', '/remediations', { target, action: 'restart', force: true, reason });
  return { res, id: res.status === 202 ? (JSON.parse(res.body) as { id: string }).id : undefined };
}

/** The state of a manual request as the admin API reports it, or the HTTP status when it does not. */
export async function requestState(url: string, id: string): Promise<string> {
  const r = await admin(url, 'GET', `/remediations/${id}`);
  return r.status === 200 ? (JSON.parse(r.body) as { state: string }).state : String(r.status);
}

/** Polls until fn returns a value (not undefined/false) or the time is up (then undefined). */
export async function poll<T>(
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
  everyMs = 100,
): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch {
      // not yet
    }
    if (Date.now() > end) return undefined;
    await sleep(everyMs);
  }
}

// Containers and engine events -----------------------------------------------------------------------

/** Labels of a container this run may heal. */
export const labelsFor = (extra: Record<string, string> = {}) => ({
  [TEST_LABEL]: 'true',
  [CONTAINER_LABELS.composeProject]: PROJECT,
  [CONTAINER_LABELS.composeService]: 'rel',
  [CONTAINER_LABELS.enable]: 'true',
  ...extra,
});

export const uniq = (prefix: string) => `ah-rel-${prefix}-${randomBytes(3).toString('hex')}`;

/** A shell command for PID 1: ignores TERM (a restart waits the full stop timeout) when slowStop. */
export function containerCmd(o: { slowStop?: boolean; brokenAtFirstStart?: boolean } = {}): string[] {
  const trap = o.slowStop ? "trap '' TERM" : "trap 'exit 0' TERM";
  // /started lives in the container's own file system, so it survives a restart: only the first start
  // is broken, and a restart heals.
  const prelude = o.brokenAtFirstStart
    ? 'if [ -f /started ]; then rm -f /tmp/broken; else touch /started /tmp/broken; fi'
    : 'rm -f /tmp/broken';
  const tail = o.slowStop ? 'sleep 2147483 & wait; sleep 2147483' : 'sleep 2147483 & wait';
  return ['sh', '-c', `${trap}; ${prelude}; ${tail}`];
}

/**
 * Follows the engine's events of this run's containers, live: for "when X happens, do Y" triggers and
 * for counting restarts. Not `docker events --since`: the engine keeps only its last 256 events, and the
 * health checks of other containers on a busy engine push a restart out of that window in seconds.
 */
export class EventFollower {
  readonly events: Array<{ id: string; name: string; action: string; at: number }> = [];
  private stream: NodeJS.ReadableStream | undefined;
  private waiters: Array<() => void> = [];

  static async start(ctx: Ctx, docker: Docker = mainDocker): Promise<EventFollower> {
    const f = new EventFollower();
    const stream = (await docker.getEvents({
      filters: { label: [`${CONTAINER_LABELS.composeProject}=${PROJECT}`], type: ['container'] },
    })) as NodeJS.ReadableStream;
    f.stream = stream;
    let buf = '';
    stream.on('data', (chunk) => {
      buf += String(chunk);
      let i = buf.indexOf('\n');
      while (i >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        i = buf.indexOf('\n');
        if (!line) continue;
        try {
          const e = JSON.parse(line) as {
            id?: string;
            Action?: string;
            Actor?: { Attributes?: { name?: string } };
          };
          f.events.push({
            id: e.id ?? '',
            name: e.Actor?.Attributes?.name ?? '',
            action: e.Action ?? '',
            at: Date.now(),
          });
          for (const w of f.waiters.splice(0)) w();
        } catch {
          // not an event line
        }
      }
    });
    stream.on('error', () => undefined);
    ctx.teardown(() => f.close());
    return f;
  }

  /** Waits for an event of the container whose action starts with `action` (e.g. "kill"). */
  async next(name: string, action: string, timeoutMs: number, after = 0): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    const seen = () =>
      this.events.some((e) => e.name === name && e.action.startsWith(action) && e.at >= after);
    while (!seen()) {
      const left = end - Date.now();
      if (left <= 0) return false;
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), sleep(Math.min(left, 500))]);
    }
    return true;
  }

  /** Events of the container whose action starts with `action`, seen at or after `sinceMs`. */
  count(name: string, action: string, sinceMs = 0): number {
    return this.events.filter((e) => e.name === name && e.action.startsWith(action) && e.at >= sinceMs)
      .length;
  }

  close(): void {
    const s = this.stream as (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
    s?.destroy?.();
  }
}

/** Removes every container of this run, on any engine given (the final safety net). */
export async function removeRunContainers(docker: Docker = mainDocker): Promise<number> {
  const list = await docker.listContainers({
    all: true,
    filters: JSON.stringify({ label: [`${CONTAINER_LABELS.composeProject}=${PROJECT}`] }),
  });
  await Promise.all(
    list.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined),
    ),
  );
  return list.length;
}

// Misc ---------------------------------------------------------------------------------------------

/** Resident set size of a process, in MB (from /proc). */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

/** Whether the service's configuration knows a setting (some arrive while this script is written). */
export const hasSetting = (name: string): boolean => name in EnvSchema.properties;

export const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
export const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

/** Decisions in the audit log for a container (or about a fingerprint), after a time. */
export function decisions(
  lines: Array<Record<string, unknown>>,
  match: { container?: string; fingerprint?: string; sinceMs?: number },
): Array<Record<string, unknown>> {
  return lines.filter(
    (l) =>
      l.event === 'decision' &&
      (match.container === undefined || l.container === match.container) &&
      (match.fingerprint === undefined || l.fingerprint === match.fingerprint) &&
      (match.sinceMs === undefined || Date.parse(String(l.time)) >= match.sinceMs),
  );
}

export { ADMIN_TOKEN, WEBHOOK_TOKEN };

/** A labelled test container on any engine (the fixture's createTestContainer uses the main one). */
export async function createOn(
  ctx: Ctx,
  engine: Docker,
  o: { name: string; cmd?: string[]; restartPolicy?: string; labels?: Record<string, string> },
): Promise<{ id: string; name: string }> {
  const c = await engine.createContainer({
    name: o.name,
    Image: TEST_IMAGE,
    Cmd: o.cmd ?? containerCmd(),
    Labels: labelsFor(o.labels),
    StopTimeout: 2,
    Healthcheck: {
      Test: ['CMD-SHELL', `test ! -f ${BROKEN} || { echo "health: ${BROKEN} present"; exit 1; }`],
      Interval: 250_000_000,
      Timeout: 2_000_000_000,
      Retries: 1,
    },
    HostConfig: { NetworkMode: 'none', RestartPolicy: { Name: o.restartPolicy ?? 'no' } },
  });
  ctx.teardown(() => c.remove({ force: true }).catch(() => undefined));
  await c.start();
  return { id: c.id, name: o.name };
}

/** Runs a command in a container on any engine and waits for it. */
export async function execOn(engine: Docker, name: string, cmd: string[]): Promise<void> {
  const e = await engine.getContainer(name).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await e.start({ hijack: true, stdin: false });
  stream.resume();
  await new Promise<void>((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });
  stream.destroy();
}

export async function healthOn(engine: Docker, name: string): Promise<string> {
  const info = await engine.getContainer(name).inspect();
  return info.State.Health?.Status ?? (info.State.Running ? 'running' : info.State.Status);
}

/** A gauge or counter from the service's /metrics (the sum over the series matching `labels`). */
export async function metricValue(
  url: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const r = await http(`${url}/metrics`);
  let sum = 0;
  let found = false;
  for (const line of r.body.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_:]+)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const lbl = m[2] ?? '';
    if (!Object.entries(labels).every(([k, v]) => lbl.includes(`${k}="${v}"`))) continue;
    sum += Number(m[3]);
    found = true;
  }
  return found ? sum : Number.NaN;
}

/** Decisions in the service's audit log (see decisions). */
export const decisionsOf = (svc: RunningService, match: Parameters<typeof decisions>[1]) =>
  decisions(auditLines(svc.logFile), match);

/** The audit line of a remediation of the container that carries its result, after a time. */
export const remediationResult = (svc: RunningService, container: string, sinceMs = 0) =>
  linesOf(auditLines(svc.logFile), 'remediation', { container }, sinceMs).find((l) => l.result);

/** Audit lines of one kind after a time. */
export function linesOf(
  lines: Array<Record<string, unknown>>,
  event: string,
  match: Record<string, unknown> = {},
  sinceMs = 0,
): Array<Record<string, unknown>> {
  return lines.filter(
    (l) =>
      l.event === event &&
      Object.entries(match).every(([k, v]) => l[k] === v) &&
      Date.parse(String(l.time)) >= sinceMs,
  );
}
