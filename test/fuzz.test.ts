// Property-based fuzzing (fast-check) of the webhook and every admin route, on the real engine: the
// real app with the real DockerodeClient, listening on loopback, and real containers in and out of
// its scope (test/fixtures/fuzz-world.ts). For any path, query, header and body
// (test/fixtures/fuzz-inputs.ts), sent through inject(), real HTTP or raw bytes:
//   - the answer is 2xx or 4xx, never 5xx (the engine is up the whole time), and a 4xx says why;
//   - no uncaught exception and no unhandled rejection happens, so the process never exits;
//   - a container is named only as documented: by its name, its full id, or 12+ hex characters of it;
//   - no container outside the scope (or protected) is touched: Docker's state of each is the same
//     after the run, the engine reported no event on any of them, the service acted on none;
//   - no token reaches a log line.
// Bounded for CI: FUZZ_RUNS cases in all (default 1000, about 20 s here, well under a minute on a
// loaded two-core machine), from a fixed seed (FUZZ_SEED) printed on failure so that a failing run can
// be replayed; FUZZ_LOG=file writes every case and its answer as JSON lines.
import { appendFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import t from 'tap';
import { CONTAINER_LABELS } from '../src/core/labels.js';
import { targetFromLabels } from '../src/core/targets.js';
import { docker } from './fixtures/docker.js';
import { createAgent, type FuzzAnswer, type FuzzRequest, send } from './fixtures/fuzz-http.js';
import {
  encode,
  type FuzzCase,
  type FuzzInputs,
  garbageRequest,
  KNOWN_REMEDIATION_ID,
  requestFor,
  strayRequest,
} from './fixtures/fuzz-inputs.js';
import { createWorld, isTouch, SERVICE, stateOf, watchEvents } from './fixtures/fuzz-world.js';

const RUNS = Math.max(12, Number(process.env.FUZZ_RUNS ?? 1000));
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_128);
const replay = `FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS}`;
/** FUZZ_LOG=file: every case and its answer as a JSON line, to see what a run exercised. */
const LOG = process.env.FUZZ_LOG;
/** One case waits this long for its answer: a hang check, nothing tighter. */
const CASE_TIMEOUT_MS = 30_000;

// Process-level failures: any of these fails the case during which it surfaced (and the last cases
// before it are named, since an engine call can fail a moment after its answer went out).
interface ProcessError {
  readonly kind: 'uncaughtException' | 'unhandledRejection';
  readonly error: string;
  readonly recent: string[];
}
const processErrors: ProcessError[] = [];
const recent: string[] = [];
const onProcessError = (kind: ProcessError['kind']) => (err: unknown) => {
  processErrors.push({
    kind,
    error: String((err as Error)?.stack ?? err).slice(0, 1500),
    recent: [...recent],
  });
};
const setupStarted = Date.now();
const world = await createWorld(t);
const { app } = world;
const inputs: FuzzInputs = {
  project: world.project,
  service: SERVICE,
  containers: world.containers,
  tokens: world.tokens,
};
const touchable = new Set(world.containers.filter((c) => c.touchable).map((c) => c.name));
const untouchable = world.containers.filter((c) => !c.touchable);
const stateBefore = new Map(
  await Promise.all(untouchable.map(async (c) => [c.id, await stateOf(c.id)] as const)),
);
const events = await watchEvents(untouchable.map((c) => c.id));
t.teardown(() => events.stop());
const agent = createAgent();
t.teardown(() => (agent.closed || agent.destroyed ? undefined : agent.close()));
const target = { app: app.app, url: app.url };
t.comment(`fuzz world ready in ${((Date.now() - setupStarted) / 1000).toFixed(1)} s`);
const runStarted = Date.now();

// What the run saw -------------------------------------------------------------------------------------

const stats = {
  cases: 0,
  transports: new Map<string, number>(),
  statuses: new Map<string, number>(),
  routes: new Map<string, Map<string, number>>(),
};
const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
interface Violation {
  readonly route: string;
  readonly request: string;
  readonly problem: string;
}
const violations: Violation[] = [];
/** Remediation ids handed out, and the target text each request named. */
const remediations = new Map<string, unknown>();
/** Alerts the webhook accepted, by fingerprint. */
const alertsSent = new Map<string, Array<Record<string, string>>>();

/** One line that says what a case sent, short enough for a report. */
function describe(r: FuzzRequest): string {
  const cut = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}…(${s.length} chars)` : s);
  const headers = Object.entries(r.headers)
    .map(([k, v]) => `${k}: ${JSON.stringify(cut(v, 80))}`)
    .join(', ');
  const body = r.body === undefined ? '' : ` body ${JSON.stringify(cut(r.body, 300))}`;
  return `[${r.transport}] ${r.method} ${JSON.stringify(cut(r.path, 200))} {${headers}}${body}`;
}

const safeDecode = (s: string) => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

/**
 * Whether answering `got` (a container name) for a request that named `asked` follows the documented
 * rule: names match names; ids match as the full id or as a prefix of 12 or more hex characters.
 */
async function namedAsDocumented(asked: ReadonlyArray<string>, got: string): Promise<string | undefined> {
  const texts = asked.map((a) => a.replace(/^\//, ''));
  if (texts.includes(got)) return undefined;
  const id = await docker
    .getContainer(got)
    .inspect()
    .then((i) => i.Id)
    .catch(() => undefined);
  if (id === undefined) return undefined; // gone meanwhile (another test's container): cannot tell
  const byId = texts.some((a) => a === id || (a.length >= 12 && /^[0-9a-f]+$/.test(a) && id.startsWith(a)));
  return byId
    ? undefined
    : `${JSON.stringify(texts[0])} was taken to mean container ${got} (id ${id.slice(0, 12)}…): not its name, nor its full id, nor 12+ hex characters of it`;
}

const json = (text: string): Record<string, unknown> | undefined => {
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
};

/** The body value a case sent, when it was JSON. */
const sentBody = (c: FuzzCase) => (c.bodyText === undefined ? undefined : json(c.bodyText));

/** The API documentation UI (@fastify/swagger-ui) sends /docs/static/index.html on to /docs/: a 302 of its own. */
/** The documented redirects: the OpenAPI page's own, and `/` to the status page (GET, and HEAD with it). */
const documentedRedirect = (c: FuzzCase) =>
  (c.method === 'GET' && c.path.startsWith('/docs/static/index.html')) ||
  ((c.method === 'GET' || c.method === 'HEAD') && (c.path === '/' || c.path.startsWith('/?')));

async function checkAnswer(c: FuzzCase, a: FuzzAnswer): Promise<string[]> {
  const problems: string[] = [];
  if (typeof a.status !== 'number') {
    // Bytes that are not HTTP may be dropped; a well-formed request must be answered.
    if (c.route !== 'garbage (raw bytes)') problems.push(`no answer: ${a.status} ${a.body.slice(0, 120)}`);
    return problems;
  }
  if (a.status >= 500) problems.push(`answered ${a.status}: ${a.body.slice(0, 400)}`);
  else if (a.status < 200 || (a.status >= 300 && a.status < 400 && !documentedRedirect(c)))
    problems.push(`answered ${a.status}, neither 2xx nor 4xx`);
  else if (a.status >= 400 && c.method !== 'HEAD') {
    const b = json(a.body);
    if (typeof b?.error !== 'string' || typeof b?.message !== 'string')
      problems.push(`${a.status} without a reason (error and message): ${a.body.slice(0, 200)}`);
  }
  if (a.status < 200 || a.status >= 300) return problems;
  const b = json(a.body);
  // Names resolved as documented.
  const param = c.params.name;
  if (param !== undefined && typeof b?.container === 'string') {
    const asked = [param, safeDecode(param), encode(param)];
    const wrong = await namedAsDocumented(asked, b.container);
    if (wrong) problems.push(wrong);
  }
  if (c.route.endsWith('/remediations') && a.status === 202 && typeof b?.id === 'string') {
    const asked = sentBody(c)?.target;
    remediations.set(b.id, asked);
    const got = String(b.target);
    if (typeof asked === 'string' && got !== 'host' && !got.startsWith('service:')) {
      const wrong = await namedAsDocumented([asked], got);
      if (wrong) problems.push(wrong);
    }
  }
  if (c.route.startsWith('POST /webhooks') && a.status === 200) {
    const alerts = sentBody(c)?.alerts;
    if (Array.isArray(alerts)) {
      for (const x of alerts as Array<{ fingerprint?: unknown; labels?: unknown }>) {
        if (typeof x?.fingerprint !== 'string' || !x.labels || typeof x.labels !== 'object') continue;
        const list = alertsSent.get(x.fingerprint) ?? [];
        list.push(x.labels as Record<string, string>);
        alertsSent.set(x.fingerprint, list);
      }
    }
  }
  return problems;
}

/** Sends one case and checks what the properties say of its answer; throws on the first problem. */
async function runCase(c0: FuzzCase): Promise<void> {
  const ids = [...remediations.keys()];
  const known = ids[stats.cases % Math.max(1, ids.length)] ?? 'no-remediation-yet';
  const c: FuzzCase = c0.path.includes(encodeURIComponent(KNOWN_REMEDIATION_ID))
    ? { ...c0, path: c0.path.replace(encodeURIComponent(KNOWN_REMEDIATION_ID), known) }
    : c0.path.includes(KNOWN_REMEDIATION_ID)
      ? { ...c0, path: c0.path.replace(KNOWN_REMEDIATION_ID, known) }
      : c0;
  const what = describe(c);
  recent.push(`${c.route}: ${what}`);
  if (recent.length > 8) recent.shift();
  const errorsBefore = processErrors.length;
  stats.cases++;
  bump(stats.transports, c.transport);
  if (LOG) appendFileSync(LOG, `${JSON.stringify({ sending: what })}\n`);
  let answer: FuzzAnswer;
  try {
    // inject() has no timeout of its own: a request the service never answers must fail, not hang.
    answer = await Promise.race([
      send(target, agent, c),
      sleep(CASE_TIMEOUT_MS, { status: 'timeout', body: '' } as FuzzAnswer, { ref: false }),
    ]);
  } catch (err) {
    answer = { status: 'closed', body: `client error: ${(err as Error).message}` };
  }
  const code = String(answer.status);
  bump(stats.statuses, code);
  const perRoute = stats.routes.get(c.route) ?? new Map<string, number>();
  bump(perRoute, code);
  stats.routes.set(c.route, perRoute);
  const problems = await checkAnswer(c, answer);
  if (LOG) {
    appendFileSync(
      LOG,
      `${JSON.stringify({ route: c.route, request: what, status: answer.status, answer: answer.body.slice(0, 300), problems })}\n`,
    );
  }
  // An 'error' event or a rejection from this request's engine calls surfaces within a turn or two.
  await sleep(1);
  for (const e of processErrors.slice(errorsBefore)) problems.push(`${e.kind}: ${e.error.split('\n')[0]}`);
  if (problems.length) {
    for (const problem of problems) violations.push({ route: c.route, request: what, problem });
    throw new Error(problems.join('\n'));
  }
}

// The runs ------------------------------------------------------------------------------------------------

const GROUPS: Array<{ key: string; weight: number; arb: fc.Arbitrary<FuzzCase> }> = [
  { key: 'webhook', weight: 3, arb: requestFor(inputs, 'webhook') },
  { key: 'remediate', weight: 3, arb: requestFor(inputs, 'remediate') },
  { key: 'remediation', weight: 1, arb: requestFor(inputs, 'remediation') },
  { key: 'containers', weight: 1, arb: requestFor(inputs, 'containers') },
  { key: 'services', weight: 1, arb: requestFor(inputs, 'services') },
  { key: 'incidents', weight: 1, arb: requestFor(inputs, 'incidents') },
  { key: 'pause', weight: 2, arb: requestFor(inputs, 'pause') },
  { key: 'resume', weight: 1, arb: requestFor(inputs, 'resume') },
  { key: 'reset', weight: 1, arb: requestFor(inputs, 'reset') },
  { key: 'notify', weight: 1, arb: requestFor(inputs, 'notify') },
  { key: 'probes', weight: 0.5, arb: requestFor(inputs, 'probes') },
  { key: 'stray', weight: 1, arb: strayRequest(inputs) },
  { key: 'garbage', weight: 1, arb: garbageRequest(inputs) },
];
const totalWeight = GROUPS.reduce((s, g) => s + g.weight, 0);

// Installed only now, for the run: an error in setting up must still end the file as it would.
const onUncaught = onProcessError('uncaughtException');
const onUnhandled = onProcessError('unhandledRejection');
process.on('uncaughtException', onUncaught);
process.on('unhandledRejection', onUnhandled);
const uninstall = () => {
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUnhandled);
};
t.teardown(uninstall);

for (const [i, g] of GROUPS.entries()) {
  const numRuns = Math.max(1, Math.round((RUNS * g.weight) / totalWeight));
  t.test(`fuzz ${g.key}: ${numRuns} cases, 2xx or 4xx, no crash, names as documented`, async (t) => {
    const seed = SEED + i;
    const details = await fc.check(
      fc.asyncProperty(fc.limitShrink(g.arb, 30), (c) => runCase(c)),
      { numRuns, seed },
    );
    if (details.failed) {
      const c = details.counterexample?.[0] as FuzzCase | undefined;
      t.fail(
        `${g.key}: failed after ${details.numRuns} cases (${details.numShrinks} shrinks); replay with ${replay} ` +
          `(this group: seed ${seed}, path ${JSON.stringify(details.counterexamplePath)}).\n` +
          `smallest failing case: ${c ? `${c.route} ${describe(c)}` : '?'}\n` +
          `${String((details.errorInstance as Error | undefined)?.message ?? details.errorInstance)}`,
      );
    } else {
      t.pass(`${g.key}: ${details.numRuns} cases passed`);
    }
  });
}

t.test('after the run: nothing outside the scope was touched, the service is up', async (t) => {
  current('(after the run)');
  // Let the engine finish what the run set going (restarts, verifications); a hang check only.
  await Promise.race([app.engine.idle(), sleep(90_000, undefined, { ref: false })]);
  await sleep(500);

  const health = await send(target, agent, {
    route: 'GET /healthz',
    method: 'GET',
    path: '/healthz',
    headers: {},
    transport: 'http',
  });
  t.equal(health.status, 200, 'the service still answers /healthz');
  // Our keep-alive connections would hold the app's close() until they time out.
  await agent.close();
  events.stop();

  // Docker's own view of each untouchable container.
  for (const c of untouchable) {
    t.same(await stateOf(c.id), stateBefore.get(c.id), `${c.role} container ${c.name}: same state as before`);
  }
  // The watch was listening: Docker's own health checks of these containers show in it.
  t.ok(events.events.length > 0, `the event watch saw ${events.events.length} events (health checks)`);
  const touches = events.events.filter((e) => isTouch(e.action));
  t.same(
    touches.map((e) => `${e.action} ${e.name || e.id.slice(0, 12)}`),
    [],
    'no engine event on a container outside the scope',
  );

  // What the service says it did: actions only on containers in scope, each named as documented.
  const audit = app.audit();
  const actions = audit.filter((l) => l.event === 'action');
  const outside = actions.filter((l) => !touchable.has(String(l.container)));
  t.same(
    outside.map((l) => `${l.action} ${l.container} (source ${l.source})`),
    [],
    'the service acted on no container outside the scope',
  );
  const misnamed: string[] = [];
  for (const l of actions) {
    const container = String(l.container);
    if (l.source === 'manual' && typeof l.remediationId === 'string' && remediations.has(l.remediationId)) {
      const asked = remediations.get(l.remediationId);
      if (typeof asked === 'string' && !asked.startsWith('service:')) {
        const wrong = await namedAsDocumented([asked], container);
        if (wrong) misnamed.push(`manual ${l.action}: ${wrong}`);
      }
    }
    if (l.source === 'alertmanager' && typeof l.fingerprint === 'string') {
      const sent = alertsSent.get(l.fingerprint) ?? [];
      if (sent.length === 0) continue;
      const info = await docker
        .getContainer(container)
        .inspect()
        .catch(() => undefined);
      const labels = info?.Config.Labels ?? {};
      const reasons: string[] = [];
      for (const a of sent) {
        const sel = targetFromLabels(a, a.remediation);
        if (sel.kind === 'container') {
          const wrong = await namedAsDocumented([sel.name], container);
          if (!wrong) {
            reasons.length = 0;
            break;
          }
          reasons.push(wrong);
        } else if (sel.kind === 'service') {
          const ok =
            labels[CONTAINER_LABELS.composeService] === sel.service &&
            (sel.project === undefined || labels[CONTAINER_LABELS.composeProject] === sel.project);
          if (ok) {
            reasons.length = 0;
            break;
          }
          reasons.push(`service ${sel.service} does not name ${container}`);
        } else reasons.push(`an alert naming no container led to ${l.action} ${container}`);
      }
      if (reasons.length) misnamed.push(`alert ${l.fingerprint}: ${reasons[0]}`);
    }
  }
  t.same(misnamed, [], 'every action was on the container its request or alert named');

  const late = processErrors.map((e) => `${e.kind}: ${e.error.split('\n')[0]} (after: ${e.recent.at(-1)})`);
  t.same(late, [], 'no uncaught exception or unhandled rejection during the whole run');

  const codes = [...stats.statuses.entries()]
    .sort((a, b) => a[0].localeCompare(b[0]))
    .map(([k, v]) => `${k}×${v}`)
    .join(' ');
  const transports = [...stats.transports.entries()].map(([k, v]) => `${k} ${v}`).join(', ');
  const outsideCount = outside.length + touches.length;
  t.comment(
    `fuzz: ${stats.cases} cases in ${((Date.now() - runStarted) / 1000).toFixed(1)} s (${transports}), seed ${SEED}; status codes seen: ${codes}; ` +
      `actions outside the scope: ${outsideCount}; property violations: ${violations.length}`,
  );
  for (const [route, m] of [...stats.routes.entries()].sort()) {
    t.comment(
      `  ${route}: ${[...m.entries()]
        .sort()
        .map(([k, v]) => `${k}×${v}`)
        .join(' ')}`,
    );
  }
  if (violations.length) {
    // Distinct problems, with the first request that showed each (shrinking repeats them).
    const seen = new Map<string, Violation>();
    for (const v of violations) {
      const key = `${v.route} ${v.problem.replace(/"[^"]*"/g, '"…"').slice(0, 120)}`;
      if (!seen.has(key)) seen.set(key, v);
    }
    t.comment(`distinct violations (${seen.size}); replay with ${replay}:`);
    for (const v of seen.values()) t.comment(`  ${v.route}: ${v.problem.slice(0, 300)}\n    ← ${v.request}`);
  }
});

t.test('no token reaches a log line', async (t) => {
  const logs = [...app.lines, ...app.audit().map((l) => JSON.stringify(l))];
  for (const [name, token] of Object.entries(world.tokens)) {
    const hits = logs.filter((l) => l.includes(token));
    t.same(
      hits.slice(0, 3).map((l) => l.slice(0, 300)),
      [],
      `the ${name} token is in no log line (${hits.length} lines hold it)`,
    );
  }
});

function current(what: string) {
  recent.push(what);
  if (recent.length > 8) recent.shift();
}
