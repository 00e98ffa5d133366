// cleanup's container pass without an engine: what it removes, what it keeps (out of scope, protected,
// put aside, too young, in use by another remediation), and a container started again between the
// listing and the remove, which the engine refuses to remove and which is no error of the cleanup.
import pino from 'pino';
import t from 'tap';
import type { ActionContext, CleanupReport } from '../../src/actions/handler.js';
import { cleanupAction } from '../../src/actions/cleanup.js';
import { testConfig } from '../fixtures/config.js';
import { FakeDocker } from '../fixtures/fake-docker.js';

const IN = { 'autoheal.enable': 'true' };
const scope = { scope: 'label', composeProject: undefined, selfContainerId: undefined } as const;

function world() {
  const docker = new FakeDocker();
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  const ctx: ActionContext = {
    docker,
    config: testConfig({ CLEANUP_PRUNE_UNTIL: '1h' }),
    log,
    now: () => 10 * 3600_000,
    params: {},
  };
  return { docker, ctx, lines };
}

const run = async (ctx: ActionContext, inUse?: (name: string) => boolean) => {
  const out = await cleanupAction.run(ctx, { kind: 'host', scope, inUse });
  return { ok: out.ok, report: (out as { report?: CleanupReport }).report };
};

t.test('only stopped, old, in-scope, unprotected, idle containers are removed', async (t) => {
  const { docker, ctx } = world();
  const removed: string[] = [];
  const remove = docker.remove.bind(docker);
  docker.remove = async (id, opts) => {
    removed.push(id);
    return remove(id, opts);
  };
  docker.add('leftover', { state: 'exited', labels: IN });
  docker.add('running', { state: 'running', labels: IN });
  docker.add('unlabelled', { state: 'exited', labels: {} });
  docker.add('protected', { state: 'exited', labels: { ...IN, 'autoheal.protect': 'true' } });
  docker.add('young', { state: 'exited', labels: IN, created: 10 * 3600_000 - 60_000 });
  docker.add('restarting-now', { state: 'exited', labels: IN });
  const r = await run(ctx, (name) => name === 'restarting-now');
  t.same(removed, ['leftover']);
  t.equal(r.ok, true);
  t.equal(r.report?.removed.containers, 1);
});

t.test('a container started again since the listing is kept, and is no error', async (t) => {
  const { docker, ctx, lines } = world();
  docker.add('came-back', { state: 'exited', labels: IN });
  docker.removeFails.set(
    'came-back',
    new Error(
      '(HTTP code 409) unexpected - You cannot remove a running container abc. Stop the container before attempting removal or force remove',
    ),
  );
  const r = await run(ctx);
  t.equal(r.ok, true, 'the cleanup succeeded');
  t.same(r.report?.errors, []);
  t.equal(r.report?.removed.containers ?? 0, 0);
  t.ok(docker.containers.has('came-back'), 'still there');
  t.ok(lines.some((l) => l.event === 'cleanup_skipped' && l.container === 'came-back'));
});

t.test('any other remove failure is an error of the cleanup, reported with the container', async (t) => {
  const { docker, ctx } = world();
  docker.add('stuck', { state: 'exited', labels: IN });
  docker.removeFails.set(
    'stuck',
    new Error('(HTTP code 500) server error - driver failed to remove root filesystem'),
  );
  const r = await run(ctx);
  t.equal(r.ok, false);
  t.match(r.report?.errors, [/remove stuck: .*driver failed/]);
});
