// The engine's retry stage (src/engine/retries.ts) without a Docker engine: the signal a retry takes
// the pipeline with, and its timer (fired, cancelled, skipped once the container recovered or was given
// up, refused while stopping). Retries due now run on timers of 0 ms, which Node fires before any later
// timer: the test waits on one of those, never on an amount of time passing.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as later } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { emptyRecord, type Signal } from '../../src/core/types.js';
import type { EngineDeps } from '../../src/engine/deps.js';
import { RetryTimers, retrySignal } from '../../src/engine/retries.js';
import { createLogger } from '../../src/logger.js';
import { Store } from '../../src/state/store.js';
import { ManualClock } from '../fixtures/clock.js';
import { NOW } from '../fixtures/views.js';

t.test('a retry carries the alert that started the incident, never its fingerprint', async (t) => {
  const s = retrySignal(
    'web',
    'restart',
    {
      source: 'alertmanager',
      labels: { alertname: 'Down' },
      annotations: {},
      alertname: 'Down',
      severity: 'page',
    },
    NOW,
    'id-1',
  );
  t.match(s, {
    id: 'id-1',
    source: 'alertmanager',
    status: 'firing',
    condition: 'retry',
    target: { kind: 'container', name: 'web' },
    action: 'restart',
    alertname: 'Down',
    severity: 'page',
    receivedAt: NOW,
  });
  t.equal(s.fingerprint, undefined, 'not taken for a redelivery of the alert');
  const bare = retrySignal('web', 'stop_start', undefined, NOW, 'id-2');
  t.equal(bare.source, 'reconcile', 'a retry of a watcher-started incident is a reconcile signal');
  t.same(bare.labels, {});
});

/** Resolves after every timer due by now has fired (Node fires timers in order of their due time). */
const afterDueTimers = () => later(20);

function timers(t: Test, opts: { stopping?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'autoheal-retries-'));
  const log = createLogger({ level: 'silent', file: '' });
  const store = new Store(dir, log);
  t.teardown(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const clock = new ManualClock(NOW);
  const submitted: Signal[] = [];
  const deps = { store, clock, log } as unknown as EngineDeps;
  const retries = new RetryTimers(
    deps,
    (s) => submitted.push(s),
    () => opts.stopping ?? false,
  );
  t.teardown(() => retries.clear());
  const pending = (name: string, extra: { givenUp?: boolean } = {}) =>
    store.putRecord({
      ...emptyRecord(name),
      ...extra,
      pendingRetry: { action: 'restart', at: NOW, origin: undefined },
    });
  return { store, clock, submitted, retries, pending };
}

t.test('a due retry is submitted once; a cancelled one never', async (t) => {
  const { submitted, retries, pending } = timers(t);
  pending('a');
  pending('b');
  retries.schedule('a', 'restart', NOW - 1_000);
  retries.schedule('b', 'restart', NOW);
  retries.cancel('b');
  await afterDueTimers();
  t.same(
    submitted.map((s) => s.target),
    [{ kind: 'container', name: 'a' }],
  );
});

t.test('no retry for a container that recovered or was given up meanwhile', async (t) => {
  const { store, submitted, retries, pending } = timers(t);
  store.putRecord(emptyRecord('recovered'));
  pending('gone', { givenUp: true });
  retries.schedule('recovered', 'restart', NOW);
  retries.schedule('gone', 'restart', NOW);
  await afterDueTimers();
  t.same(submitted, []);
});

t.test(
  'nothing is scheduled while the engine stops (the record keeps the retry for the next start)',
  async (t) => {
    const { submitted, retries, pending } = timers(t, { stopping: true });
    pending('a');
    retries.schedule('a', 'restart', NOW);
    await afterDueTimers();
    t.same(submitted, []);
  },
);
