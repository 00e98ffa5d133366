// The watcher under load on the real engine: ten containers failing at once are healed in parallel (none
// waits for another's stop timeout), and a crash loop under Docker's own restart policy is escalated
// once instead of being restarted by us as well.
import t from 'tap';
import type { RecordingSink } from './fixtures/app.js';
import { breakContainer, createTestContainer, docker, waitFor, waitForHealth } from './fixtures/docker.js';
import { watcherApp } from './fixtures/watcher-app.js';

const STOP_TIMEOUT = 3;

t.test('ten watched containers break at once: all acted on in parallel', async (t) => {
  const h = await watcherApp(t);
  // `exec sleep` makes sleep PID 1, which ignores SIGTERM: every stop waits the full stop timeout.
  const cs = await Promise.all(
    Array.from({ length: 10 }, () =>
      createTestContainer(t, {
        labels: h.labels,
        stopTimeout: STOP_TIMEOUT,
        cmd: ['sh', '-c', 'rm -f /tmp/broken; exec sleep 2147483'],
      }),
    ),
  );
  await Promise.all(cs.map((c) => waitForHealth(c.name, 'healthy')));
  const before = new Map(
    await Promise.all(
      cs.map(async (c) => [c.name, (await docker.getContainer(c.name).inspect()).State.StartedAt] as const),
    ),
  );

  const t0 = Date.now();
  await Promise.all(cs.map((c) => breakContainer(c.name)));
  // A hang check only (in series this would still finish within it): parallelism is asserted below by
  // the order of events, which a loaded machine cannot change.
  await waitFor(
    'all ten restarted and healthy',
    async () => {
      const infos = await Promise.all(cs.map((c) => docker.getContainer(c.name).inspect()));
      return infos.every(
        (i) => i.State.StartedAt !== before.get(i.Name.slice(1)) && i.State.Health?.Status === 'healthy',
      );
    },
    120_000,
    200,
  );
  const total = (Date.now() - t0) / 1000;
  const results = await waitFor('ten verified remediations', async () => {
    const r = cs.map((c) => h.auditFor(c.name, 'remediation')[0]?.result);
    return r.every(Boolean) ? r : undefined;
  });

  const names = new Set(cs.map((c) => c.name));
  const audit = h.audit().filter((l) => names.has(String(l.container)));
  const actions = audit.filter((l) => l.event === 'action');
  t.equal(actions.length, 10, 'one action per container');
  // No action waited for another container's remediation: between a container's decision to act and
  // its action, no remediation of the burst ended. In series, each of the nine later ones would have
  // waited for a remediation (each one takes the full stop timeout, so they cannot end unseen).
  const waitedFor: string[] = [];
  for (const c of cs) {
    const decided = audit.findIndex(
      (l) => l.event === 'decision' && l.reason === 'ok' && l.container === c.name,
    );
    const acted = audit.findIndex((l) => l.event === 'action' && l.container === c.name);
    t.ok(decided >= 0 && acted > decided, `${c.name}: decided, then acted`);
    const ended = audit
      .slice(decided + 1, acted)
      .filter((l) => l.event === 'remediation')
      .map((l) => String(l.container));
    waitedFor.push(...ended.map((e) => `${c.name} waited for ${e}`));
  }
  t.same(waitedFor, [], 'no action waited for another remediation to end');
  const times = actions.map((a) => Date.parse(String(a.time)));
  const spread = (Math.max(...times) - Math.min(...times)) / 1000;
  // Speed is bench/'s business (bench/reaction.ts); here it is only reported.
  t.comment(`burst of 10 healed in ${total.toFixed(1)} s; actions spread over ${spread.toFixed(2)} s`);
  t.same(new Set(results), new Set(['succeeded']));
  const durations = cs.map((c) => Number(h.auditFor(c.name, 'remediation')[0]?.durationMs));
  t.comment(`remediation durations (ms): ${durations.join(', ')}`);
  t.comment(`action start offsets (ms): ${times.map((x) => x - t0).join(', ')}`);
});

t.test('a crash loop under the restart policy is escalated once, not restarted by us', async (t) => {
  const h = await watcherApp(t);
  const c = await createTestContainer(t, {
    labels: h.labels,
    healthCheck: false,
    restartPolicy: 'always',
    cmd: ['sh', '-c', 'sleep 0.3; exit 1'],
  });
  const sink = h.escalations as RecordingSink;
  const e = await waitFor('the crash-loop escalation', async () =>
    sink.raised.find((x) => x.kind === 'crash_loop' && x.container === c.name),
  );
  t.match(e.detail, /restarted \d+ times by its restart policy \(always\)/);
  // Docker keeps restarting it; the episode stays one escalation and we never act on it.
  const count = (await docker.getContainer(c.name).inspect()).RestartCount;
  // A hang check only: Docker doubles its restart delay each time (0.1 s, 0.2 s, ... 12.8 s), so two
  // more restarts after a late escalation can take 20 s on a slow machine.
  await waitFor(
    'two more restarts by Docker',
    async () => (await docker.getContainer(c.name).inspect()).RestartCount >= count + 2,
    90_000,
  );
  t.equal(sink.raised.filter((x) => x.kind === 'crash_loop').length, 1, 'one escalation per episode');
  t.equal(h.auditFor(c.name, 'action').length, 0, 'no restart from the healer');
  t.ok((await h.metric('autoheal_container_restarts', { container: c.name })) >= count, 'restarts gauge');
  t.equal(await h.metric('autoheal_escalations_total', { kind: 'crash_loop' }), 1);
});
