// docs/AUTO_REPAIR_GUIDE.md stays complete as the code grows: every container and alert label, every
// variable, every skip reason and every shipped alert (with a runbook heading that exists) is in it,
// and its relative links point at files that exist.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import t from 'tap';
import { parse } from 'yaml';
import { EnvSchema } from '../../src/config.js';
import { ALERT_LABELS, CONTAINER_LABELS } from '../../src/core/labels.js';
import { SKIP_REASONS } from '../../src/core/types.js';
import { TEST_LABEL } from '../fixtures/labels.js';

const root = new URL('../../', import.meta.url);
const guide = readFileSync(new URL('docs/AUTO_REPAIR_GUIDE.md', root), 'utf8');

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
const anchor = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9 _-]/g, '')
    .replace(/ /g, '-');

t.test('every container label and alert label is documented', async (t) => {
  for (const label of [...Object.values(CONTAINER_LABELS), TEST_LABEL]) {
    t.ok(guide.includes(`| \`${label}\` |`), `container label ${label} has a row`);
  }
  for (const v of Object.values(ALERT_LABELS)) {
    for (const label of Array.isArray(v) ? v : [v])
      t.ok(guide.includes(`\`${label}\``), `alert label ${label}`);
  }
});

t.test('every variable is in the settings table', async (t) => {
  for (const key of Object.keys(EnvSchema.properties)) {
    t.ok(guide.includes(`| \`${key}\` |`), key);
  }
});

t.test('every skip reason is explained', async (t) => {
  for (const reason of SKIP_REASONS) t.ok(guide.includes(`\`${reason}\``), reason);
});

t.test('every shipped alert links to a runbook heading that exists', async (t) => {
  const runbooks = readFileSync(new URL('docs/runbooks.md', root), 'utf8');
  const headings = new Set([...runbooks.matchAll(/^#+ (.+)$/gm)].map((m) => anchor(m[1] ?? '')));
  const dir = new URL('alert-rules/', root);
  const alerts: string[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.yml'))) {
    const doc = parse(readFileSync(new URL(f, dir), 'utf8')) as {
      groups?: Array<{ rules?: Array<{ alert?: string }> }>;
    };
    for (const g of doc.groups ?? []) for (const r of g.rules ?? []) if (r.alert) alerts.push(r.alert);
  }
  t.ok(alerts.length > 0, `${alerts.length} alerts shipped`);
  for (const name of alerts) {
    const link = `runbooks.md#${anchor(name)}`;
    t.ok(guide.includes(`| ${name} |`) && guide.includes(`(${link})`), `${name} is listed with ${link}`);
    t.ok(headings.has(anchor(name)), `docs/runbooks.md has a heading for ${name}`);
  }
});

t.test('relative links resolve', async (t) => {
  const sections = new Set([...guide.matchAll(/^#+ (.+)$/gm)].map((m) => anchor(m[1] ?? '')));
  for (const [, target] of guide.matchAll(/\]\(([^)]+)\)/g)) {
    if (!target || /^https?:/.test(target)) continue;
    const [file, hash] = target.split('#');
    if (!file) {
      t.ok(sections.has(hash ?? ''), `#${hash} is a heading of the guide`);
      continue;
    }
    t.ok(existsSync(new URL(`docs/${file}`, root)), `${file} exists`);
  }
});
