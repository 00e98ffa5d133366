// The CLI's text output for people: tables, local times, the outcome of a remediation with a hint for
// each skip reason, and the progress shown while a remediation is followed. --json bypasses all of it.
import type {
  ContainerView,
  ForecastListView,
  ServiceListView,
  IncidentView,
  RemediationView,
  UpdateListView,
} from './api.js';
import type { Io } from './io.js';

/** Shows what a wait is doing: a spinner on a terminal, one line per change otherwise (CI logs). */
export class Progress {
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

export function table(headers: string[], rows: string[][]): string {
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

export const localTime = (isoText: string | null | undefined): string => {
  if (!isoText) return '-';
  const d = new Date(isoText);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
};

export const seconds = (s: number): string => {
  if (s <= 0) return '-';
  const m = Math.floor(s / 60);
  return m ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
};

export function containersText(containers: readonly ContainerView[]): string {
  if (containers.length === 0) {
    return 'no watched containers (WATCH_SCOPE decides which; by default those labelled autoheal.enable=true)\n';
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
  return table(
    ['NAME', 'STATE', 'HEALTH', 'ATTEMPTS', 'COOLDOWN', 'PAUSED UNTIL', 'LAST ACTION', 'RESULT', 'NOTE'],
    rows,
  );
}

export function incidentsText(
  list: readonly IncidentView[],
  query: { since: string; container: string | undefined },
): string {
  if (list.length === 0) {
    return `no incidents since ${query.since}${query.container ? ` for ${query.container}` : ''}\n`;
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
  return table(['OPENED', 'CONTAINER', 'STATUS', 'CLOSED', 'ALERT', 'EVENTS', 'LAST EVENT'], rows);
}

/** The progress line while a remediation is followed. */
const short = (d: string | undefined) => (d ? d.replace(/^sha256:/, '').slice(0, 12) : '-');

/** The update check: one row per watched container, what it runs and what its tag names now. */
export function updatesText(list: UpdateListView): string {
  if (list.containers.length === 0) return 'no watched containers\n';
  const rows = list.containers.map((c) => [
    c.container,
    c.rolledBackAt ? 'rolled back' : c.status === 'available' ? 'AVAILABLE' : c.status,
    c.mode,
    c.reference,
    short(c.localDigest),
    short(c.remoteDigest),
    c.status === 'unknown' ? c.detail : '',
  ]);
  const available = list.containers.filter((c) => c.status === 'available').length;
  return `${table(['CONTAINER', 'STATUS', 'MODE', 'IMAGE', 'RUNS', 'REGISTRY', 'NOTE'], rows)}${available} update${available === 1 ? '' : 's'} available (checked ${localTime(list.checkedAt)})\n`;
}

/** One row per forecast: the target, the kind, when it fails, the fit, and what was decided. */
/** Compose services, stacks and Swarm services, one table each (the Swarm one only on a manager). */
export function servicesText(list: ServiceListView): string {
  const last = (s: { lastAction?: string; lastResult?: string; lastActionAt?: string }) =>
    s.lastAction
      ? `${s.lastAction} ${s.lastResult ?? 'running'} ${s.lastActionAt ? localTime(s.lastActionAt) : ''}`.trim()
      : '-';
  const held = (s: { pausedUntil: string | null; givenUp: boolean }) =>
    s.pausedUntil ? `paused until ${localTime(s.pausedUntil)}` : s.givenUp ? 'given up' : '-';
  const parts = [
    list.services.length
      ? table(
          ['SERVICE', 'HEALTHY/RUNNING/ALL', 'SCALE', 'ATTEMPTS', 'HELD', 'LAST ACTION'],
          list.services.map((s) => [
            s.key,
            `${s.replicas.healthy}/${s.replicas.running}/${s.replicas.total}`,
            s.scale ? `${s.scale.min}-${s.scale.max}` : '-',
            `${s.attempts}/${s.maxAttempts}`,
            held(s),
            last(s),
          ]),
        )
      : 'no Compose service watched\n',
    list.stacks.length
      ? table(
          ['STACK', 'HEALTHY/RUNNING/ALL', 'SERVICES', 'LAST RESTART_STACK'],
          list.stacks.map((p) => [
            `project:${p.project}`,
            `${p.containers.healthy}/${p.containers.running}/${p.containers.total}`,
            p.services.join(','),
            p.lastRestart ? `${p.lastRestart.state} ${localTime(p.lastRestart.at)}` : '-',
          ]),
        )
      : 'no Compose project watched\n',
  ];
  if (list.swarm.manager)
    parts.push(
      list.swarm.services.length
        ? table(
            ['SWARM SERVICE', 'MODE', 'RUNNING/DESIRED', 'HEALTH', 'ATTEMPTS', 'LAST ACTION'],
            list.swarm.services.map((s) => [
              s.key,
              s.mode,
              `${s.replicas.running}/${s.replicas.desired ?? s.replicas.wanted}`,
              s.health,
              `${s.attempts}/${s.maxAttempts}`,
              last(s),
            ]),
          )
        : 'no Swarm service watched\n',
    );
  return parts.join('\n');
}

export function forecastsText(list: ForecastListView): string {
  if (!list.enabled) return 'forecasts are off: set PROMETHEUS_URL\n';
  if (list.forecasts.length === 0)
    return 'no forecasts yet (no series for the watched containers, or the first run is still to come)\n';
  const mib = (v: number, kind: string) =>
    kind === 'restarts' ? String(Math.round(v)) : `${(v / 1024 ** 2).toFixed(0)}Mi`;
  const rows = list.forecasts.map((f) => [
    f.target,
    f.kind,
    `${mib(f.current, f.kind)}/${mib(f.limit, f.kind)}`,
    f.failureAt ? localTime(f.failureAt) : '-',
    f.r2 === undefined ? '-' : f.r2.toFixed(3),
    f.reason,
    f.heldUntil
      ? `held until ${localTime(f.heldUntil)}`
      : f.plannedAt
        ? `${f.action ?? 'action'} at ${localTime(f.plannedAt)} (${f.plannedReason ?? ''})`
        : f.lastAction
          ? `${f.action ?? 'action'} ${f.lastAction.helped === false ? 'did not help' : 'taken'} at ${localTime(f.lastAction.at)}`
          : f.detail,
  ]);
  return table(['TARGET', 'KIND', 'NOW/LIMIT', 'FAILS AT', 'R²', 'VERDICT', 'NEXT'], rows);
}

export const remediationProgress = (label: string, r: RemediationView): string =>
  `${label}: ${r.state === 'running' ? 'running, verifying recovery' : r.state}`;

/**
 * How a finished remediation ends the command: its exit status and, unless --json printed it already, the
 * line that says so (on stderr when it did not succeed). `target` is the target the service accepted.
 */
export function remediationOutcome(
  label: string,
  target: string,
  r: RemediationView,
  json: boolean,
): { code: number; out?: string; err?: string } {
  const took = r.durationMs === undefined ? '' : ` in ${(r.durationMs / 1000).toFixed(1)}s`;
  const detail = r.detail ? `: ${r.detail}` : '';
  switch (r.state) {
    case 'succeeded':
      return json ? { code: 0 } : { code: 0, out: `${label} succeeded${took}${detail}\n` };
    case 'dry_run':
      return json
        ? { code: 0 }
        : { code: 0, out: `${label}: dry run, the policy would act; nothing was touched\n` };
    case 'skipped': {
      const hints: Record<string, string> = {
        cooldown_active: '--force skips the cooldown',
        max_attempts: '--force skips the attempt limit',
        circuit_open: '--force skips the circuit breaker',
        given_up: `\`autoheal-nexus reset ${r.container ?? target}\` clears given_up (or use --force)`,
        paused: `\`autoheal-nexus resume ${target}\` lifts the pause`,
        not_opted_in: 'label the container autoheal.update=apply (or notify, to update it by hand only)',
        scale_limit: 'the service labels autoheal.scale.min and autoheal.scale.max set its limits',
      };
      const hint = r.skipReason ? hints[r.skipReason] : undefined;
      return {
        code: 3,
        err: `autoheal-nexus: ${label} skipped: ${r.skipReason ?? 'unknown reason'}${detail}${hint ? `; ${hint}` : ''}\n`,
      };
    }
    default:
      return { code: 1, err: `autoheal-nexus: ${label} ${r.state.replace('_', ' ')}${took}${detail}\n` };
  }
}
