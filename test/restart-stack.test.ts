// restart_stack on the real engine: a Compose project made by docker-compose 1.29 (db ← app ← web,
// each waiting for the one before to be healthy) is restarted in dependency order, each service only
// once the one it depends on is healthy again, as the engine's own events show; a middle service that
// stays broken stops the stack there; a dependency cycle restarts nothing. The handler is called
// directly with a DockerodeClient. Also prints (never asserts) how long the chain took against the
// same three restarted one at a time by hand.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import t from 'tap';
import { stringify } from 'yaml';
import type { ActionContext, ActionTarget } from '../src/actions/handler.js';
import { restartStackAction } from '../src/actions/restart-stack.js';
import { CONTAINER_LABELS } from '../src/core/labels.js';
import type { ContainerDetails, DockerEvent } from '../src/docker/client.js';
import { DockerodeClient } from '../src/docker/dockerode-client.js';
import { testConfig } from './fixtures/config.js';
import {
  BROKEN,
  DOCKER_HOST,
  ensureTestImage,
  exec,
  TEST_IMAGE,
  uniqueName,
  waitFor,
  waitForHealth,
} from './fixtures/docker.js';
import { TEST_LABEL } from './fixtures/labels.js';

const run = promisify(execFile);
const client = new DockerodeClient(DOCKER_HOST, 10_000);
const CHAIN = ['db', 'app', 'web'] as const;
type Service = (typeof CHAIN)[number];

/** While this file exists in a container, its next start comes up unhealthy: how a test breaks a layer. */
const FAIL_NEXT = '/tmp/fail-next';

/** A service of the test stack; docker-compose 1.29 writes no depends_on label, so autoheal's says it. */
function service(dependsOn?: Service) {
  return {
    image: TEST_IMAGE,
    network_mode: 'none',
    // sh as PID 1 traps TERM so a restart is quick; the marker decides how the start comes up.
    command: [
      'sh',
      '-c',
      `trap 'exit 0' TERM; if [ -f ${FAIL_NEXT} ]; then touch ${BROKEN}; else rm -f ${BROKEN}; fi; sleep 2147483 & wait`,
    ],
    stop_grace_period: '2s',
    labels: {
      [TEST_LABEL]: 'true',
      ...(dependsOn ? { [CONTAINER_LABELS.dependsOn]: `${dependsOn}:service_healthy:true` } : {}),
    },
    healthcheck: {
      test: ['CMD-SHELL', `test ! -f ${BROKEN} || { echo "health: ${BROKEN} present"; exit 1; }`],
      interval: '250ms',
      timeout: '2s',
      retries: 1,
    },
    ...(dependsOn ? { depends_on: { [dependsOn]: { condition: 'service_healthy' } } } : {}),
  };
}

interface Stack {
  readonly project: string;
  /** Container name by service (one replica each). */
  readonly names: Readonly<Record<Service, string>>;
  target(): Promise<Extract<ActionTarget, { kind: 'compose_project' }>>;
}

/** Brings the stack up under a project name of its own; `docker-compose down` in teardown. */
async function upStack(t: { teardown(fn: () => unknown): void }): Promise<Stack> {
  await ensureTestImage();
  const project = uniqueName('stack');
  const dir = mkdtempSync(join(tmpdir(), 'autoheal-stack-'));
  const file = join(dir, 'docker-compose.yml');
  writeFileSync(file, stringify({ services: { db: service(), app: service('db'), web: service('app') } }));
  const compose = (...args: string[]) => run('docker-compose', ['-p', project, '-f', file, ...args]);
  t.teardown(async () => {
    await compose('down', '--timeout', '1').catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });
  await compose('up', '-d');
  const names = { db: `${project}_db_1`, app: `${project}_app_1`, web: `${project}_web_1` };
  for (const name of Object.values(names)) await waitForHealth(name, 'healthy');
  return {
    project,
    names,
    async target() {
      const listed = await client.listContainers({
        all: true,
        labels: [`${CONTAINER_LABELS.composeProject}=${project}`],
      });
      const containers = (await Promise.all(listed.map((c) => client.inspect(c.id)))).filter(
        (c): c is ContainerDetails => c !== undefined,
      );
      return {
        kind: 'compose_project',
        project,
        containers,
        untouched: [],
        stopTimeoutSec: (c) => c.stopTimeoutSec ?? 10,
      };
    },
  };
}

const ctx = (): ActionContext => ({
  docker: client,
  config: testConfig({ VERIFY_TIMEOUT: '30', VERIFY_GRACE: '1' }),
  log: pino({ level: 'silent' }),
  now: Date.now,
  params: {},
});

const startedAt = async (name: string) => (await client.inspect(name))?.startedAt;
const HEALTHY = 'health_status: healthy';

/**
 * The engine's events for these containers from now on, in the order it sent them. `since` makes the
 * engine replay what happened between now and the stream's opening, so nothing at the start is lost.
 */
function recordEvents(names: ReadonlyArray<string>) {
  const wanted = new Set(names);
  const seen: DockerEvent[] = [];
  const ac = new AbortController();
  const done = (async () => {
    try {
      for await (const e of client.events({ since: Date.now(), signal: ac.signal })) {
        if (wanted.has(e.name)) seen.push(e);
      }
    } catch {
      // aborted
    }
  })();
  return {
    seen,
    /** Where `name`'s first `action` event is, after position `after`; -1 when there is none. */
    indexOf(name: string, action: string, after = -1): number {
      return seen.findIndex((e, i) => i > after && e.name === name && e.action === action);
    },
    async stop() {
      ac.abort();
      await done;
    },
    /** The events as a line for the report: `db kill +0ms, db start +212ms, …`. */
    describe(project: string): string {
      const first = seen[0]?.timeNano ?? 0n;
      return seen
        .map(
          (e) => `${e.name.replace(`${project}_`, '')} ${e.action} +${(e.timeNano - first) / 1_000_000n}ms`,
        )
        .join(', ');
    },
    /** From the first kill to the last healthy, by the engine's clock. */
    spanMs(): number {
      const kill = seen.find((e) => e.action === 'kill');
      const healthy = seen.filter((e) => e.action === HEALTHY).at(-1);
      return kill && healthy ? Number((healthy.timeNano - kill.timeNano) / 1_000_000n) : Number.NaN;
    },
  };
}

t.test('restart_stack on a docker-compose project', async (t) => {
  const stack = await upStack(t);
  const { db, app, web } = stack.names;

  t.test('a dependency cycle in the labels: nothing restarted, the cycle named', async (t) => {
    const target = await stack.target();
    // db is made to depend on web by its labels alone (docker-compose refuses a cyclic file).
    const cyclic = {
      ...target,
      containers: target.containers.map((c) =>
        c.name === db ? { ...c, labels: { ...c.labels, [CONTAINER_LABELS.dependsOn]: 'web' } } : c,
      ),
    };
    const before = await Promise.all([db, app, web].map(startedAt));
    const out = await restartStackAction.run(ctx(), cyclic);
    t.equal(out.ok, false);
    t.match(out.detail, /dependency cycle in .*: app → db → web → app; nothing restarted/);
    t.same(
      out.steps?.map((s) => s.result),
      ['skipped', 'skipped', 'skipped'],
    );
    t.same(await Promise.all([db, app, web].map(startedAt)), before, 'no container was restarted');
  });

  t.test('db, then app, then web: each only once the one before is healthy again', async (t) => {
    const events = recordEvents([db, app, web]);
    const began = Date.now();
    const out = await restartStackAction.run(ctx(), await stack.target());
    const chainMs = Date.now() - began;
    t.equal(out.ok, true, out.detail);
    t.match(out.detail, /3 container\(s\) restarted and verified in 3 layer\(s\): db → app → web/);
    t.same(
      out.steps?.map((s) => [s.container, s.action, s.result]),
      [
        [db, 'restart', 'succeeded'],
        [app, 'restart', 'succeeded'],
        [web, 'restart', 'succeeded'],
      ],
    );
    await waitFor('web healthy event', async () => events.indexOf(web, HEALTHY) >= 0);
    await events.stop();
    t.comment(`events seen: ${events.describe(stack.project)}`);
    // Each service's restart (kill, start) and its return to healthy, in one chain of positions.
    let at = -1;
    for (const name of [db, app, web]) {
      for (const action of ['kill', 'start', HEALTHY]) {
        const i = events.indexOf(name, action, at);
        t.ok(i > at, `${name}: ${action} after the step before it`);
        at = i;
      }
    }
    for (const s of out.steps ?? []) t.comment(`step ${s.container}: ${s.result}, ${s.detail}`);
    t.comment(
      `restart_stack: the chain of three healthy again after ${chainMs} ms (engine events, first kill to last healthy: ${events.spanMs()} ms)`,
    );

    // The same three one at a time by hand: docker restart, watch until healthy, the next one.
    const manual = recordEvents([db, app, web]);
    const byHand = Date.now();
    for (const name of [db, app, web]) {
      await run('docker', ['restart', '-t', '2', name]);
      await waitForHealth(name, 'healthy');
    }
    const byHandMs = Date.now() - byHand;
    await waitFor('web healthy event', async () => manual.indexOf(web, HEALTHY) >= 0);
    await manual.stop();
    t.comment(`by hand, events seen: ${manual.describe(stack.project)}`);
    t.comment(
      `by hand: the same three, one at a time, healthy again after ${byHandMs} ms (engine events: ${manual.spanMs()} ms)`,
    );
  });

  t.test('services that depend only on the same one are one layer, restarted together', async (t) => {
    const target = await stack.target();
    // web is made to depend on db alone by its labels: app and web are then independent of each other.
    const fanOut = {
      ...target,
      containers: target.containers.map((c) =>
        c.name === web
          ? { ...c, labels: { ...c.labels, [CONTAINER_LABELS.dependsOn]: 'db:service_healthy:true' } }
          : c,
      ),
    };
    const events = recordEvents([db, app, web]);
    const out = await restartStackAction.run(ctx(), fanOut);
    t.equal(out.ok, true, out.detail);
    t.match(out.detail, /in 2 layer\(s\): db → app \+ web/);
    await waitFor('app and web healthy events', async () =>
      [app, web].every((n) => events.indexOf(n, HEALTHY, events.indexOf(n, 'start')) >= 0),
    );
    await events.stop();
    t.comment(`events seen: ${events.describe(stack.project)}`);
    const dbHealthy = events.indexOf(db, HEALTHY, events.indexOf(db, 'start'));
    const kills = [app, web].map((n) => events.indexOf(n, 'kill'));
    const healthy = [app, web].map((n) => events.indexOf(n, HEALTHY, events.indexOf(n, 'start')));
    t.ok(dbHealthy >= 0 && kills.every((k) => k > dbHealthy), 'app and web restarted after db was healthy');
    t.ok(Math.max(...kills) < Math.min(...healthy), 'both were restarted before either was healthy again');
  });

  t.test('a middle layer that stays unhealthy stops the stack: web is not restarted', async (t) => {
    await exec(app, ['touch', FAIL_NEXT]);
    t.teardown(() => exec(app, ['rm', '-f', FAIL_NEXT]).catch(() => undefined));
    const webBefore = await startedAt(web);
    const events = recordEvents([db, app, web]);
    const out = await restartStackAction.run(ctx(), await stack.target());
    t.equal(out.ok, false);
    t.match(
      out.detail,
      new RegExp(`${app} failed \\(layer 2 of 3: db → app → web\\); 1 later not restarted`),
    );
    t.same(
      out.steps?.map((s) => [s.container, s.result]),
      [
        [db, 'succeeded'],
        [app, 'failed'],
        [web, 'skipped'],
      ],
    );
    t.match(out.steps?.[1]?.detail, /health check still failing.*health: \/tmp\/broken present/);
    t.match(out.steps?.[2]?.detail, new RegExp(`not restarted: ${app} failed in layer 2`));
    await waitFor('app unhealthy event', async () => events.indexOf(app, 'health_status: unhealthy') >= 0);
    await events.stop();
    t.comment(`events seen: ${events.describe(stack.project)}`);
    const dbHealthy = events.indexOf(db, HEALTHY, events.indexOf(db, 'start'));
    t.ok(
      dbHealthy >= 0 && events.indexOf(app, 'kill') > dbHealthy,
      'app restarted only after db was healthy',
    );
    t.equal(events.seen.filter((e) => e.name === web).length, 0, 'no event of web at all');
    t.equal(await startedAt(web), webBefore, 'web kept running as it was');
  });
});
