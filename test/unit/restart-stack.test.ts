// restart_stack without Docker: a container the policy leaves alone still orders the others.
import t from 'tap';
import { restartStackAction } from '../../src/actions/restart-stack.js';
import { createLogger } from '../../src/logger.js';
import { testConfig } from '../fixtures/config.js';
import { WatchedDocker } from '../fixtures/fake-engine.js';

const svc = (service: string, dependsOn?: string) => ({
  'autoheal.enable': 'true',
  'com.docker.compose.project': 'shop',
  'com.docker.compose.service': service,
  ...(dependsOn ? { 'com.docker.compose.depends_on': dependsOn } : {}),
});

t.test('web waits for db through a protected app it does not restart', async (t) => {
  const docker = new WatchedDocker();
  docker.add('shop-db-1', { labels: svc('db') });
  docker.add('shop-app-1', {
    labels: { ...svc('app', 'db:service_healthy:true'), 'autoheal.protect': 'true' },
  });
  docker.add('shop-web-1', { labels: svc('web', 'app:service_healthy:true') });
  const inspect = async (name: string) => {
    const c = await docker.inspect(name);
    if (!c) throw new Error(`no ${name}`);
    return c;
  };
  const [db, app, web] = await Promise.all(['shop-db-1', 'shop-app-1', 'shop-web-1'].map(inspect));
  const ctx = {
    docker,
    config: testConfig({ VERIFY_GRACE: '0', VERIFY_TIMEOUT: '5' }),
    log: createLogger({ level: 'silent', file: '' }),
    now: Date.now,
    params: {},
  };
  const out = await restartStackAction.run(ctx, {
    kind: 'compose_project',
    project: 'shop',
    containers: [db, web].filter((c) => c !== undefined),
    untouched: [
      { name: 'shop-app-1', reason: 'protected: autoheal.protect=true', labels: app?.labels ?? {} },
    ],
    stopTimeoutSec: () => 1,
  });
  t.equal(out.ok, true, out.detail);
  t.same(docker.restarts, ['shop-db-1', 'shop-web-1'], 'db first, web after it, app never');
  t.match(out.detail, /2 container\(s\) restarted and verified in 2 layer\(s\): db → app → web/);
  t.match(out.steps, [
    { container: 'shop-app-1', result: 'skipped' },
    { container: 'shop-db-1', result: 'succeeded' },
    { container: 'shop-web-1', result: 'succeeded' },
  ]);
});
