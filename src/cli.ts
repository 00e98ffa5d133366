#!/usr/bin/env node
// autoheal-nexus: the operators' command line. It talks to a running service's admin API (AUTOHEAL_URL,
// ADMIN_TOKEN), prints tables for people and JSON for scripts (--json), follows a remediation until
// its verification ends, and exits non-zero with a clear message when something did not work.
// Arguments are parsed with node:util parseArgs (commander 15 needs Node 22; this service runs on 20).
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

const USAGE = `Usage: autoheal-nexus <command> [options]

Commands:
  status                        watched containers: health, attempts, cooldown, pause, last action
  restart <target>              restart a container and wait for its verification
  stop-start <target>           stop, then start a container, and wait for its verification
  cleanup                       free disk space on the host (prune, oversized logs) and wait
  pause <container> --for 1h    hold every remediation of a container for a while
  resume <container>            lift a pause
  reset <container>             clear attempts, cooldown and a given_up state
  incidents                     incidents with their signals, decisions and actions
  notify <text...>              send a message to the humans (Telegram); "-" reads it from stdin

  A target is a container name or id, service:web, or service:project/web.

Options:
  --url <url>           the service (default: $AUTOHEAL_URL, else http://127.0.0.1:9095)
  --json                print JSON instead of tables
  --reason <text>       why (kept in the audit log)
  --force               skip cooldown, attempt limits and the circuit breaker
                        (never scope, protection or a pause)
  --dry-run             decide and log, touch nothing
  --no-wait             return once the service has accepted the remediation
  --timeout <seconds>   how long to wait for the verification (default 600)
  --for <duration>      pause: how long (90s, 30m, 1h, 2d)
  --since <when>        incidents: since a duration ago (24h) or an ISO 8601 time (default 24h)
  --container <name>    incidents: of one container
  --all                 status: list containers outside the watch scope too
  --silent              notify: deliver without a notification sound
  --requested-by <who>  who asks, for the audit log (default cli:$USER)
  -h, --help            this help

Environment: AUTOHEAL_URL, ADMIN_TOKEN (or ADMIN_TOKEN_FILE).
Exit status: 0 done; 1 failed (the remediation, or a request); 2 usage or configuration error;
3 the policy skipped the remediation (the reason is printed).
`;

const OPTIONS = {
  url: { type: 'string' },
  json: { type: 'boolean' },
  reason: { type: 'string' },
  force: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  'no-wait': { type: 'boolean' },
  timeout: { type: 'string' },
  for: { type: 'string' },
  since: { type: 'string' },
  container: { type: 'string' },
  all: { type: 'boolean' },
  silent: { type: 'boolean' },
  'requested-by': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

/** A failure the user can act on: printed as one line, with its exit status. */
class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

interface Io {
  readonly env: Readonly<Record<string, string | undefined>>;
  out(text: string): void;
  err(text: string): void;
  readonly errIsTTY: boolean;
  readStdin(): Promise<string>;
}

interface RemediationView {
  id: string;
  target: string;
  action: string;
  state: string;
  done: boolean;
  container?: string;
  skipReason?: string;
  verification?: string;
  detail?: string;
  durationMs?: number;
  reclaimedBytes?: number;
}

interface ContainerView {
  name: string;
  state: string;
  health: string;
  watched: boolean;
  protected: boolean;
  attempts: number;
  maxAttempts: number;
  cooldownRemainingSeconds: number;
  pausedUntil: string | null;
  givenUp: boolean;
  inProgress?: string;
  lastAction?: string;
  lastActionAt?: string;
  lastResult?: string;
}

interface IncidentView {
  id: string;
  container: string;
  status: string;
  openedAt: string;
  closedAt?: string;
  alertname?: string;
  events: Array<{
    at: string;
    type: string;
    reason?: string;
    action?: string;
    result?: string;
    detail?: string;
  }>;
}

const ACTION_OF: Record<string, string> = {
  restart: 'restart',
  'stop-start': 'stop_start',
  cleanup: 'cleanup',
};

class Client {
  constructor(
    private readonly base: string,
    private readonly token: string,
    private readonly requester: string,
  ) {}

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          'x-requested-by': this.requester,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (err as Error).message;
      throw new CliError(
        `cannot reach autoheal-nexus at ${this.base}: ${why} (is it running? set AUTOHEAL_URL)`,
      );
    }
    const text = await res.text();
    let data: unknown;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      data = undefined;
    }
    if (res.status === 401) {
      throw new CliError(`the service refused the token (HTTP 401): check ADMIN_TOKEN`);
    }
    if (!res.ok) {
      const message =
        (data as { message?: string } | undefined)?.message ?? (text.slice(0, 200) || res.statusText);
      throw new CliError(`${message} (HTTP ${res.status})`);
    }
    return data as T;
  }
}

/** Shows what a wait is doing: a spinner on a terminal, one line per change otherwise (CI logs). */
class Progress {
  private text = '';
  private timer: NodeJS.Timeout | undefined;
  private frame = 0;
  private readonly started = Date.now();

  constructor(private readonly io: Io) {
    if (io.errIsTTY) {
      this.timer = setInterval(() => this.draw(), 120);
      this.timer.unref();
    }
  }

  update(text: string): void {
    if (text === this.text) return;
    this.text = text;
    if (this.io.errIsTTY) this.draw();
    else this.io.err(`${text}\n`);
  }

  private draw(): void {
    const frames = ['|', '/', '-', '\\'];
    const secs = Math.round((Date.now() - this.started) / 1000);
    this.io.err(`\r\x1b[K${frames[this.frame++ % frames.length]} ${this.text} (${secs}s)`);
  }

  end(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.io.errIsTTY) this.io.err('\r\x1b[K');
  }
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return `${[headers, ...rows]
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

const localTime = (isoText: string | null | undefined): string => {
  if (!isoText) return '-';
  const d = new Date(isoText);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
};

const seconds = (s: number): string => {
  if (s <= 0) return '-';
  const m = Math.floor(s / 60);
  return m ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
};

function readToken(env: Io['env']): string {
  if (env.ADMIN_TOKEN) return env.ADMIN_TOKEN;
  if (env.ADMIN_TOKEN_FILE) {
    try {
      return readFileSync(env.ADMIN_TOKEN_FILE, 'utf8').trim();
    } catch (err) {
      throw new CliError(
        `ADMIN_TOKEN_FILE: cannot read ${env.ADMIN_TOKEN_FILE}: ${(err as NodeJS.ErrnoException).code}`,
        2,
      );
    }
  }
  throw new CliError('ADMIN_TOKEN is not set: export the token the service was started with', 2);
}

function baseUrl(v: Values, env: Io['env']): string {
  const text = v.url ?? env.AUTOHEAL_URL ?? 'http://127.0.0.1:9095';
  try {
    const u = new URL(text);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http');
  } catch {
    throw new CliError(`not an http(s) URL: "${text}" (--url or AUTOHEAL_URL)`, 2);
  }
  return text.replace(/\/+$/, '');
}

function defaultRequester(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}

function expectArgs(command: string, args: string[], n: number, what: string): void {
  if (args.length !== n) {
    throw new CliError(
      `${command}: expected ${what}${args.length > n ? `, got extra "${args.slice(n).join(' ')}"` : ''}`,
      2,
    );
  }
}

async function remediate(
  api: Client,
  io: Io,
  v: Values,
  action: string,
  target: string | undefined,
): Promise<number> {
  const timeoutSec = v.timeout === undefined ? 600 : Number(v.timeout);
  if (!Number.isFinite(timeoutSec) || timeoutSec <= 0) {
    throw new CliError(`--timeout: expected a number of seconds, got "${v.timeout}"`, 2);
  }
  const accepted = await api.call<{ id: string; target: string; url: string }>(
    'POST',
    '/api/v1/remediations',
    {
      action,
      ...(target === undefined ? {} : { target }),
      ...(v.reason === undefined ? {} : { reason: v.reason }),
      force: v.force ?? false,
      dryRun: v['dry-run'] ?? false,
    },
  );
  const label = `${action} of ${accepted.target}`;
  if (v['no-wait']) {
    if (v.json) io.out(`${JSON.stringify(accepted)}\n`);
    else io.out(`${label} accepted: ${accepted.id}\n`);
    return 0;
  }
  const progress = new Progress(io);
  const deadline = Date.now() + timeoutSec * 1000;
  let r: RemediationView;
  try {
    for (;;) {
      r = await api.call<RemediationView>('GET', accepted.url);
      progress.update(`${label}: ${r.state === 'running' ? 'running, verifying recovery' : r.state}`);
      if (r.done) break;
      if (Date.now() > deadline) {
        throw new CliError(
          `${label} is still ${r.state} after ${timeoutSec}s; it goes on in the service (id ${r.id})`,
        );
      }
      await sleep(300);
    }
  } finally {
    progress.end();
  }
  if (v.json) io.out(`${JSON.stringify(r)}\n`);
  const took = r.durationMs === undefined ? '' : ` in ${(r.durationMs / 1000).toFixed(1)}s`;
  const detail = r.detail ? `: ${r.detail}` : '';
  switch (r.state) {
    case 'succeeded':
      if (!v.json) io.out(`${label} succeeded${took}${detail}\n`);
      return 0;
    case 'dry_run':
      if (!v.json) io.out(`${label}: dry run, the policy would act; nothing was touched\n`);
      return 0;
    case 'skipped': {
      const hints: Record<string, string> = {
        cooldown_active: '--force skips the cooldown',
        max_attempts: '--force skips the attempt limit',
        circuit_open: '--force skips the circuit breaker',
        given_up: `\`autoheal-nexus reset ${r.container ?? accepted.target}\` clears given_up (or use --force)`,
        paused: `\`autoheal-nexus resume ${accepted.target}\` lifts the pause`,
      };
      const hint = r.skipReason ? hints[r.skipReason] : undefined;
      io.err(
        `autoheal-nexus: ${label} skipped: ${r.skipReason ?? 'unknown reason'}${detail}${hint ? `; ${hint}` : ''}\n`,
      );
      return 3;
    }
    default:
      io.err(`autoheal-nexus: ${label} ${r.state.replace('_', ' ')}${took}${detail}\n`);
      return 1;
  }
}

async function status(api: Client, io: Io, v: Values): Promise<number> {
  const { containers } = await api.call<{ containers: ContainerView[] }>(
    'GET',
    `/api/v1/containers${v.all ? '?all=true' : ''}`,
  );
  if (v.json) {
    io.out(`${JSON.stringify(containers)}\n`);
    return 0;
  }
  if (containers.length === 0) {
    io.out(
      'no watched containers (WATCH_SCOPE decides which; by default those labelled autoheal.enable=true)\n',
    );
    return 0;
  }
  const rows = containers.map((c) => {
    const notes = [
      c.givenUp ? 'GIVEN UP' : '',
      c.inProgress ? `${c.inProgress} running` : '',
      c.protected ? 'protected' : '',
      c.watched ? '' : 'not watched',
    ].filter(Boolean);
    return [
      c.name,
      c.state,
      c.health,
      `${c.attempts}/${c.maxAttempts}`,
      seconds(c.cooldownRemainingSeconds),
      localTime(c.pausedUntil),
      c.lastAction ? `${c.lastAction} ${localTime(c.lastActionAt)}` : '-',
      c.lastResult ?? '-',
      notes.join(', '),
    ];
  });
  io.out(
    table(
      ['NAME', 'STATE', 'HEALTH', 'ATTEMPTS', 'COOLDOWN', 'PAUSED UNTIL', 'LAST ACTION', 'RESULT', 'NOTE'],
      rows,
    ),
  );
  return 0;
}

async function incidents(api: Client, io: Io, v: Values): Promise<number> {
  const q = new URLSearchParams({ since: v.since ?? '24h' });
  if (v.container) q.set('container', v.container);
  const { incidents: list } = await api.call<{ incidents: IncidentView[] }>('GET', `/api/v1/incidents?${q}`);
  if (v.json) {
    io.out(`${JSON.stringify(list)}\n`);
    return 0;
  }
  if (list.length === 0) {
    io.out(`no incidents since ${v.since ?? '24h'}${v.container ? ` for ${v.container}` : ''}\n`);
    return 0;
  }
  const rows = list.map((i) => {
    const last = i.events[i.events.length - 1];
    const lastText = last
      ? [last.type, last.action, last.result ?? last.reason, last.detail].filter(Boolean).join(' ')
      : '';
    return [
      localTime(i.openedAt),
      i.container,
      i.status,
      localTime(i.closedAt),
      i.alertname ?? '-',
      String(i.events.length),
      lastText.length > 60 ? `${lastText.slice(0, 57)}...` : lastText,
    ];
  });
  io.out(table(['OPENED', 'CONTAINER', 'STATUS', 'CLOSED', 'ALERT', 'EVENTS', 'LAST EVENT'], rows));
  return 0;
}

async function run(argv: string[], io: Io): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new CliError(`${(err as Error).message}\n\n${USAGE}`, 2);
  }
  const v = parsed.values;
  const [command, ...args] = parsed.positionals;
  if (v.help || command === undefined || command === 'help') {
    (command === undefined && !v.help ? io.err : io.out)(USAGE);
    return command === undefined && !v.help ? 2 : 0;
  }
  const known = [
    'status',
    'restart',
    'stop-start',
    'cleanup',
    'pause',
    'resume',
    'reset',
    'incidents',
    'notify',
  ];
  if (!known.includes(command)) throw new CliError(`unknown command "${command}"\n\n${USAGE}`, 2);

  const api = new Client(baseUrl(v, io.env), readToken(io.env), v['requested-by'] ?? defaultRequester());
  switch (command) {
    case 'status':
      expectArgs(command, args, 0, 'no arguments');
      return status(api, io, v);
    case 'restart':
    case 'stop-start':
      expectArgs(command, args, 1, 'one target: a container name or id, service:web or service:project/web');
      return remediate(api, io, v, ACTION_OF[command] ?? command, args[0]);
    case 'cleanup':
      expectArgs(command, args, 0, 'no arguments (cleanup acts on the whole host)');
      return remediate(api, io, v, 'cleanup', undefined);
    case 'pause': {
      expectArgs(command, args, 1, 'one container name');
      if (!v.for) throw new CliError('pause: say how long with --for, e.g. --for 1h', 2);
      const r = await api.call<{ container: string; pausedUntil: string }>(
        'POST',
        `/api/v1/containers/${encodeURIComponent(args[0] ?? '')}/pause`,
        { for: v.for, ...(v.reason === undefined ? {} : { reason: v.reason }) },
      );
      io.out(
        v.json
          ? `${JSON.stringify(r)}\n`
          : `${r.container}: healing paused until ${localTime(r.pausedUntil)}\n`,
      );
      return 0;
    }
    case 'resume': {
      expectArgs(command, args, 1, 'one container name');
      const r = await api.call<{ container: string; pausedUntil: string | null; detail?: string }>(
        'DELETE',
        `/api/v1/containers/${encodeURIComponent(args[0] ?? '')}/pause`,
      );
      if (v.json) io.out(`${JSON.stringify(r)}\n`);
      else if (r.pausedUntil)
        io.out(`${r.container}: ${r.detail ?? 'still paused'} until ${localTime(r.pausedUntil)}\n`);
      else io.out(`${r.container}: healing resumed\n`);
      return 0;
    }
    case 'reset': {
      expectArgs(command, args, 1, 'one container name');
      const r = await api.call<{ container: string; attempts: number; givenUp: boolean }>(
        'POST',
        `/api/v1/containers/${encodeURIComponent(args[0] ?? '')}/reset`,
        v.reason === undefined ? {} : { reason: v.reason },
      );
      io.out(
        v.json
          ? `${JSON.stringify(r)}\n`
          : `${r.container}: reset (attempts ${r.attempts}, healing enabled)\n`,
      );
      return 0;
    }
    case 'incidents':
      expectArgs(command, args, 0, 'no arguments (use --since and --container)');
      return incidents(api, io, v);
    case 'notify': {
      if (args.length === 0) throw new CliError('notify: give the text, or "-" to read it from stdin', 2);
      const text = args.length === 1 && args[0] === '-' ? (await io.readStdin()).trimEnd() : args.join(' ');
      if (!text) throw new CliError('notify: the text is empty', 2);
      const r = await api.call<{ id: string }>('POST', '/api/v1/notify', { text, silent: v.silent ?? false });
      io.out(v.json ? `${JSON.stringify(r)}\n` : `message queued (${r.id})\n`);
      return 0;
    }
  }
  return 2;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text;
}

const io: Io = {
  env: process.env,
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
  errIsTTY: Boolean(process.stderr.isTTY),
  readStdin: () => readAll(process.stdin),
};

run(process.argv.slice(2), io).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof CliError) {
      process.stderr.write(`autoheal-nexus: ${err.message}\n`);
      process.exitCode = err.exitCode;
    } else {
      process.stderr.write(`autoheal-nexus: unexpected error: ${(err as Error).stack ?? err}\n`);
      process.exitCode = 1;
    }
  },
);
