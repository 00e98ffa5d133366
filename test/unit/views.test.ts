// What GET /api/v1/services groups from one listing (core/views.ts): Compose services and projects in
// the watch scope, without one-off runs or replicas put aside, each service's labels and record read as
// a whole; the newest remediation of an action on a target; a Swarm service's tasks counted.
import t from 'tap';
import { DEFAULT_SCALE } from '../../src/core/scale.js';
import type { ContainerRecord } from '../../src/core/types.js';
import { groupCompose, lastRemediation, standingOf, taskCounts } from '../../src/core/views.js';
import { testConfig } from '../fixtures/config.js';
import { containerView, NOW } from '../fixtures/views.js';

const policy = testConfig().policy;
const scope = { scope: 'project', composeProject: 'shop', selfContainerId: undefined } as const;
const inService = (name: string, project: string, service: string, more: Record<string, string> = {}) =>
  containerView({
    id: `${name}0123456789`,
    name,
    health: 'healthy',
    labels: { 'com.docker.compose.project': project, 'com.docker.compose.service': service, ...more },
  });

t.test('services and projects in scope, one-off runs and replicas put aside left out', async (t) => {
  const records = new Map<string, ContainerRecord>([
    [
      'service:shop/web',
      {
        name: 'service:shop/web',
        attempts: 1,
        failures: 0,
        givenUp: false,
        lastAction: 'scale_up',
        lastActionAt: NOW - 10_000,
        lastResult: 'succeeded',
        nextAllowedAt: NOW + 30_500,
      },
    ],
  ]);
  const g = groupCompose(
    [
      inService('shop_web_2', 'shop', 'web', { 'autoheal.scale.max': '4' }),
      inService('shop_web_1', 'shop', 'web', { 'autoheal.scale.max': '4' }),
      { ...inService('shop_db_1', 'shop', 'db'), state: 'exited' },
      inService('shop_web_run_1', 'shop', 'web', { 'com.docker.compose.oneoff': 'True' }),
      inService('shop_web_3-autoheal-replaced', 'shop', 'web'),
      inService('blog_web_1', 'blog', 'web'),
      containerView({ name: 'loose', labels: {} }),
    ],
    { scope, record: (n) => records.get(n), now: NOW, policy, scaleDefaults: DEFAULT_SCALE },
  );
  t.same(
    g.services.map((s) => [s.key, s.replicas, s.containers]),
    [
      ['service:shop/db', { total: 1, running: 0, healthy: 0 }, ['shop_db_1']],
      ['service:shop/web', { total: 2, running: 2, healthy: 2 }, ['shop_web_1', 'shop_web_2']],
    ],
  );
  const web = g.services[1];
  t.match(web?.scale, { min: 1, max: 4, minFrom: 'SCALE_MIN=1', maxFrom: 'autoheal.scale.max=4' });
  t.equal(g.services[0]?.scale, undefined, 'no limits unless labelled');
  t.match(web?.standing, {
    attempts: 1,
    cooldownRemainingSeconds: 31,
    lastAction: 'scale_up',
    lastResult: 'succeeded',
    pausedUntil: undefined,
  });
  t.same(
    g.projects.map((p) => [p.project, p.containers, p.services]),
    [['shop', { total: 3, running: 2, healthy: 2 }, ['db', 'web']]],
  );
});

t.test('a pause label on a container counts for its standing; a pause in the past does not', async (t) => {
  const c = containerView({ labels: { 'autoheal.paused_until': new Date(NOW + 60_000).toISOString() } });
  t.equal(standingOf(c, undefined, NOW, policy).pausedUntil, NOW + 60_000);
  const old = { name: 'web', attempts: 0, failures: 0, givenUp: false, pausedUntil: NOW - 1 };
  t.equal(standingOf(containerView({ labels: {} }), old, NOW, policy).pausedUntil, undefined);
});

t.test('the newest remediation of an action on a target', async (t) => {
  const r = (id: string, target: string, action: string, createdAt: number) => ({
    id,
    target,
    action,
    state: 'succeeded',
    createdAt,
    updatedAt: createdAt,
  });
  const all = [
    r('a', 'project:shop', 'restart_stack', 1),
    r('b', 'project:shop', 'restart_stack', 3),
    r('c', 'project:shop', 'restart', 5),
    r('d', 'project:blog', 'restart_stack', 9),
  ];
  t.equal(lastRemediation(all, 'project:shop', 'restart_stack')?.id, 'b');
  t.equal(lastRemediation(all, 'project:none', 'restart_stack'), undefined);
});

t.test("a Swarm service's tasks: those wanted running, and those running", async (t) => {
  t.same(
    taskCounts([
      { state: 'running', desiredState: 'running' },
      { state: 'starting', desiredState: 'running' },
      { state: 'failed', desiredState: 'shutdown' },
    ]),
    { wanted: 2, running: 1 },
  );
});
