// The texts the bot answers commands with: /status and /incidents, from the admin API's own answers,
// as plain text that fits one Telegram message. Pure.
import type { ContainerStatus, IncidentOut } from '../http/admin-schemas.js';
import { cutPlain } from './format.js';

/** Room left under Telegram's 4,096 characters for the "… and N more" line. */
const LIMIT = 3_900;

const hhmm = (iso: string) => `${iso.slice(11, 16)} UTC`;

function healthIcon(c: ContainerStatus): string {
  if (c.givenUp) return '🚨';
  if (c.state !== 'running') return '⛔';
  if (c.health === 'unhealthy') return '🟥';
  if (c.health === 'starting') return '🟨';
  return '✅';
}

/** One line per watched container: health, state, attempts, pause, last action. */
export function statusReply(list: ReadonlyArray<ContainerStatus>, now: number): string {
  const watched = list.filter((c) => c.watched);
  if (watched.length === 0) return 'No container is watched (see WATCH_SCOPE and the autoheal labels).';
  const sick = watched.filter((c) => c.givenUp || c.state !== 'running' || c.health === 'unhealthy');
  const lines = [`${watched.length} watched, ${sick.length} need attention:`];
  // The sick first, then by name.
  const ordered = [...sick, ...watched.filter((c) => !sick.includes(c))];
  for (const [i, c] of ordered.entries()) {
    const parts = [`${c.state}${c.health !== 'none' ? `/${c.health}` : ''}`];
    if (c.attempts > 0) parts.push(`attempts ${c.attempts}/${c.maxAttempts}`);
    if (c.givenUp) parts.push('given up');
    if (c.pausedUntil) parts.push(`paused until ${hhmm(c.pausedUntil)}`);
    if (c.inProgress) parts.push(`${c.inProgress} running`);
    else if (c.lastAction && c.lastActionAt && now - Date.parse(c.lastActionAt) < 86_400_000)
      parts.push(`last ${c.lastAction} ${c.lastResult ?? ''} at ${hhmm(c.lastActionAt)}`.trim());
    const line = `${healthIcon(c)} ${c.name}: ${parts.join(', ')}`;
    if (lines.join('\n').length + line.length > LIMIT) {
      lines.push(`… and ${ordered.length - i} more (autoheal-nexus status lists them all)`);
      break;
    }
    lines.push(line);
  }
  return lines.join('\n');
}

/** The newest incidents: container, status, when, and what was done. */
export function incidentsReply(list: ReadonlyArray<IncidentOut>, since: string): string {
  if (list.length === 0) return `No incident in the last ${since}.`;
  const lines = [`${list.length} incident(s) in the last ${since}, newest first:`];
  for (const [i, inc] of list.entries()) {
    const actions = inc.events
      .filter((e) => e.type === 'action' || e.type === 'verification')
      .map((e) => `${e.action ?? e.type} ${e.result ?? ''}`.trim());
    const what = actions.length > 0 ? actions.slice(-3).join(' → ') : 'no action';
    const line =
      `${inc.status === 'open' ? '🔴' : '⚪'} ${inc.container} ${inc.status} since ${hhmm(inc.openedAt)}` +
      `${inc.alertname ? ` (${inc.alertname})` : ''}: ${cutPlain(what, 200)} [${inc.id.slice(0, 8)}]`;
    if (lines.join('\n').length + line.length > LIMIT) {
      lines.push(`… and ${list.length - i} more (autoheal-nexus incidents lists them all)`);
      break;
    }
    lines.push(line);
  }
  return lines.join('\n');
}
