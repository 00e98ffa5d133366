// The targets vocabulary: what an operator writes, what each action accepts, and the one check the
// admin API and SCHEDULES share (selectTarget). Pure: no engine.
import t from 'tap';
import type { ActionHandler } from '../../src/actions/handler.js';
import { defaultActions, registryOf } from '../../src/actions/registry.js';
import { describeTarget, kindOf, parseTarget, selectTarget } from '../../src/core/targets.js';

t.test('parseTarget and describeTarget read and write the same grammar', async (t) => {
  const cases: Array<[string, unknown, ReturnType<typeof kindOf>]> = [
    ['web', { kind: 'container', name: 'web' }, 'container'],
    ['/web', { kind: 'container', name: 'web' }, 'container'],
    ['service:web', { kind: 'service', service: 'web', project: undefined }, 'container'],
    ['service:shop/web', { kind: 'service', service: 'web', project: 'shop' }, 'container'],
    ['project:shop', { kind: 'project', project: 'shop' }, 'container'],
    ['swarm:web', { kind: 'swarm', service: 'web' }, 'swarm_service'],
    ['host', { kind: 'host' }, 'host'],
  ];
  for (const [text, want, kind] of cases) {
    const parsed = parseTarget(text);
    t.same(parsed, want, text);
    t.equal(kindOf(parsed), kind, `${text}: kind`);
    t.equal(describeTarget(parsed), text.replace(/^\//, ''), `${text}: described as written`);
  }
  t.equal(kindOf({ kind: 'none' }), undefined);
});

t.test(
  'selectTarget: the action exists, acts on that kind of target, and the names are well formed',
  async (t) => {
    const actions = defaultActions();
    const cases: Array<[string, string | undefined, unknown]> = [
      ['restart', 'web', { ok: true, target: { kind: 'container', name: 'web' } }],
      ['stop_start', 'service:shop/web', { ok: true, target: { kind: 'service', service: 'web' } }],
      ['restart', 'project:shop', { ok: true, target: { kind: 'project', project: 'shop' } }],
      ['cleanup', undefined, { ok: true, target: { kind: 'host' } }],
      ['cleanup', '', { ok: true, target: { kind: 'host' } }],
      ['cleanup', 'host', { ok: true, target: { kind: 'host' } }],
      ['cleanup', 'web', { ok: false, reason: 'bad_target', detail: /cleanup acts on the whole host/ }],
      ['restart', undefined, { ok: false, reason: 'bad_target', detail: /restart needs a target/ }],
      ['restart', 'host', { ok: false, reason: 'bad_target', detail: /restart needs a target/ }],
      ['restart', 'swarm:web', { ok: true, target: { kind: 'swarm', service: 'web' } }],
      [
        'stop_start',
        'swarm:web',
        { ok: false, reason: 'bad_target', detail: /stop_start acts on containers, not on "swarm:web"/ },
      ],
      ['restart', '../x', { ok: false, reason: 'invalid_target' }],
      ['restart', 'service:shop/we b', { ok: false, reason: 'invalid_target' }],
      ['restart', 'project:Shop', { ok: false, reason: 'invalid_target' }],
      [
        'reboot',
        'web',
        {
          ok: false,
          reason: 'unknown_action',
          detail:
            'unknown action "reboot": use one of restart, stop_start, cleanup, recreate, restart_stack, update, rollback',
        },
      ],
      ['none', 'web', { ok: false, reason: 'unknown_action' }],
    ];
    for (const [action, text, want] of cases)
      t.match(selectTarget(actions, action, text), want, `${action} ${text}`);
  },
);

t.test('a new action is one registry entry: selectTarget and its messages follow the registry', async (t) => {
  const swarmOnly: ActionHandler = {
    name: 'rollback',
    targets: ['swarm_service'],
    run: async () => ({ ok: true, detail: 'rolled back' }),
  };
  const actions = registryOf([...defaultActions().values(), swarmOnly]);
  t.match(selectTarget(actions, 'rollback', 'swarm:web'), {
    ok: true,
    target: { kind: 'swarm', service: 'web' },
  });
  t.match(selectTarget(actions, 'rollback', 'web'), {
    ok: false,
    detail: 'rollback acts on Swarm services, not on "web"',
  });
  t.match(selectTarget(actions, 'rollback', 'swarm:-web'), { ok: false, reason: 'invalid_target' });
  t.match(selectTarget(actions, 'reboot', 'web'), {
    detail:
      /use one of restart, stop_start, cleanup, recreate, restart_stack, update, rollback, scale_up, scale_down$/,
  });
});
