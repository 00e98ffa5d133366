// The CLI's commands, written once: each entry's name, arguments, summary and handler. The usage text,
// the check that a command exists and its argument count, and the dispatch are all generated from it,
// so a new command is one entry here.
import { setTimeout as sleep } from 'node:timers/promises';
import type { AdminClient, RemediationView } from './api.js';
import { CliError, type Io } from './io.js';
import { optionsUsage, type Values } from './options.js';
import {
  containersText,
  incidentsText,
  localTime,
  Progress,
  remediationOutcome,
  remediationProgress,
  updatesText,
  forecastsText,
  servicesText,
} from './render.js';

export interface CommandContext {
  readonly api: AdminClient;
  readonly io: Io;
  readonly values: Values;
}

export interface Command {
  readonly name: string;
  /** The arguments, and an option it cannot do without, as the usage shows them: `<container> --for 1h`. */
  readonly synopsis: string;
  readonly summary: string;
  /** Exactly this many arguments, else a usage error saying what was expected; absent: the handler checks. */
  readonly expects?: { readonly count: number; readonly what: string };
  /** Runs the command with its arguments (already counted); resolves to the exit status. */
  readonly run: (ctx: CommandContext, args: string[]) => Promise<number>;
}

const TARGET =
  'one target: a container name or id, service:web, service:project/web, project:NAME or swarm:NAME';

export const COMMANDS: readonly Command[] = [
  {
    name: 'status',
    synopsis: '',
    summary: 'watched containers: health, attempts, cooldown, pause, last action',
    expects: { count: 0, what: 'no arguments' },
    run: status,
  },
  {
    name: 'restart',
    synopsis: '<target>',
    summary: 'restart a container and wait for its verification',
    expects: { count: 1, what: TARGET },
    run: (ctx, [target]) => remediate(ctx, 'restart', target),
  },
  {
    name: 'stop-start',
    synopsis: '<target>',
    summary: 'stop, then start a container, and wait for its verification',
    expects: { count: 1, what: TARGET },
    run: (ctx, [target]) => remediate(ctx, 'stop_start', target),
  },
  {
    name: 'recreate',
    synopsis: '<target>',
    summary: 're-create a container from its definition (the old one kept until the new one is verified)',
    expects: { count: 1, what: TARGET },
    run: (ctx, [target]) => remediate(ctx, 'recreate', target),
  },
  {
    name: 'restart-stack',
    synopsis: '<project>',
    summary: 'restart a whole Compose project in depends_on order, each layer healthy before the next',
    expects: { count: 1, what: 'one Compose project name' },
    run: (ctx, [project]) =>
      remediate(ctx, 'restart_stack', project?.startsWith('project:') ? project : `project:${project}`),
  },
  {
    name: 'rollback',
    synopsis: '<swarm:service>',
    summary: 'return a Swarm service to its previous spec and wait for its tasks',
    expects: { count: 1, what: 'one Swarm service (swarm:NAME)' },
    run: (ctx, [service]) =>
      remediate(ctx, 'rollback', service?.startsWith('swarm:') ? service : `swarm:${service}`),
  },
  {
    name: 'scale',
    synopsis: '<service> <+N|-N>',
    summary: 'add or remove replicas of a Compose or Swarm service, within its limits, and wait',
    expects: { count: 2, what: 'a service (web, service:project/web or swarm:web) and a step (+2, -1)' },
    run: scale,
  },
  {
    name: 'cleanup',
    synopsis: '',
    summary: 'free disk space on the host (prune, oversized logs) and wait',
    expects: { count: 0, what: 'no arguments (cleanup acts on the whole host)' },
    run: (ctx) => remediate(ctx, 'cleanup', undefined),
  },
  {
    name: 'update',
    synopsis: '<target>',
    summary: 'pull its image tag, re-create it on the new image, roll back unless healthy',
    expects: { count: 1, what: TARGET },
    run: (ctx, [target]) => remediate(ctx, 'update', target),
  },
  {
    name: 'updates',
    synopsis: '',
    summary: 'which watched containers have a newer image (--apply: run the update check now)',
    expects: { count: 0, what: 'no arguments (--apply runs the check run)' },
    run: updates,
  },
  {
    name: 'pause',
    synopsis: '<container> --for 1h',
    summary: 'hold every remediation of a container for a while',
    expects: { count: 1, what: 'one container name' },
    run: pause,
  },
  {
    name: 'resume',
    synopsis: '<container>',
    summary: 'lift a pause',
    expects: { count: 1, what: 'one container name' },
    run: resume,
  },
  {
    name: 'reset',
    synopsis: '<container>',
    summary: 'clear attempts, cooldown and a given_up state',
    expects: { count: 1, what: 'one container name' },
    run: reset,
  },
  {
    name: 'incidents',
    synopsis: '',
    summary: 'incidents with their signals, decisions and actions',
    expects: { count: 0, what: 'no arguments (use --since and --container)' },
    run: incidents,
  },
  {
    name: 'services',
    synopsis: '',
    summary: 'watched Compose services (replicas, scale limits), stacks (last restart_stack), Swarm services',
    expects: { count: 0, what: 'no arguments' },
    run: async ({ api, io, values: v }) => {
      const list = await api.services();
      io.out(v.json ? json(list) : servicesText(list));
      return 0;
    },
  },
  {
    name: 'forecasts',
    synopsis: '',
    summary: 'memory and disk forecasts: when each fails, the fit, the preventive action placed',
    expects: { count: 0, what: 'no arguments' },
    run: async ({ api, io, values: v }) => {
      const list = await api.forecasts();
      io.out(v.json ? json(list) : forecastsText(list));
      return 0;
    },
  },
  {
    name: 'notify',
    synopsis: '<text...>',
    summary: 'send a message to the humans (Telegram); "-" reads it from stdin',
    run: notify,
  },
];

export const findCommand = (name: string): Command | undefined => COMMANDS.find((c) => c.name === name);

/** Levenshtein distance of two short words (insert, delete, substitute: one each). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

/**
 * The commands a mistyped name was probably meant to be: the nearest by edit distance within a third of
 * the name's length (at least 1, at most 3), or those it is a prefix of; nearest first.
 */
export function suggestCommands(name: string): string[] {
  const limit = Math.min(3, Math.max(1, Math.floor(name.length / 3)));
  const scored = COMMANDS.map((c) => ({ name: c.name, d: editDistance(name, c.name) }))
    .filter((c) => c.d <= limit || (name.length >= 3 && c.name.startsWith(name)))
    .sort((x, y) => x.d - y.d || x.name.localeCompare(y.name));
  return scored.map((c) => c.name);
}

/** The message for a command that is not in the table: a suggestion, and where the list is. */
export function unknownCommand(name: string): string {
  const near = suggestCommands(name);
  const hint = near.length ? `; did you mean ${near.map((n) => `"${n}"`).join(' or ')}?` : '';
  return `unknown command "${name}"${hint} (autoheal-nexus --help lists the commands)`;
}

/** A usage error (exit 2) unless `args` has the count the command expects. */
export function checkArgs(command: Command, args: string[]): void {
  const n = command.expects?.count;
  if (n === undefined || args.length === n) return;
  throw new CliError(
    `${command.name}: expected ${command.expects?.what}${args.length > n ? `, got extra "${args.slice(n).join(' ')}"` : ''}`,
    2,
  );
}

export function usage(): string {
  const commands = COMMANDS.map(
    (c) => `  ${[c.name, c.synopsis].filter(Boolean).join(' ').padEnd(30)}${c.summary}\n`,
  ).join('');
  return `Usage: autoheal-nexus <command> [options]

Commands:
${commands}
  A target is a container name or id, service:web, service:project/web, project:NAME (every
  container of a Compose project), or swarm:NAME (a Swarm service, on a manager).

Options:
${optionsUsage()}
Environment: AUTOHEAL_URL (default: http://HOST:PORT as the service reads them, else
http://127.0.0.1:9095), ADMIN_TOKEN (or ADMIN_TOKEN_FILE).
Exit status: 0 done; 1 failed (the remediation, or a request); 2 usage or configuration error;
3 the policy skipped the remediation (the reason is printed).
`;
}

const json = (value: unknown): string => `${JSON.stringify(value)}\n`;

/** `scale web +2`: a bare name is a Compose service; the sign says the direction. */
function scale(ctx: CommandContext, [service = '', step = '']: string[]): Promise<number> {
  const m = /^([+-])([0-9]{1,3})$/.exec(step);
  if (!m?.[1] || !m[2] || Number(m[2]) < 1) {
    throw new CliError(`scale: the step is +N or -N (for example +2 or -1), got "${step}"`, 2);
  }
  const target = /^(service|swarm):/.test(service) ? service : `service:${service}`;
  return remediate(ctx, m[1] === '+' ? 'scale_up' : 'scale_down', target, Number(m[2]));
}

async function remediate(
  { api, io, values: v }: CommandContext,
  action: string,
  target: string | undefined,
  step?: number,
): Promise<number> {
  const timeoutSec = v.timeout === undefined ? 600 : Number(v.timeout);
  if (!Number.isFinite(timeoutSec) || timeoutSec <= 0) {
    throw new CliError(`--timeout: expected a number of seconds, got "${v.timeout}"`, 2);
  }
  const accepted = await api.remediate({
    action,
    ...(target === undefined ? {} : { target }),
    ...(step === undefined ? {} : { step }),
    ...(v.reason === undefined ? {} : { reason: v.reason }),
    force: v.force ?? false,
    dryRun: v['dry-run'] ?? false,
  });
  const label = `${action} of ${accepted.target}`;
  if (v['no-wait']) {
    io.out(v.json ? json(accepted) : `${label} accepted: ${accepted.id}\n`);
    return 0;
  }
  const progress = new Progress(io);
  const deadline = Date.now() + timeoutSec * 1000;
  let r: RemediationView;
  try {
    for (;;) {
      r = await api.remediation(accepted.url);
      progress.update(remediationProgress(label, r));
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
  if (v.json) io.out(json(r));
  const outcome = remediationOutcome(label, accepted.target, r, v.json ?? false);
  if (outcome.out) io.out(outcome.out);
  if (outcome.err) io.err(outcome.err);
  return outcome.code;
}

async function updates({ api, io, values: v }: CommandContext): Promise<number> {
  if (!v.apply) {
    const list = await api.updates();
    io.out(v.json ? json(list) : updatesText(list));
    return 0;
  }
  const run = await api.runUpdates({
    dryRun: v['dry-run'] ?? false,
    ...(v.reason === undefined ? {} : { reason: v.reason }),
  });
  if (v.json) {
    io.out(json(run));
    return 0;
  }
  const lines = run.requested.map((r) => `update of ${r.target} requested: ${r.remediationId}\n`);
  if (run.notified.length) lines.push(`listed to the humans: ${run.notified.join(', ')}\n`);
  io.out(`${updatesText(run)}${lines.join('') || 'nothing to update\n'}`);
  return 0;
}

async function status({ api, io, values: v }: CommandContext): Promise<number> {
  const { containers } = await api.containers(v.all ?? false);
  io.out(v.json ? json(containers) : containersText(containers));
  return 0;
}

async function incidents({ api, io, values: v }: CommandContext): Promise<number> {
  const since = v.since ?? '24h';
  const q = new URLSearchParams({ since });
  if (v.container) q.set('container', v.container);
  const { incidents: list } = await api.incidents(q);
  io.out(v.json ? json(list) : incidentsText(list, { since, container: v.container }));
  return 0;
}

async function pause({ api, io, values: v }: CommandContext, [container = '']: string[]): Promise<number> {
  if (!v.for) throw new CliError('pause: say how long with --for, e.g. --for 1h', 2);
  const r = await api.pause(container, {
    for: v.for,
    ...(v.reason === undefined ? {} : { reason: v.reason }),
  });
  io.out(v.json ? json(r) : `${r.container}: healing paused until ${localTime(r.pausedUntil)}\n`);
  return 0;
}

async function resume({ api, io, values: v }: CommandContext, [container = '']: string[]): Promise<number> {
  const r = await api.resume(container);
  if (v.json) io.out(json(r));
  else if (r.pausedUntil)
    io.out(`${r.container}: ${r.detail ?? 'still paused'} until ${localTime(r.pausedUntil)}\n`);
  else io.out(`${r.container}: healing resumed\n`);
  return 0;
}

async function reset({ api, io, values: v }: CommandContext, [container = '']: string[]): Promise<number> {
  const r = await api.reset(container, v.reason === undefined ? {} : { reason: v.reason });
  io.out(v.json ? json(r) : `${r.container}: reset (attempts ${r.attempts}, healing enabled)\n`);
  return 0;
}

async function notify({ api, io, values: v }: CommandContext, args: string[]): Promise<number> {
  if (args.length === 0) throw new CliError('notify: give the text, or "-" to read it from stdin', 2);
  const text = args.length === 1 && args[0] === '-' ? (await io.readStdin()).trimEnd() : args.join(' ');
  if (!text) throw new CliError('notify: the text is empty', 2);
  const r = await api.notify({ text, silent: v.silent ?? false });
  io.out(v.json ? json(r) : `message queued (${r.id})\n`);
  return 0;
}
