// One-shot containers on the real engine: an exit 0 under a restart policy that does not ask to run
// again (no, on-failure) is a finished job, left alone; autoheal.on_exit_zero opts a container in.
import t from 'tap';
import { CONTAINER_LABELS } from '../src/core/labels.js';
import { defaultActions } from '../src/actions/registry.js';
import { isFailedExit } from '../src/core/watch-rules.js';
import { exitCodeFromStatus } from '../src/inputs/watcher/signals.js';
import { createTestContainer, docker, restartCountOf, waitFor } from './fixtures/docker.js';
import { watcherApp } from './fixtures/watcher-app.js';

t.test('which exits are failures', async (t) => {
  const opt = { [CONTAINER_LABELS.onExitZero]: 'restart' };
  const table: Array<[number | undefined, string, Record<string, string>, boolean, boolean?, boolean?]> = [
    // A container with a health check is a service: its exit 0 is a failure too.
    [0, 'no', {}, true, false, true],
    [0, 'no', { [CONTAINER_LABELS.onExitZero]: 'none' }, false, false, true],
    [0, 'no', {}, false],
    [0, 'on-failure', {}, false],
    [0, 'always', {}, true],
    [0, 'unless-stopped', {}, true],
    [0, 'no', opt, true],
    [0, 'no', { [CONTAINER_LABELS.onExitZero]: 'none' }, false],
    [0, 'always', { [CONTAINER_LABELS.onExitZero]: 'none' }, false],
    [0, 'no', { [CONTAINER_LABELS.onExitZero]: 'cleanup' }, false],
    [1, 'no', {}, true],
    [137, 'on-failure', {}, true],
    [undefined, 'no', {}, true],
    [0, 'no', {}, true, true],
  ];
  for (const [exitCode, restartPolicy, labels, want, oomKilled, hasHealthCheck] of table) {
    const o = { exitCode, restartPolicy, labels, oomKilled, hasHealthCheck };
    t.equal(isFailedExit({ ...o, actions: defaultActions() }), want, JSON.stringify(o));
  }
  t.equal(exitCodeFromStatus('Exited (0) 5 seconds ago'), 0);
  t.equal(exitCodeFromStatus('Exited (137) About a minute ago'), 137);
  t.equal(exitCodeFromStatus('Up 3 minutes'), undefined);
});

t.test('a one-shot container that exits 0 is not healed; one that opts in is', async (t) => {
  const h = await watcherApp(t, { env: { WATCHDOG_INTERVAL: '1', VERIFY_GRACE: '1' } });
  const job = await createTestContainer(t, {
    labels: h.labels,
    healthCheck: false,
    cmd: ['sh', '-c', 'sleep 1; exit 0'],
  });
  const opted = await createTestContainer(t, {
    labels: { ...h.labels, [CONTAINER_LABELS.onExitZero]: 'restart' },
    healthCheck: false,
    cmd: ['sh', '-c', "trap 'exit 0' TERM; sleep 4 & wait; exit 0"],
  });
  const exited = (name: string) =>
    waitFor(
      `${name} to exit`,
      async () => (await docker.getContainer(name).inspect()).State.Status === 'exited',
    );
  await exited(job.name);
  await waitFor('the watcher to see the job finish', async () =>
    h.lines.some((l) => l.includes('"event":"exited"') && l.includes(job.name)),
  );
  const acted = await waitFor(
    'the opted-in container to be restarted',
    async () => h.auditFor(opted.name, 'action')[0],
    30_000,
  );
  t.equal(acted.source, 'docker_event');
  // Two reconcile passes later the job is still exited and nothing was tried on it.
  const passes = h.watcher.stats.reconciles;
  await waitFor('two reconcile passes', async () => h.watcher.stats.reconciles >= passes + 2, 10_000);
  t.equal(h.auditFor(job.name, 'action').length, 0, 'the finished job is not restarted');
  t.equal(h.auditFor(job.name, 'decision').length, 0, 'nor even signalled');
  t.equal((await docker.getContainer(job.name).inspect()).State.Status, 'exited');
  t.same((await restartCountOf(job.name)).restarts, 0);
});
