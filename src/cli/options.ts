// The CLI's options, written once: the node:util parseArgs configuration and the help text of each.
// parseArgs ignores the keys it does not know (`value`, `help`), so the same object serves both.
import type { parseArgs } from 'node:util';

interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  /** The value's name in the help, e.g. `<url>`; absent for a flag. */
  readonly value?: string;
  /** One line per line of help. */
  readonly help: readonly string[];
}

export const OPTIONS = {
  url: {
    type: 'string',
    value: 'url',
    help: [
      'the service (default: $AUTOHEAL_URL, else http://$HOST:$PORT',
      'as the service reads them, else http://127.0.0.1:9095)',
    ],
  },
  json: { type: 'boolean', help: ['print JSON instead of tables'] },
  reason: { type: 'string', value: 'text', help: ['why (kept in the audit log)'] },
  force: {
    type: 'boolean',
    help: ['skip cooldown, attempt limits and the circuit breaker', '(never scope, protection or a pause)'],
  },
  'dry-run': { type: 'boolean', help: ['decide and log, touch nothing'] },
  'no-wait': { type: 'boolean', help: ['return once the service has accepted the remediation'] },
  timeout: {
    type: 'string',
    value: 'seconds',
    help: ['how long to wait for the verification (default 600)'],
  },
  for: { type: 'string', value: 'duration', help: ['pause: how long (90s, 30m, 1h, 2d)'] },
  since: {
    type: 'string',
    value: 'when',
    help: ['incidents: since a duration ago (24h) or an ISO 8601 time (default 24h)'],
  },
  container: { type: 'string', value: 'name', help: ['incidents: of one container'] },
  all: { type: 'boolean', help: ['status: list containers outside the watch scope too'] },
  silent: { type: 'boolean', help: ['notify: deliver without a notification sound'] },
  apply: {
    type: 'boolean',
    help: ['updates: run the update check now (apply and notify, as a schedule would)'],
  },
  'requested-by': {
    type: 'string',
    value: 'who',
    help: ['who asks, for the audit log (default cli:$USER)'],
  },
  dotenv: {
    type: 'string',
    value: 'path',
    help: ['read unset variables from this file if it exists (npm run cli: .env)'],
  },
  version: { type: 'boolean', short: 'v', help: ['print the version and exit'] },
  help: { type: 'boolean', short: 'h', help: ['this help'] },
} as const satisfies Record<string, OptionSpec>;

export type Parsed = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
export type Values = Parsed['values'];

/** The Options section of the usage: `  --name <value>` padded to one column, then the help. */
export function optionsUsage(): string {
  const width = 22;
  return Object.entries(OPTIONS as Record<string, OptionSpec>)
    .map(([name, o]) => {
      const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.value ? ` <${o.value}>` : ''}`;
      const [first = '', ...rest] = o.help;
      return [`  ${flag.padEnd(width)}${first}`, ...rest.map((line) => `  ${''.padEnd(width)}${line}`)]
        .map((line) => `${line}\n`)
        .join('');
    })
    .join('');
}
