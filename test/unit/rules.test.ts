// The rules file: alerts without a remediation label are mapped by alertname and matchers.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { defaultActions } from '../../src/actions/registry.js';
import { compileRules, matchRule } from '../../src/core/rules.js';
import { loadRulesFile } from '../../src/inputs/rules-file.js';
import { alertToSignal } from '../../src/inputs/alertmanager.js';

const yamlText = `
rules:
  - alertname: ContainerMemoryHigh
    match: { severity: warning }
    action: restart
  - match_re: { name: "batch-.*" }
    action: stop_start
    params: { reason: batch }
  - alertname: DiskAlmostFull
    action: cleanup
    params: { until: 1h }
`;

t.test('first matching rule wins; matchers are anchored', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rules-'));
  const file = join(dir, 'rules.yml');
  writeFileSync(file, yamlText);
  const rules = loadRulesFile(file);
  t.equal(matchRule(rules, { alertname: 'ContainerMemoryHigh', severity: 'warning' })?.action, 'restart');
  t.equal(matchRule(rules, { alertname: 'ContainerMemoryHigh', severity: 'critical' }), undefined);
  t.equal(matchRule(rules, { alertname: 'X', name: 'batch-7' })?.action, 'stop_start');
  t.equal(matchRule(rules, { alertname: 'X', name: 'mybatch-7' }), undefined, 'anchored');
  const payload = { alerts: [] };
  const s = alertToSignal({ status: 'firing', labels: { alertname: 'DiskAlmostFull' } }, payload, rules, 0);
  t.equal(s.action, 'cleanup');
  t.same(s.params, { until: '1h' });
  t.same(s.target, { kind: 'host' });
  const labelled = alertToSignal(
    {
      status: 'firing',
      labels: { alertname: 'ContainerMemoryHigh', severity: 'warning', remediation: 'none', name: 'x' },
    },
    payload,
    rules,
    0,
  );
  t.equal(labelled.action, 'none', 'the remediation label beats the rules file');
});

t.test('a bad action names the file, the rule index and the allowed actions', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rules-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'rules.yml');
  writeFileSync(
    file,
    'rules:\n  - alertname: A\n    action: restart\n  - alertname: B\n    action: reboot\n',
  );
  t.throws(() => loadRulesFile(file), {
    message: `RULES_FILE ${file}: rules[1] (rule 2 of the list): action "reboot" is not an action; allowed actions: restart, stop_start, cleanup, recreate, restart_stack, update, rollback, scale_up, scale_down, none`,
  });
  writeFileSync(file, 'rules:\n  - alertname: A\n    action: 3\n');
  t.throws(
    () => loadRulesFile(file),
    /rules\[0\] \(rule 1 of the list\): action 3 is not an action; allowed actions: restart,/,
  );
  writeFileSync(file, 'rules:\n  - alertname: A\n');
  t.throws(() => loadRulesFile(file), /rules\[0\] \(rule 1 of the list\): has no action; allowed actions: /);
  writeFileSync(file, 'rules:\n  - alertname: A\n    action: restart\n    labels: {}\n');
  t.throws(
    () => loadRulesFile(file),
    /rules\[0\] \(rule 1 of the list\): unknown key "labels"; a rule has alertname, match/,
  );
});

t.test('an invalid rules file is refused with a clear message', async (t) => {
  t.throws(
    () => compileRules({ rules: [{ action: 'reboot' }] }, 'rules file', defaultActions()),
    /rules\/0\/action|action/,
  );
  t.throws(
    () =>
      compileRules({ rules: [{ action: 'restart', match_re: { a: '(' } }] }, 'rules file', defaultActions()),
    /match_re\.a/,
  );
  t.throws(() => compileRules({ rulez: [] }, 'rules file', defaultActions()), /rules file/);
  t.throws(() => loadRulesFile('/nonexistent/rules.yml'), /RULES_FILE: cannot read/);
});
