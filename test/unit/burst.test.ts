// A burst on a fake engine: every sick container gets its stop signal at once, and MAX_PARALLEL bounds
// only the costly part (the start). With two slots and six containers whose stops take their whole
// stop timeout, all six stops are under way before any finishes, and never more than two restarts or
// starts run together.
import t from 'tap';
import type { StartOutcome, StopOutcome } from '../../src/docker/client.js';
import { fakeEngine, manual, WatchedDocker } from '../fixtures/fake-engine.js';

/** Stops wait on a gate (the stop timeout); restarts and starts are the bounded work, counted. */
class SlowStops extends WatchedDocker {
  readonly begun: string[] = [];
  bounded = 0;
  maxBounded = 0;
  private open!: () => void;
  readonly gate = new Promise<void>((resolve) => {
    this.open = resolve;
  });
  release() {
    this.open();
  }
  private async boundedWork<T>(work: () => T): Promise<T> {
    this.bounded++;
    this.maxBounded = Math.max(this.maxBounded, this.bounded);
    try {
      await new Promise((r) => setTimeout(r, 5));
      return work();
    } finally {
      this.bounded--;
    }
  }
  override async restart(id: string): Promise<'restarted' | 'gone'> {
    this.begun.push(`restart ${id.slice(0, 2)}`);
    // docker restart: the stop timeout first, inside the call (and so inside a slot).
    this.bounded++;
    this.maxBounded = Math.max(this.maxBounded, this.bounded);
    await this.gate;
    this.bounded--;
    return super.restart(id);
  }
  override async stop(id: string): Promise<StopOutcome> {
    this.begun.push(`stop ${id.slice(0, 2)}`);
    await this.gate;
    const c = this.find(id);
    if (c) c.state = 'exited';
    return 'stopped';
  }
  override async start(id: string): Promise<StartOutcome> {
    return this.boundedWork(() => {
      const c = this.find(id);
      if (c) Object.assign(c, { state: 'running', running: true, startedAt: Date.now() });
      return 'started' as const;
    });
  }
}

const manualRestart = (name: string) => manual(name, { id: `burst-${name}`, force: true });

t.test('six restarts with two slots: every stop at once, two costly steps at a time', async (t) => {
  const docker = new SlowStops();
  const names = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6'];
  for (const n of names) docker.add(n);
  const { engine, store } = await fakeEngine(t, docker, { MAX_PARALLEL: '2', CIRCUIT_MAX_ACTIONS: '100' });
  engine.start();
  const ids = names.map((n) => engine.request(manualRestart(n)));
  // Nothing has finished a stop yet, and all six have begun one: two as docker restart in a slot, four
  // as a stop that waits for no slot.
  for (let i = 0; i < 200 && docker.begun.length < 6; i++) await new Promise((r) => setTimeout(r, 5));
  t.equal(docker.begun.length, 6, 'six stop signals out before any stop finished');
  t.equal(docker.begun.filter((b) => b.startsWith('restart')).length, 2, 'two in one engine call each');
  t.equal(docker.begun.filter((b) => b.startsWith('stop')).length, 4, 'four stopped at once');
  docker.release();
  await engine.idle();
  t.ok(docker.maxBounded <= 2, `at most two restarts or starts at once (saw ${docker.maxBounded})`);
  for (const id of ids) t.equal(store.remediation(id)?.state, 'succeeded');
});

t.test('with a free slot a restart is one engine call, as before', async (t) => {
  const docker = new SlowStops();
  docker.add('solo');
  docker.release();
  const { engine, store } = await fakeEngine(t, docker, { MAX_PARALLEL: '2' });
  engine.start();
  const id = engine.request(manualRestart('solo'));
  await engine.idle();
  t.same(docker.begun, ['restart so']);
  t.equal(store.remediation(id)?.state, 'succeeded');
});
