// The Compose dependency graph from labels: the label grammar (Compose v2's and the hand-written one),
// the graph over a project's services, cycles, layers and dependents. Pure: no engine.
import t from 'tap';
import {
  AUTOHEAL_LABEL_DEFAULTS,
  buildComposeGraph,
  COMPOSE_LABEL_DEFAULTS,
  type DependsOnDefaults,
  dependentsOf,
  describeCycle,
  findCycles,
  type GraphContainer,
  layersOf,
  parseDependsOn,
} from '../../src/core/compose-graph.js';
import { CONTAINER_LABELS } from '../../src/core/labels.js';

const PROJECT = 'shop';

/** A container of the project: `web-1` of service `web`, with the given depends_on labels. */
function ctr(
  name: string,
  o: {
    compose?: string;
    autoheal?: string;
    project?: string;
    service?: string | null;
    oneoff?: boolean;
  } = {},
): GraphContainer {
  const labels: Record<string, string> = { [CONTAINER_LABELS.composeProject]: o.project ?? PROJECT };
  const service = o.service === undefined ? name.replace(/-\d+$/, '') : o.service;
  if (service !== null) labels[CONTAINER_LABELS.composeService] = service;
  if (o.compose !== undefined) labels[CONTAINER_LABELS.composeDependsOn] = o.compose;
  if (o.autoheal !== undefined) labels[CONTAINER_LABELS.dependsOn] = o.autoheal;
  if (o.oneoff) labels[CONTAINER_LABELS.composeOneoff] = 'True';
  return { name, labels };
}

t.test('parseDependsOn reads service:condition:restart entries and reports the bad ones', async (t) => {
  const cases: Array<[string, DependsOnDefaults, unknown, string[]]> = [
    [
      'db:service_healthy:true,cache:service_started:false',
      COMPOSE_LABEL_DEFAULTS,
      [
        { service: 'db', condition: 'service_healthy', restart: true },
        { service: 'cache', condition: 'service_started', restart: false },
      ],
      [],
    ],
    ['', COMPOSE_LABEL_DEFAULTS, [], []],
    ['db', AUTOHEAL_LABEL_DEFAULTS, [{ service: 'db', condition: 'service_started', restart: false }], []],
    ['db', COMPOSE_LABEL_DEFAULTS, [{ service: 'db', condition: 'service_started', restart: true }], []],
    [
      'db:service_healthy',
      AUTOHEAL_LABEL_DEFAULTS,
      [{ service: 'db', condition: 'service_healthy', restart: false }],
      [],
    ],
    [
      ' db : service_completed_successfully : true , ,web',
      AUTOHEAL_LABEL_DEFAULTS,
      [
        { service: 'db', condition: 'service_completed_successfully', restart: true },
        { service: 'web', condition: 'service_started', restart: false },
      ],
      [],
    ],
    [
      'db::true',
      AUTOHEAL_LABEL_DEFAULTS,
      [{ service: 'db', condition: 'service_started', restart: true }],
      [],
    ],
    [
      'db:service_healthy:false,db:service_started:true',
      AUTOHEAL_LABEL_DEFAULTS,
      [{ service: 'db', condition: 'service_started', restart: true }],
      [],
    ],
    [
      'db:healthy,:service_started,a/b,db:service_started:yes,db:service_started:true:x,ok',
      AUTOHEAL_LABEL_DEFAULTS,
      [{ service: 'ok', condition: 'service_started', restart: false }],
      ['db:healthy', ':service_started', 'a/b', 'db:service_started:yes', 'db:service_started:true:x'],
    ],
  ];
  for (const [text, defaults, want, bad] of cases) {
    const got = parseDependsOn(text, defaults);
    t.same(got.dependencies, want, JSON.stringify(text));
    t.same(
      got.bad.map((b) => b.entry),
      bad,
      `${JSON.stringify(text)}: bad entries`,
    );
    for (const b of got.bad) t.ok(b.why.length > 0, `${b.entry}: says why`);
  }
});

t.test('buildComposeGraph: services of one project, their replicas and dependencies', async (t) => {
  const g = buildComposeGraph(PROJECT, [
    ctr('web-2', { compose: 'app:service_started:false' }),
    ctr('web-1', { compose: 'app:service_healthy:true' }),
    ctr('app-1', { compose: 'db:service_healthy:false', autoheal: 'db:service_healthy:true,cache' }),
    ctr('db-1'),
    ctr('cache-1'),
    ctr('other-1', { project: 'other' }),
    ctr('run-1', { service: 'app', oneoff: true }),
    ctr('bare', { service: null }),
    ctr('lost-1', { autoheal: 'gone,db:bad' }),
  ]);
  t.same(
    [...g.services.keys()],
    ['app', 'cache', 'db', 'lost', 'web'],
    'one node per service, in name order',
  );
  t.same(
    g.services.get('web')?.containers.map((c) => c.name),
    ['web-1', 'web-2'],
    'replicas are one service',
  );
  t.same(
    g.services.get('web')?.dependsOn,
    [{ service: 'app', condition: 'service_healthy', restart: true }],
    'replicas that disagree: the stricter wish wins',
  );
  t.same(
    g.services.get('app')?.dependsOn,
    [
      { service: 'cache', condition: 'service_started', restart: false },
      { service: 'db', condition: 'service_healthy', restart: true },
    ],
    'the hand-written label adds to and overrides the Compose one',
  );
  t.same(g.services.get('lost')?.dependsOn, [], 'unknown services and bad entries are dropped');
  const problems = g.problems.map((p) => `${p.container ?? p.service}: ${p.detail}`);
  for (const want of [
    /^other-1: not of project shop/,
    /^run-1: a one-off container/,
    /^bare: no service label/,
    /^lost-1: autoheal\.depends_on: ignored "db:bad"/,
    /^lost: depends on gone, which has no container here/,
  ]) {
    t.ok(
      problems.some((p) => want.test(p)),
      `reported: ${want}`,
    );
  }
  t.equal(problems.length, 5, problems.join('\n'));
});

/** A project from `service: deps` pairs (autoheal.depends_on, bare names). */
const graphOf = (spec: Record<string, string>) =>
  buildComposeGraph(
    PROJECT,
    Object.entries(spec).map(([s, deps]) => ctr(`${s}-1`, { autoheal: deps })),
  );

t.test('layersOf: each layer depends only on earlier ones; independent services share a layer', async (t) => {
  const cases: Array<[string, Record<string, string>, string[][]]> = [
    ['empty project', {}, []],
    ['one service', { db: '' }, [['db']]],
    ['a chain', { web: 'app', app: 'db', db: '' }, [['db'], ['app'], ['web']]],
    ['independent services', { a: '', b: '', c: '' }, [['a', 'b', 'c']]],
    [
      'a diamond',
      { web: 'api,worker', api: 'db', worker: 'db,queue', db: '', queue: '' },
      [['db', 'queue'], ['api', 'worker'], ['web']],
    ],
    [
      'a service sits as early as it can',
      { web: 'db,app', app: 'db', db: '', cron: 'db' },
      [['db'], ['app', 'cron'], ['web']],
    ],
  ];
  for (const [name, spec, want] of cases) {
    const order = layersOf(graphOf(spec));
    t.same(order, { ok: true, layers: want }, name);
  }
});

t.test('cycles are found and named, never looped on; a cycle has no order', async (t) => {
  const cases: Array<[string, Record<string, string>, string[][]]> = [
    ['none', { web: 'app', app: 'db', db: '' }, []],
    ['a service on itself', { db: 'db', web: 'db' }, [['db', 'db']]],
    ['two services', { app: 'db', db: 'app' }, [['app', 'db', 'app']]],
    ['three, behind a chain', { web: 'c', c: 'a', a: 'b', b: 'c' }, [['a', 'b', 'c', 'a']]],
    [
      'two separate cycles',
      { a: 'b', b: 'a', x: 'y', y: 'z', z: 'x', ok: 'a' },
      [
        ['a', 'b', 'a'],
        ['x', 'y', 'z', 'x'],
      ],
    ],
    ['the shortest way round in a tangle', { a: 'b,c', b: 'a', c: 'b' }, [['a', 'b', 'a']]],
  ];
  for (const [name, spec, want] of cases) {
    const g = graphOf(spec);
    t.same(findCycles(g), want, name);
    if (want.length > 0) t.same(layersOf(g), { ok: false, cycles: want }, `${name}: no order`);
    else t.ok(layersOf(g).ok, `${name}: an order`);
  }
  t.equal(describeCycle(['app', 'db', 'app']), 'app → db → app');
});

t.test('a long chain is ordered and its ring found without overflowing the stack', async (t) => {
  const n = 5_000;
  const spec: Record<string, string> = {};
  for (let i = 0; i < n; i++) spec[`s${i}`] = i === 0 ? '' : `s${i - 1}`;
  const order = layersOf(graphOf(spec));
  t.ok(order.ok);
  if (order.ok) t.equal(order.layers.length, n);
  spec.s0 = `s${n - 1}`;
  const cycles = findCycles(graphOf(spec));
  t.equal(cycles.length, 1);
  t.equal(cycles[0]?.length, n + 1, 'the whole ring is named');
});

t.test('dependentsOf: who depends on a service directly, with the restart flag', async (t) => {
  const g = buildComposeGraph(PROJECT, [
    ctr('db-1'),
    ctr('app-1', { compose: 'db:service_healthy:true' }),
    ctr('worker-1', { compose: 'db:service_started:false' }),
    ctr('web-1', { autoheal: 'app:service_healthy:true' }),
  ]);
  const cases: Array<[string, unknown]> = [
    [
      'db',
      [
        { service: 'app', condition: 'service_healthy', restart: true },
        { service: 'worker', condition: 'service_started', restart: false },
      ],
    ],
    ['app', [{ service: 'web', condition: 'service_healthy', restart: true }]],
    ['web', []],
    ['nothing', []],
  ];
  for (const [service, want] of cases) t.same(dependentsOf(g, service), want, service);
});
