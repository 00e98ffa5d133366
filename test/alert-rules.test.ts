// The alert rules and the Prometheus/Alertmanager configuration: promtool and amtool accept them,
// every rule's unit tests pass and cover it firing and staying quiet, every rule carries what the
// issue asks for (severity, summary, description, a runbook that exists), every metric it reads is
// one the service exposes, and every alert reaches the receiver it is meant for with the target
// labels the service understands.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import t from 'tap';
import { parse } from 'yaml';
import { targetFromLabels } from '../src/core/targets.js';
import { defaultActions } from '../src/actions/registry.js';
import { NO_ACTION } from '../src/core/actions.js';
import { createMetrics } from '../src/metrics.js';
import {
  ALERTMANAGER_YML,
  loadYaml,
  PROMETHEUS_YML,
  RULES_DIR,
  serviceReceivers,
  testPrometheusConfig,
} from './fixtures/prom-configs.js';
import { REPO } from './fixtures/prom-stack.js';

const run = promisify(execFile);

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleTest {
  eval_time: string;
  alertname: string;
  exp_alerts?: Array<{ exp_labels?: Record<string, string>; exp_annotations?: Record<string, string> }>;
}

const ruleFiles = readdirSync(RULES_DIR)
  .filter((f) => f.endsWith('.yml'))
  .map((f) => join(RULES_DIR, f));
const testDir = join(RULES_DIR, 'tests');
const testFiles = readdirSync(testDir)
  .filter((f) => f.endsWith('.test.yml'))
  .map((f) => join(testDir, f));

const rules: Rule[] = ruleFiles.flatMap((f) =>
  (parse(readFileSync(f, 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules),
);
const alerts = rules.filter((r): r is Rule & { alert: string } => typeof r.alert === 'string');
const ruleTests: RuleTest[] = testFiles.flatMap((f) =>
  (parse(readFileSync(f, 'utf8')) as { tests: Array<{ alert_rule_test?: RuleTest[] }> }).tests.flatMap(
    (x) => x.alert_rule_test ?? [],
  ),
);

/** GitHub's anchor for a Markdown heading. */
const anchorOf = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
const runbooks = readFileSync(join(REPO, 'docs', 'runbooks.md'), 'utf8');
const anchors = new Set([...runbooks.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchorOf(m[1] as string)));

t.test('promtool accepts every rule file', async (t) => {
  t.ok(ruleFiles.length >= 4, `rule files: ${ruleFiles.map((f) => f.slice(RULES_DIR.length + 1))}`);
  const { stdout } = await run('promtool', ['check', 'rules', ...ruleFiles]);
  t.match(stdout, /SUCCESS/);
  t.notMatch(stdout, /FAILED/);
});

t.test('promtool unit tests pass for every rule file', async (t) => {
  t.equal(testFiles.length, ruleFiles.length, 'one unit-test file per rule file');
  const { stdout } = await run('promtool', ['test', 'rules', ...testFiles], { cwd: testDir }).catch(
    (err: { stdout?: string; stderr?: string }) => {
      t.fail(`promtool test rules failed:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
      return { stdout: '' };
    },
  );
  t.equal(stdout.match(/SUCCESS/g)?.length, testFiles.length, stdout);
});

t.test('every alert is unit-tested firing and not firing', async (t) => {
  for (const a of alerts) {
    const cases = ruleTests.filter((c) => c.alertname === a.alert);
    t.ok(
      cases.some((c) => (c.exp_alerts ?? []).length > 0),
      `${a.alert}: a case where it fires`,
    );
    // The heartbeat fires always, by design: there is no quiet case to test.
    if (a.expr.trim() === 'vector(1)') continue;
    t.ok(
      cases.some((c) => (c.exp_alerts ?? []).length === 0),
      `${a.alert}: a case where it stays quiet`,
    );
  }
  const names = new Set(alerts.map((a) => a.alert));
  for (const c of ruleTests) t.ok(names.has(c.alertname), `test case for a rule that exists: ${c.alertname}`);
});

t.test('every alert says what happened, what the service does, and links its runbook', async (t) => {
  const seen = new Set<string>();
  for (const a of alerts) {
    t.notOk(seen.has(a.alert), `${a.alert}: unique name`);
    seen.add(a.alert);
    t.match(a.labels?.severity, /^(critical|warning|info|none)$/, `${a.alert}: severity`);
    t.ok((a.annotations?.summary ?? '').length > 10, `${a.alert}: summary`);
    t.ok((a.annotations?.description ?? '').length > 60, `${a.alert}: description`);
    const url = a.annotations?.runbook_url ?? '';
    t.match(url, /^docs\/runbooks\.md#[a-z0-9-]+$/, `${a.alert}: runbook_url into docs/`);
    t.ok(anchors.has(url.split('#')[1] ?? ''), `${a.alert}: docs/runbooks.md has the anchor of ${url}`);
    const remediation = a.labels?.remediation;
    if (remediation !== undefined) {
      const known = [...defaultActions().keys(), NO_ACTION];
      t.ok(known.includes(remediation), `${a.alert}: remediation ${remediation}`);
    }
  }
  // And no runbook for an alert that does not exist.
  for (const m of runbooks.matchAll(/^## (.+)$/gm)) {
    t.ok(seen.has((m[1] as string).trim()), `runbook section ${m[1]} belongs to a rule`);
  }
});

t.test('the rules the issue asks for, with their remedies', async (t) => {
  const byName = new Map(alerts.map((a) => [a.alert, a]));
  const want: Array<[string, string | undefined, string?]> = [
    ['ContainerUnhealthy', 'restart'],
    ['ContainerDown', 'restart'],
    ['ContainerRestartLoop', 'none'],
    ['ContainerMemoryNearLimit', 'restart'],
    ['ContainerCpuNearQuota', undefined],
    ['HostDiskAlmostFull', 'cleanup', 'critical'],
    ['HostDiskWillFillIn24h', 'cleanup'],
    ['AutohealDown', undefined],
    ['AutohealGaveUp', undefined],
    ['AutohealNotificationsFailing', undefined],
    ['AutohealHeartbeat', undefined],
  ];
  for (const [name, remediation, severity] of want) {
    const a = byName.get(name);
    if (!t.ok(a, `${name} exists`) || !a) continue;
    t.equal(a.labels?.remediation, remediation, `${name}: remediation ${remediation ?? '(none)'}`);
    if (severity) t.equal(a.labels?.severity, severity, `${name}: severity ${severity}`);
  }
  t.equal(byName.get('ContainerUnhealthy')?.for, '30s', 'unhealthy for 30 s');
  t.match(byName.get('HostDiskWillFillIn24h')?.expr, /predict_linear\(.*24 \* 3600\)/s);
  t.match(byName.get('AutohealDown')?.expr, /up\{job="autoheal"\} == 0/);
  t.equal(byName.get('AutohealHeartbeat')?.expr.trim(), 'vector(1)');
});

t.test('every autoheal_* metric a rule reads is one the service exposes', async (t) => {
  const registry = new Registry();
  createMetrics(registry);
  const exposed = new Set<string>();
  for (const m of await registry.getMetricsAsJSON()) {
    exposed.add(m.name);
    if (String(m.type) === 'histogram')
      for (const s of ['_bucket', '_sum', '_count']) exposed.add(m.name + s);
  }
  for (const r of rules) {
    for (const [name] of r.expr.matchAll(/\bautoheal_[a-z0-9_]+/g)) {
      t.ok(exposed.has(name), `${r.alert ?? r.record}: ${name} is in src/metrics.ts`);
    }
  }
});

t.test('alerts with a container remedy carry a target the service can resolve', async (t) => {
  for (const a of alerts) {
    const action = a.labels?.remediation;
    if (action === undefined || action === 'none') continue;
    const fired = ruleTests
      .filter((c) => c.alertname === a.alert)
      .flatMap((c) => c.exp_alerts ?? [])
      .map((e) => e.exp_labels ?? {});
    t.ok(fired.length > 0, `${a.alert}: fired in a unit test`);
    for (const labels of fired) {
      const target = targetFromLabels(labels, action);
      const want = action === 'cleanup' ? ['host'] : ['container', 'service'];
      t.ok(want.includes(target.kind), `${a.alert}: ${action} targets ${JSON.stringify(target)}`);
    }
  }
});

t.test('prometheus.yml: promtool accepts it, alone and with the rules loaded', async (t) => {
  const shipped = await run('promtool', ['check', 'config', PROMETHEUS_YML]);
  t.match(shipped.stdout, /SUCCESS/);
  const cfg = loadYaml(PROMETHEUS_YML) as { scrape_configs: Array<{ job_name: string }> };
  t.same(
    cfg.scrape_configs.map((j) => j.job_name).sort(),
    ['alertmanager', 'autoheal', 'cadvisor', 'node', 'prometheus'],
    'scrapes the service, cAdvisor, node_exporter, Alertmanager and itself',
  );
  // The shipped rule_files pattern is relative to /etc/prometheus; the test copy points at
  // alert-rules/ so that promtool loads and checks the rules through the configuration too.
  const dir = mkdtempSync(join(tmpdir(), 'autoheal-promcfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'prometheus.yml');
  writeFileSync(
    file,
    testPrometheusConfig({
      targets: {},
      unused: '127.0.0.1:1',
      alertmanager: '127.0.0.1:1',
      interval: '15s',
    }),
  );
  const { stdout } = await run('promtool', ['check', 'config', file]);
  t.match(stdout, new RegExp(`SUCCESS: ${ruleFiles.length} rule files found`), stdout);
  const loaded = [...stdout.matchAll(/SUCCESS: (\d+) rules found/g)].reduce((n, m) => n + Number(m[1]), 0);
  t.equal(loaded, rules.length, 'every rule loaded through the configuration');
});

t.test('alertmanager.yml: amtool accepts it and the webhook is set up as the service needs', async (t) => {
  const { stdout } = await run('amtool', ['check-config', ALERTMANAGER_YML]);
  t.match(stdout, /SUCCESS/);
  const cfg = loadYaml(ALERTMANAGER_YML);
  const names = serviceReceivers(cfg);
  t.same(names, ['autoheal'], 'one receiver posts to the service');
  const receiver = (cfg.receivers as Array<Record<string, unknown>>).find((r) => r.name === 'autoheal');
  const hook = ((receiver?.webhook_configs ?? []) as Array<Record<string, unknown>>)[0] ?? {};
  t.equal(hook.send_resolved, true, 'send_resolved');
  t.same(
    (hook.http_config as { authorization?: unknown }).authorization,
    { type: 'Bearer', credentials_file: '/etc/alertmanager/secrets/webhook_token' },
    'Bearer token from a file',
  );
  const routes = (cfg.route as { routes: Array<Record<string, unknown>> }).routes;
  const toService = routes.find((r) => r.receiver === 'autoheal');
  t.ok(toService, 'a route to the service');
  const wait = String(toService?.group_wait ?? '30s');
  t.ok(/^\d+s$/.test(wait) && Number.parseInt(wait, 10) <= 10, `short group_wait (${wait})`);
});

t.test('amtool routes each alert to the receiver meant for it', async (t) => {
  const route = async (labels: Record<string, string>) => {
    const args = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
    const { stdout } = await run('amtool', [
      'config',
      'routes',
      'test',
      `--config.file=${ALERTMANAGER_YML}`,
      ...args,
    ]);
    return stdout.trim();
  };
  for (const a of alerts) {
    const fired = ruleTests
      .filter((c) => c.alertname === a.alert)
      .flatMap((c) => c.exp_alerts ?? [])
      .map((e): Record<string, string> => ({ alertname: a.alert, ...(e.exp_labels ?? {}) }));
    for (const labels of fired.slice(0, 1)) {
      const want =
        a.alert === 'AutohealHeartbeat'
          ? 'deadmansswitch'
          : labels.remediation !== undefined
            ? 'autoheal'
            : 'humans';
      t.equal(await route(labels), want, `${a.alert} → ${want}`);
    }
  }
});
