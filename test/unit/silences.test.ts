// The silence a remediation asks Alertmanager for, without Alertmanager: exactly the alert's labels as
// equality matchers, the service as creator, a bounded end; and which ends of a remediation expire it.
import t from 'tap';
import { expiresSilence, silenceRequest } from '../../src/core/silences.js';
import { escalationAlert } from '../../src/notifiers/am-escalations.js';

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

t.test('escalationAlert: what a receiver gets, for the kinds that ask a human to act', async (t) => {
  const e = {
    id: 'e1',
    kind: 'given_up' as const,
    at: NOW,
    host: 'node-a',
    container: 'web',
    alertname: 'ContainerDown',
    attempts: [{ at: NOW - 1000, action: 'restart', result: 'failed', detail: 'health check still failing' }],
    detail: '1 of 1 attempts failed',
    lastHealthOutput: 'health: /tmp/broken present',
  };
  t.same(escalationAlert(e), {
    labels: {
      alertname: 'AutohealEscalation',
      kind: 'given_up',
      target: 'web',
      host: 'node-a',
      severity: 'critical',
      container: 'web',
      source_alertname: 'ContainerDown',
    },
    annotations: {
      summary: 'AutoHeal-Nexus: given up on web',
      description: '1 of 1 attempts failed\nlast health check: health: /tmp/broken present',
      attempts: '2026-12-03T23:59:59.000Z restart failed: health check still failing',
    },
    startsAt: '2026-12-04T00:00:00.000Z',
  });
  const breaker = escalationAlert(
    { ...e, kind: 'circuit_open', container: undefined, attempts: [] },
    NOW + 900_000,
  );
  t.match(breaker, {
    labels: { target: 'host:node-a', severity: 'critical' },
    endsAt: '2026-12-04T00:15:00.000Z',
  });
  for (const kind of ['alert', 'recovered', 'updates_available'] as const)
    t.equal(escalationAlert({ ...e, kind }), undefined, `${kind} is not posted`);
});
