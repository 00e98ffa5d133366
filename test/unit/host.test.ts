// Which host an alert is about: an explicit host label, else the host part of `instance`, so that with
// NODE_NAME set an alert for another machine is skipped as other_host everywhere else.
import t from 'tap';
import { defaultActions } from '../../src/actions/registry.js';
import { alertHost, hostOfInstance } from '../../src/core/host.js';
import { admit, type PolicyContext } from '../../src/core/policy.js';
import { alertToSignal } from '../../src/inputs/alertmanager.js';
import { testConfig } from '../fixtures/config.js';

t.test('the host part of a scrape target', async (t) => {
  const table: Array<[string, string | undefined]> = [
    ['otherhost:9100', 'otherhost'],
    ['node-a.example.com:8080', 'node-a.example.com'],
    ['10.1.2.3:9100', '10.1.2.3'],
    ['[2001:db8::1]:9100', '2001:db8::1'],
    ['[2001:db8::1]', '2001:db8::1'],
    ['2001:db8::1', '2001:db8::1'],
    ['bare-host', 'bare-host'],
    [':9100', undefined],
    ['', undefined],
  ];
  for (const [instance, want] of table) t.equal(hostOfInstance(instance), want, instance);
});

t.test('an explicit host label wins; loopback instances name no host', async (t) => {
  const table: Array<[Record<string, string>, string | undefined]> = [
    [{ instance: 'otherhost:9100' }, 'otherhost'],
    [{ host: 'node-a', instance: 'otherhost:9100' }, 'node-a'],
    [{ nodename: 'node-b', instance: 'otherhost:9100' }, 'node-b'],
    [{ node: 'node-c' }, 'node-c'],
    [{ instance: 'localhost:9100' }, undefined],
    [{ instance: '127.0.0.1:9100' }, undefined],
    [{ instance: '[::1]:9100' }, undefined],
    [{}, undefined],
  ];
  for (const [labels, want] of table) t.equal(alertHost(labels), want, JSON.stringify(labels));
});

t.test('with NODE_NAME set, an alert carrying only instance=otherhost:9100 is for that host', async (t) => {
  const cfg = testConfig({ NODE_NAME: 'thishost' });
  const ctx: PolicyContext = {
    scope: cfg.scope,
    composeProject: undefined,
    selfContainerId: undefined,
    dryRun: false,
    policy: cfg.policy,
    startPeriodMs: 0,
    nodeName: 'thishost',
    actions: defaultActions(),
  };
  const payload = { alerts: [] };
  const signalOf = (labels: Record<string, string>) =>
    alertToSignal({ status: 'firing', labels }, payload, [], Date.now());
  const other = admit(
    signalOf({ alertname: 'HostDiskAlmostFull', remediation: 'cleanup', instance: 'otherhost:9100' }),
    ctx,
  );
  t.equal(other.ok ? 'admitted' : other.decision.reason, 'other_host');
  const mine = admit(
    signalOf({ alertname: 'HostDiskAlmostFull', remediation: 'cleanup', instance: 'thishost:9100' }),
    ctx,
  );
  t.equal(mine.ok, true, 'its own host acts');
  const local = admit(
    signalOf({ alertname: 'X', remediation: 'restart', container: 'web', instance: 'localhost:8080' }),
    ctx,
  );
  t.equal(local.ok, true, 'a loopback instance says nothing against this host');
});
