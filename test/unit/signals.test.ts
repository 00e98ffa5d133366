// The one factory for signals somebody asked for: the admin API and the schedules build theirs alike.
import t from 'tap';
import { requestSignal } from '../../src/core/signals.js';

const NOW = Date.UTC(2026, 11, 2, 3);
const base = { id: 'id-1', target: { kind: 'host' } as const, action: 'cleanup' as const, now: NOW };

t.test('a manual request carries what the operator said, at the time given', async (t) => {
  t.strictSame(
    requestSignal({
      ...base,
      source: 'manual',
      requestedBy: 'alice',
      reason: 'disk',
      force: true,
      dryRun: true,
    }),
    {
      id: 'id-1',
      source: 'manual',
      status: 'firing',
      receivedAt: NOW,
      condition: 'requested',
      target: { kind: 'host' },
      action: 'cleanup',
      params: {},
      labels: {},
      annotations: {},
      requestedBy: 'alice',
      reason: 'disk',
      force: true,
      dryRun: true,
    },
  );
});

t.test('a scheduled request has the same shape; force and dryRun default to off', async (t) => {
  const manual = requestSignal({ ...base, source: 'manual', requestedBy: 'schedule' });
  const scheduled = requestSignal({ ...base, source: 'schedule', requestedBy: 'schedule' });
  t.strictSame({ ...scheduled, source: 'manual' }, manual);
  t.equal(scheduled.force, false);
  t.equal(scheduled.dryRun, false);
  t.equal(scheduled.reason, undefined);
});
