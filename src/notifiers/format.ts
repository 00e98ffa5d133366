// Telegram message text for escalations, digests and free text, in the Bot API's HTML parse mode.
// Every value is escaped; a message never exceeds what Telegram accepts (4,096 characters after entity
// parsing), and a message that must be cut is cut between tags, never inside one. Pure: no I/O.
import type { EscalationKind } from '../core/escalation.js';
import type { Escalation } from './escalation.js';

/** Telegram's limit on a message's text after entity parsing (counted in UTF-16 code units). */
export const TELEGRAM_TEXT_LIMIT = 4096;

/** Escapes text for HTML parse mode; `"` too, so the same function is safe inside attributes. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

// Tags, the four named entities and numeric entities, and runs of plain text: the only tokens we emit.
const TOKEN = /<\/?([a-z][a-z0-9-]*)[^>]*>|&(?:#[0-9]+|#x[0-9a-fA-F]+|[a-zA-Z]+);|[^<&]+|[<&]/g;

/** The length Telegram counts: text after tags are removed and each entity is one character. */
export function visibleLength(html: string): number {
  let n = 0;
  for (const m of html.matchAll(TOKEN)) {
    const tok = m[0];
    if (tok.startsWith('<') && tok.length > 1) continue;
    n += tok.startsWith('&') && tok.length > 1 ? 1 : tok.length;
  }
  return n;
}

/** The text a reader sees: tags removed, entities decoded (the fallback when Telegram refuses the markup). */
export function htmlToPlain(html: string): string {
  return html
    .replace(/<[^>]*>/g, '')
    .replace(/&(#[0-9]+|#x[0-9a-fA-F]+|lt|gt|quot|amp);/g, (_m, e: string) => {
      if (e === 'lt') return '<';
      if (e === 'gt') return '>';
      if (e === 'quot') return '"';
      if (e === 'amp') return '&';
      const code = e.startsWith('#x') ? Number.parseInt(e.slice(2), 16) : Number.parseInt(e.slice(1), 10);
      return String.fromCodePoint(code);
    });
}

/** Cuts plain text to at most `max` UTF-16 units without splitting a surrogate pair. */
function sliceSafe(s: string, max: number): string {
  if (s.length <= max) return s;
  let end = Math.max(0, max);
  const code = s.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--; // would leave half a surrogate pair
  return s.slice(0, end);
}

/** Plain text cut to `max` visible characters, marked with an ellipsis when cut. */
export function cutPlain(s: string, max: number): string {
  if (s.length <= max) return s;
  if (max <= 1) return max === 1 ? '…' : '';
  return `${sliceSafe(s, max - 1)}…`;
}

/**
 * Cuts HTML to at most `limit` visible characters: cuts only between tokens or inside a text run, never
 * inside a tag or an entity, then closes the tags still open so the result parses.
 */
export function truncateHtml(html: string, limit = TELEGRAM_TEXT_LIMIT, marker = '…'): string {
  if (visibleLength(html) <= limit) return html;
  const budget = Math.max(0, limit - marker.length);
  const open: string[] = [];
  let out = '';
  let used = 0;
  for (const m of html.matchAll(TOKEN)) {
    const tok = m[0];
    const tag = m[1];
    if (tag !== undefined) {
      if (tok.startsWith('</')) {
        open.pop();
      } else if (!tok.endsWith('/>')) {
        open.push(tag);
      }
      out += tok;
      continue;
    }
    const len = tok.startsWith('&') && tok.length > 1 ? 1 : tok.length;
    if (used + len > budget) {
      if (len > 1 && !tok.startsWith('&')) out += sliceSafe(tok, budget - used);
      break;
    }
    out += tok;
    used += len;
  }
  out += marker;
  for (let i = open.length - 1; i >= 0; i--) out += `</${open[i]}>`;
  return out;
}

// ------------------------------------------------------------------------------------------------

export interface FormatOptions {
  /** Visible characters allowed (Telegram's limit unless a test wants a smaller one). */
  readonly limit?: number;
}

const TITLES: Record<EscalationKind, { icon: string; title: string }> = {
  given_up: { icon: '🚨', title: 'Gave up healing' },
  verification_failed: { icon: '⚠️', title: 'Remediation did not work' },
  circuit_open: { icon: '⛔', title: 'Circuit breaker open: automatic healing paused' },
  crash_loop: { icon: '🔁', title: 'Crash loop' },
  flapping: { icon: '🔁', title: 'Flapping: healed, then failing again' },
  alert: { icon: '🔥', title: 'Alert' },
  recovered: { icon: '✅', title: 'Recovered' },
  updates_available: { icon: '📦', title: 'Image updates available' },
  swarm_update: { icon: '⏸️', title: 'Swarm halted a service update' },
};

const SHORT: Record<EscalationKind, string> = {
  given_up: 'gave up',
  verification_failed: 'remediation failed',
  circuit_open: 'circuit breaker open',
  crash_loop: 'crash loop',
  flapping: 'flapping',
  alert: 'alert',
  recovered: 'recovered',
  updates_available: 'updates available',
  swarm_update: 'swarm update halted',
};

const isoTime = (ms: number) => `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
const clockTime = (ms: number) => new Date(ms).toISOString().slice(11, 19);

/** Only http(s) links become anchors; anything else would make Telegram refuse the whole message. */
function safeUrl(u: string | undefined): string | undefined {
  if (!u || u.length > 2048) return undefined;
  try {
    const url = new URL(u);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : undefined;
  } catch {
    return undefined;
  }
}

export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} bytes` : `${v.toFixed(1)} ${units[i]} (${n} bytes)`;
}

const field = (name: string, value: string | undefined, max: number) =>
  value ? `<b>${name}:</b> ${escapeHtml(cutPlain(value, max))}` : undefined;
const codeField = (name: string, value: string | undefined, max: number) =>
  value ? `<b>${name}:</b> <code>${escapeHtml(cutPlain(value, max))}</code>` : undefined;

/** The long health-check output keeps its head and its tail: the error is usually at one end. */
function cutMiddle(s: string, max: number): string {
  if (s.length <= max) return s;
  // An upper bound of the note's own length, so that head + note + tail fits in max.
  const noteLen = `\n… ${s.length} characters cut …\n`.length;
  const keep = Math.max(0, max - noteLen);
  const head = sliceSafe(s, Math.ceil(keep / 2));
  let tail = s.slice(s.length - Math.floor(keep / 2));
  const first = tail.charCodeAt(0);
  if (first >= 0xdc00 && first <= 0xdfff) tail = tail.slice(1); // a low surrogate without its pair
  return `${head}\n… ${s.length - head.length - tail.length} characters cut …\n${tail}`;
}

/** One escalation as a full message: who, what, each attempt, the last health-check output, links. */
export function formatEscalation(e: Escalation, o: FormatOptions = {}): string {
  const limit = o.limit ?? TELEGRAM_TEXT_LIMIT;
  const t = TITLES[e.kind];
  const title = e.kind === 'alert' && e.severity ? `${t.title} (${cutPlain(e.severity, 40)})` : t.title;
  // An alert is known by its name; everything else by the container it is about.
  const subject =
    e.kind === 'alert' && e.alertname
      ? `${e.alertname}${e.container ? ` on ${e.container}` : ''}`
      : (e.container ?? e.alertname);
  const head = [
    `${t.icon} <b>${escapeHtml(title)}${subject ? `: ${escapeHtml(cutPlain(subject, 300))}` : ''}</b>`,
    codeField('Host', e.host, 200),
    codeField('Container', e.container, 200),
    codeField('Service', e.service, 200),
    codeField('Project', e.project, 200),
    e.alertname
      ? `<b>Alert:</b> ${escapeHtml(cutPlain(e.alertname, 200))}${
          e.severity ? ` (${escapeHtml(cutPlain(e.severity, 40))})` : ''
        }`
      : undefined,
    field('Summary', e.summary, 500),
    field('Description', e.description, 700),
    field(e.kind === 'alert' ? 'What was done' : 'Detail', e.detail, 800),
    e.reclaimedBytes !== undefined
      ? `<b>Reclaimed:</b> ${escapeHtml(formatBytes(e.reclaimedBytes))}`
      : undefined,
    `<b>At:</b> ${isoTime(e.at)}`,
  ].filter((l): l is string => l !== undefined);

  const sections: string[] = [head.join('\n')];
  if (e.attempts.length > 0) {
    // The latest attempts matter most; older ones are counted, not listed, when there are many.
    const shown = e.attempts.slice(-10);
    const lines = shown.map((a, i) => {
      const n = e.attempts.length - shown.length + i + 1;
      const detail = a.detail ? `: ${escapeHtml(cutPlain(a.detail, 200))}` : '';
      return `${n}. ${clockTime(a.at)} ${escapeHtml(cutPlain(a.action, 40))} → <b>${escapeHtml(
        cutPlain(a.result, 40),
      )}</b>${detail}`;
    });
    const earlier = e.attempts.length - shown.length;
    sections.push(
      `<b>Attempts (${e.attempts.length}, times UTC):</b>\n${
        earlier > 0 ? `… ${earlier} earlier attempts not shown\n` : ''
      }${lines.join('\n')}`,
    );
  }

  const links: string[] = [];
  const am = safeUrl(e.externalURL);
  const gen = safeUrl(e.generatorURL);
  // The URL is the anchor's text as well: Telegram shows hosts without a public domain (localhost,
  // http://alertmanager:9093) as plain text, not as a link, and the reader must still see where to go.
  const link = (name: string, u: string) =>
    `🔗 ${name}: <a href="${escapeHtml(u)}">${escapeHtml(cutPlain(u, 160))}</a>`;
  if (am) links.push(link('Alertmanager', am));
  if (gen) links.push(link('Alert source', gen));
  const footer = `${links.length ? `${links.join('\n')}\n` : ''}<i>id ${escapeHtml(e.id)}</i>`;

  const health = e.lastHealthOutput?.trim();
  if (health) {
    // The health output gets whatever room the rest leaves: it is the one field that can be huge.
    const label = '<b>Last health-check output:</b>\n';
    const rest = visibleLength([...sections, footer].join('\n\n')) + 4 + visibleLength(label);
    const room = limit - rest - 8;
    if (room >= 80) sections.push(`${label}<pre>${escapeHtml(cutMiddle(health, room))}</pre>`);
    else sections.push('<i>Last health-check output omitted: no room left; see the audit log.</i>');
  }
  sections.push(footer);
  return truncateHtml(sections.join('\n\n'), limit);
}

/** Several escalations as one message: counts by kind, then one line each while room remains. */
export function formatDigest(list: ReadonlyArray<Escalation>, o: FormatOptions = {}): string {
  const limit = o.limit ?? TELEGRAM_TEXT_LIMIT;
  const first = list[0];
  if (!first) return '';
  if (list.length === 1) return formatEscalation(first, o);
  const counts = new Map<EscalationKind, number>();
  for (const e of list) counts.set(e.kind, (counts.get(e.kind) ?? 0) + 1);
  const hosts = [...new Set(list.map((e) => e.host))];
  const times = list.map((e) => e.at);
  const problems = list.filter((e) => e.kind !== 'recovered').length;
  const icon = problems === 0 ? '✅' : '🚨';
  const header = [
    `${icon} <b>${list.length} events on ${escapeHtml(cutPlain(hosts.join(', '), 200))}</b>`,
    `${clockTime(Math.min(...times))}–${clockTime(Math.max(...times))} UTC`,
    [...counts].map(([k, n]) => `${escapeHtml(SHORT[k])}: ${n}`).join(' · '),
  ].join('\n');
  const footer = '<i>Details of each event are in the audit log and the incidents API.</i>';
  let used = visibleLength(header) + visibleLength(footer) + 4;
  const lines: string[] = [];
  for (let i = 0; i < list.length; i++) {
    const e = list[i] as Escalation;
    const line = digestLine(e);
    const remaining = list.length - i;
    // Keep room for the "and N more" line, which is at most ~40 characters.
    if (used + visibleLength(line) + 1 + (remaining > 1 ? 48 : 0) > limit) {
      lines.push(`<i>… and ${remaining} more</i>`);
      break;
    }
    lines.push(line);
    used += visibleLength(line) + 1;
  }
  return truncateHtml([header, lines.join('\n'), footer].join('\n\n'), limit);
}

function digestLine(e: Escalation): string {
  const t = TITLES[e.kind];
  const who = e.container ?? e.alertname ?? e.host;
  const where = [e.project, e.service].filter(Boolean).join('/');
  const why = e.detail ?? e.summary;
  return `${t.icon} ${SHORT[e.kind]}${who ? ` <code>${escapeHtml(cutPlain(who, 80))}</code>` : ''}${
    where ? ` (${escapeHtml(cutPlain(where, 80))})` : ''
  }${e.kind === 'alert' && e.alertname && e.container ? ` ${escapeHtml(cutPlain(e.alertname, 60))}` : ''}${
    why ? `: ${escapeHtml(cutPlain(why, 160))}` : ''
  }`;
}

/** The note under a message sent again after an attempt that may have arrived (no answer came back). */
export const RESENT_NOTE =
  '↻ Sent again: an earlier attempt got no answer from Telegram and may have arrived already.';

/** The message with RESENT_NOTE at its end; the message is cut, never the note. */
export function markResent(text: string, html: boolean, limit = TELEGRAM_TEXT_LIMIT): string {
  const room = Math.max(0, limit - RESENT_NOTE.length - 2);
  return html
    ? `${truncateHtml(text, room)}\n\n<i>${escapeHtml(RESENT_NOTE)}</i>`
    : `${cutPlain(text, room)}\n\n${RESENT_NOTE}`;
}

/** Free text from an operator or a job: shown as written, so every character is escaped. */
export function formatText(text: string, o: FormatOptions = {}): string {
  return escapeHtml(cutPlain(text, o.limit ?? TELEGRAM_TEXT_LIMIT));
}
