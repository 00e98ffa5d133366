// The stack path without Docker: an action on a whole Compose project gets the containers the policy
// lets it touch and the ones it must leave alone; the chain is one incident, audited step by step, and a
// failed step escalates once.
import t, { type Test } from 'tap';
import type { ActionHandler, ActionTarget } from '../../src/actions/handler.js';
import { defaultActions, registryOf } from '../../src/actions/registry.js';
import { fakeEngine, manual, until, WatchedDocker } from '../fixtures/fake-engine.js';

const compose = (project: string, service: string, extra: Record<string, string> = {}) => ({
  labels: {
    'autoheal.enable': 'true',
    'com.docker.compose.project': project,
    'com.docker.compose.service': service,
    ...extra,
  },
});

/** A restart_stack stand-in: records what it was handed and reports one step per container. */
function stackAction(seen: ActionTarget[], fail?: string): ActionHandler {
  return {
    name: 'restart_stack',
    targets: ['compose_project'],
    async run(ctx, target) {
      seen.push(target);
      if (target.kind !== 'compose_project') return { ok: false, detail: 'wrong kind' };
      const steps = target.containers.map((c) => ({
        container: c.name,
        action: 'restart',
        result: c.name === fail ? ('failed' as const) : ('succeeded' as const),
        at: ctx.now(),
        detail: c.name === fail ? 'health check still failing' : 'healthy',
      }));
      const ok = steps.every((s) => s.result === 'succeeded');
      return { ok, detail: ok ? 'every layer healthy' : `stopped at ${fail}`, steps };
    },
  };
}

const setup = async (t: Test, fail?: string) => {
  const docker = new WatchedDocker();
  docker.add('shop-db-1', compose('shop', 'db'));
  docker.add('shop-web-1', compose('shop', 'web'));
  docker.add('shop-vault-1', compose('shop', 'vault', { 'autoheal.protect': 'true' }));
  docker.add('other-web-1', compose('other', 'web'));
  const seen: ActionTarget[] = [];
  const actions = registryOf([...defaultActions().values(), stackAction(seen, fail)]);
  const a = await fakeEngine(t, docker, {}, { actions });
  a.engine.start();
  return { ...a, docker, seen };
};

t.test('restart_stack of project:shop gets its containers, the protected one left alone', async (t) => {
  const a = await setup(t);
  const id = a.engine.request(
    manual('x', { action: 'restart_stack', target: { kind: 'project', project: 'shop' } }),
  );
  await until('the remediation ends', () => a.store.remediation(id)?.state === 'succeeded');
  const [target] = a.seen;
  t.equal(target?.kind, 'compose_project');
  if (target?.kind !== 'compose_project') return;
  t.equal(target.project, 'shop');
  t.same(target.containers.map((c) => c.name).sort(), ['shop-db-1', 'shop-web-1'], 'only its own project');
  t.match(target.untouched, [{ name: 'shop-vault-1', reason: /^protected/ }]);
  t.same(a.docker.restarts, [], 'the engine itself restarted nothing: the action did');
  const [incident] = a.store.listIncidents({ container: 'project:shop' });
  t.equal(incident?.status, 'recovered', 'one incident for the chain, recovered');
  t.same(
    incident?.events.filter((e) => e.type === 'verification').map((e) => e.action),
    ['restart shop-db-1', 'restart shop-web-1'],
    'each step on its timeline',
  );
  t.equal(a.lines.filter((l) => l.event === 'step').length, 2, 'each step an audit line');
  t.equal(a.sink.raised.length, 0, 'nobody paged');
});

t.test('a failed step escalates once, naming the chain and the step', async (t) => {
  const a = await setup(t, 'shop-web-1');
  const id = a.engine.request(
    manual('x', { action: 'restart_stack', target: { kind: 'project', project: 'shop' } }),
  );
  await until('the remediation ends', () => a.store.remediation(id)?.state === 'failed');
  t.equal(a.sink.raised.length, 1);
  t.match(a.sink.raised[0], {
    kind: 'verification_failed',
    detail: /shop-web-1 restart failed \(health check still failing\)/,
  });
  t.equal(a.store.listIncidents({ container: 'project:shop' })[0]?.status, 'given_up');
});

t.test('a dry run hands the action nothing; a project with no container is not found', async (t) => {
  const a = await setup(t);
  const dry = a.engine.request(
    manual('x', { action: 'restart_stack', target: { kind: 'project', project: 'shop' }, dryRun: true }),
  );
  await until('the dry run ends', () => a.store.remediation(dry)?.state === 'dry_run');
  const none = a.engine.request(
    manual('x', { action: 'restart_stack', target: { kind: 'project', project: 'nope' } }),
  );
  await until('the miss is recorded', () => a.store.remediation(none)?.state === 'skipped');
  t.match(a.store.remediation(none), { skipReason: 'target_not_found' });
  t.equal(a.seen.length, 0);
});

t.test('restart of project:shop is each container on its own, by the container path', async (t) => {
  const a = await setup(t);
  const id = a.engine.request(manual('x', { target: { kind: 'project', project: 'shop' } }));
  await until('the remediation ends', () =>
    ['succeeded', 'failed'].includes(a.store.remediation(id)?.state ?? ''),
  );
  t.same([...a.docker.restarts].sort(), ['shop-db-1', 'shop-web-1'], 'the protected one is skipped');
  t.equal(a.seen.length, 0);
});
