// The action contract without a Docker engine: the default registry names each action with the target
// kinds it accepts, and the engine runs whatever registry it is handed (here fakes, on a fake
// DockerClient), refusing an action listed for the wrong kind exactly as it refuses a missing one.
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import type { ActionHandler, ActionRegistry, TargetKind } from '../../src/actions/handler.js';
import { defaultActions, registryOf } from '../../src/actions/registry.js';
import type { ActionName, Signal } from '../../src/core/types.js';
import { createLogger } from '../../src/logger.js';
import type { Store } from '../../src/state/store.js';
import { testConfig } from '../fixtures/config.js';
import { fakeEngine, type Teardown, WatchedDocker } from '../fixtures/fake-engine.js';

/** One healthy container in memory; every call to the engine it would make is refused. */
class FakeDocker extends WatchedDocker {
  readonly web = this.add('web');
  private refuse(what: string): never {
    this.calls.push(what);
    throw new Error(`the fake engine refuses ${what}`);
  }
  override async restart(): Promise<'restarted'> {
    return this.refuse('restart');
  }
  override async stop(): Promise<'stopped'> {
    return this.refuse('stop');
  }
  override async start(): Promise<'started'> {
    return this.refuse('start');
  }
  override async kill(): Promise<'killed'> {
    return this.refuse('kill');
  }
  override async remove(): Promise<{ removed: boolean; reclaimedBytes: number }> {
    return this.refuse('remove');
  }
  override async prune(): Promise<never> {
    return this.refuse('prune');
  }
}

/** A fake action that records what it was run on and succeeds without touching the engine. */
function fakeAction(name: ActionName, targets: TargetKind[], runs: string[]): ActionHandler {
  return {
    name,
    targets,
    async run(ctx, target) {
      runs.push(target.kind === 'container' ? `${name} ${target.container.name}` : `${name} host`);
      return { ok: true, detail: `fake ${name}`, startedAfter: ctx.now() };
    },
  };
}

async function newEngine(t: Teardown, actions: ActionRegistry) {
  const docker = new FakeDocker();
  const { engine, store } = await fakeEngine(t, docker, {}, { actions });
  engine.start();
  return { engine, store, docker };
}

const manual = (action: ActionName, target: Signal['target']): Omit<Signal, 'remediationId'> => ({
  id: `manual-${Math.random().toString(16).slice(2)}`,
  source: 'manual',
  status: 'firing',
  receivedAt: Date.now(),
  condition: 'requested',
  target,
  action,
  params: {},
  labels: {},
  annotations: {},
  requestedBy: 'test',
  force: true,
});

async function finished(store: Store, id: string) {
  const end = Date.now() + 10_000;
  for (;;) {
    const r = store.remediation(id);
    if (r && r.state !== 'queued' && r.state !== 'running') return r;
    if (Date.now() > end) throw new Error(`remediation ${id} did not finish (${r?.state})`);
    await sleep(10);
  }
}

t.test('the default registry lists its actions with the target kinds they accept', async (t) => {
  const actions = defaultActions();
  t.same(
    [...actions.values()].map((h) => [h.name, h.targets]),
    [
      ['restart', ['container', 'swarm_service']],
      ['stop_start', ['container']],
      ['cleanup', ['host']],
      ['recreate', ['container']],
      ['restart_stack', ['compose_project']],
      ['update', ['container']],
      ['rollback', ['swarm_service']],
      ['scale_up', ['compose_service', 'swarm_service']],
      ['scale_down', ['compose_service', 'swarm_service']],
    ],
  );
  for (const [name, h] of actions) t.equal(name, h.name, `${name} is registered under its own name`);
  const ctx = {
    docker: new FakeDocker(),
    config: testConfig(),
    log: createLogger({ level: 'silent', file: '' }),
    now: Date.now,
    params: {},
  };
  const host = {
    kind: 'host' as const,
    scope: { scope: ctx.config.scope, composeProject: undefined, selfContainerId: undefined },
  };
  t.same(await actions.get('restart')?.run(ctx, host), {
    ok: false,
    detail: 'restart does not act on a host',
  });
});

t.test('an engine handed its own registry runs the fake action and verifies the container', async (t) => {
  const runs: string[] = [];
  const { engine, store, docker } = await newEngine(
    t,
    registryOf([fakeAction('restart', ['container'], runs)]),
  );
  const r = await finished(store, engine.request(manual('restart', { kind: 'container', name: 'web' })));
  t.same(runs, ['restart web'], 'the fake ran on the container the signal named');
  t.same(docker.calls, [], 'the real restart never ran');
  t.equal(r.state, 'succeeded');
  t.match(r.detail, /^fake restart; healthy/, 'the outcome was verified against the container');
});

t.test(
  'an engine handed its own host action runs it; an outcome without a report frees nothing',
  async (t) => {
    const runs: string[] = [];
    const { engine, store, docker } = await newEngine(t, registryOf([fakeAction('cleanup', ['host'], runs)]));
    const r = await finished(store, engine.request(manual('cleanup', { kind: 'host' })));
    t.same(runs, ['cleanup host']);
    t.same(docker.calls, []);
    t.equal(r.state, 'succeeded');
    t.equal(r.reclaimedBytes, 0);
  },
);

t.test('a cleanup registered for containers only is the missing cleanup handler it always was', async (t) => {
  const runs: string[] = [];
  const { engine, store } = await newEngine(t, registryOf([fakeAction('cleanup', ['container'], runs)]));
  const r = await finished(store, engine.request(manual('cleanup', { kind: 'host' })));
  t.same(runs, [], 'an action is never run on a kind it does not accept');
  t.equal(r.state, 'failed');
  t.equal(r.detail, 'no cleanup handler');
});
