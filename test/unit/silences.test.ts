// The silence a remediation asks Alertmanager for, without Alertmanager: exactly the alert's labels as
// equality matchers, the service as creator, a bounded end; and which ends of a remediation expire it.
import t from 'tap';
import { expiresSilence, silenceRequest } from '../../src/core/silences.js';

const NOW = Date.parse('2026-12-04T00:00:00Z');

t.test('silenceRequest: the alert itself, bounded, named', async (t) => {
  const s = silenceRequest({
    labels: { severity: 'warning', alertname: 'ContainerDown', container: 'web', empty: '' },
    now: NOW,
    maxMs: 3_600_000,
    target: 'web',
    action: 'restart',
    remediationId: 'r1',
  });
  t.same(s?.matchers, [
    { name: 'alertname', value: 'ContainerDown', isRegex: false, isEqual: true },
    { name: 'container', value: 'web', isRegex: false, isEqual: true },
    { name: 'severity', value: 'warning', isRegex: false, isEqual: true },
  ]);
  t.equal(s?.startsAt, '2026-12-04T00:00:00.000Z');
  t.equal(s?.endsAt, '2026-12-04T01:00:00.000Z', 'ends by itself after the maximum');
  t.equal(s?.createdBy, 'autoheal-nexus');
  t.match(s?.comment, /remediating web \(restart, remediation r1\)/);
  t.equal(
    silenceRequest({
      labels: { container: 'web' },
      now: NOW,
      maxMs: 1,
      target: 'web',
      action: 'restart',
      remediationId: 'r',
    }),
    undefined,
    'no alertname: nothing precise enough to silence',
  );
});

t.test('expiresSilence: every end but a retry', async (t) => {
  for (const end of ['recovered', 'given_up', 'final', 'none'] as const) t.ok(expiresSilence(end), end);
  t.notOk(expiresSilence('retry'), 'a retry keeps it: the service is still on it');
});
