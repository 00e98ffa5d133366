// Who depends on a container just restarted or re-created, and what is done with each (pure).
import t from 'tap';
import { type DependentContainer, planDependents } from '../../src/core/dependents.js';

const c = (name: string, labels: Record<string, string> = {}, networkMode?: string): DependentContainer => ({
  id: `${name}-id`,
  name,
  labels,
  networkMode,
});
const svc = (service: string, extra: Record<string, string> = {}) => ({
  'com.docker.compose.project': 'shop',
  'com.docker.compose.service': service,
  ...extra,
});

const vpn = { name: 'vpn', labels: {}, ids: ['vpn-old-id'] };
const db = { name: 'shop-db-1', labels: svc('db'), ids: ['shop-db-1-id'] };

type Row = [string, typeof vpn, string, DependentContainer[], Array<Array<[string, string, string?]>>];
const table: Row[] = [
  [
    'a namespace dependent is restarted after a restart',
    vpn,
    'restart',
    [c('client', {}, 'container:vpn-old-id')],
    [[['client', 'restart']]],
  ],
  [
    'and re-created against the new id after a recreate',
    vpn,
    'recreate',
    [c('client', {}, 'container:vpn-old-id')],
    [[['client', 'recreate', 'container:vpn-new-id']]],
  ],
  [
    'a namespace given by name counts too',
    vpn,
    'restart',
    [c('client', {}, 'container:vpn')],
    [[['client', 'restart']]],
  ],
  [
    'its own label wins over the default',
    vpn,
    'recreate',
    [c('client', { 'autoheal.dependents': 'ignore' }, 'container:vpn-old-id')],
    [[['client', 'ignore']]],
  ],
  ['a container in its own namespace is no dependent', vpn, 'restart', [c('other', {}, 'none')], []],
  [
    'depends_on with restart:true, transitively, in layers',
    db,
    'restart',
    [
      c('shop-db-1', svc('db')),
      c('shop-app-1', svc('app', { 'com.docker.compose.depends_on': 'db:service_healthy:true' })),
      c('shop-app-2', svc('app', { 'com.docker.compose.depends_on': 'db:service_healthy:true' })),
      c('shop-web-1', svc('web', { 'autoheal.depends_on': 'app:service_healthy:true' })),
      c('shop-cron-1', svc('cron', { 'com.docker.compose.depends_on': 'db:service_started:false' })),
    ],
    [
      [
        ['shop-app-1', 'restart'],
        ['shop-app-2', 'restart'],
      ],
      [['shop-web-1', 'restart']],
    ],
  ],
  [
    'another project is never a dependent',
    db,
    'restart',
    [
      c('other-app-1', {
        ...svc('app', { 'com.docker.compose.depends_on': 'db:service_healthy:true' }),
        'com.docker.compose.project': 'other',
      }),
    ],
    [],
  ],
];

t.test('planDependents', async (t) => {
  for (const [what, parent, action, listing, want] of table) {
    const plan = planDependents(parent, action, listing, `${parent.name}-new-id`);
    const got = plan.layers.map((l) =>
      l.map((s) => (s.networkMode ? [s.container.name, s.mode, s.networkMode] : [s.container.name, s.mode])),
    );
    t.same(got, want, what);
  }
});

t.test('a bad autoheal.dependents value is reported and the default holds', async (t) => {
  const plan = planDependents(
    vpn,
    'restart',
    [c('client', { 'autoheal.dependents': 'reboot' }, 'container:vpn')],
    'x',
  );
  t.same(
    plan.layers.map((l) => l.map((s) => s.mode)),
    [['restart']],
  );
  t.match(plan.problems, [/client: autoheal.dependents="reboot" is not one of restart, recreate, ignore/]);
});
