// The CLI's command table, without a service: the usage is generated from it and lists every command
// and option, and every entry can run.
import t from 'tap';
import { defaultUrl } from '../../src/cli/api.js';
import {
  COMMANDS,
  editDistance,
  findCommand,
  suggestCommands,
  unknownCommand,
  usage,
} from '../../src/cli/commands.js';
import { OPTIONS } from '../../src/cli/options.js';
import { forecastsText, servicesText } from '../../src/cli/render.js';

t.test('the usage lists every command of the table with its summary', async (t) => {
  const text = usage();
  t.match(text, /^Usage: autoheal-nexus <command> \[options\]\n/);
  for (const c of COMMANDS) {
    const line = text.split('\n').find((l) => l.startsWith(`  ${c.name} `));
    t.ok(line, `usage lists ${c.name}`);
    t.ok(line?.endsWith(c.summary), `the ${c.name} line ends with its summary`);
    if (c.synopsis) t.ok(line?.includes(`${c.name} ${c.synopsis}`), `the ${c.name} line shows its arguments`);
  }
});

t.test('every table entry has a unique name, a summary and a handler', async (t) => {
  t.ok(COMMANDS.length > 0);
  t.equal(new Set(COMMANDS.map((c) => c.name)).size, COMMANDS.length, 'names are unique');
  for (const c of COMMANDS) {
    t.match(c.name, /^[a-z][a-z-]*$/, `${c.name}: a command word`);
    t.ok(c.summary.trim().length > 0, `${c.name} has a summary`);
    t.equal(typeof c.run, 'function', `${c.name} has a handler`);
    t.equal(findCommand(c.name), c, `${c.name} is found by its name`);
  }
  t.equal(findCommand('reboot'), undefined, 'an unknown name finds nothing');
});

t.test('the usage lists every option', async (t) => {
  const text = usage();
  for (const name of Object.keys(OPTIONS)) {
    t.match(text, new RegExp(`\\n  (-[a-z], )?--${name}\\b`), `usage lists --${name}`);
  }
});

t.test('forecasts: one row per target, off and empty said in words', async (t) => {
  t.equal(forecastsText({ enabled: false, forecasts: [] }), 'forecasts are off: set PROMETHEUS_URL\n');
  t.match(forecastsText({ enabled: true, forecasts: [] }), /no forecasts yet/);
  const text = forecastsText({
    enabled: true,
    forecasts: [
      {
        target: 'web',
        kind: 'memory',
        at: '2026-12-04T05:00:00.000Z',
        current: 150 * 1024 ** 2,
        limit: 200 * 1024 ** 2,
        reason: 'ok',
        detail: 'limit in 0.5 h',
        failureAt: '2026-12-04T05:30:00.000Z',
        r2: 0.98765,
        agreedRuns: 3,
        action: 'restart',
        plannedAt: '2026-12-04T05:10:00.000Z',
        plannedReason: 'maintenance_window',
      },
    ],
  });
  t.match(text, /^TARGET\s+KIND\s+NOW\/LIMIT\s+FAILS AT\s+R²\s+VERDICT\s+NEXT/);
  t.match(text, /web\s+memory\s+150Mi\/200Mi\s+.*\s+0\.988\s+ok\s+restart at .* \(maintenance_window\)/);
});

t.test('services: Compose services, stacks and (on a manager) Swarm services, one table each', async (t) => {
  const standing = {
    attempts: 0,
    maxAttempts: 3,
    cooldownRemainingSeconds: 0,
    pausedUntil: null,
    givenUp: false,
  };
  const text = servicesText({
    services: [
      {
        key: 'service:shop/web',
        project: 'shop',
        service: 'web',
        replicas: { total: 2, running: 2, healthy: 1 },
        scale: { min: 1, max: 3, minFrom: 'autoheal.scale.min=1', maxFrom: 'autoheal.scale.max=3' },
        containers: ['shop_web_1', 'shop_web_2'],
        ...standing,
        lastAction: 'scale_up',
        lastResult: 'succeeded',
        lastActionAt: '2026-12-04T05:00:00.000Z',
      },
    ],
    stacks: [{ project: 'shop', containers: { total: 3, running: 3, healthy: 2 }, services: ['db', 'web'] }],
    swarm: { manager: false, services: [] },
  });
  t.match(text, /SERVICE\s+HEALTHY\/RUNNING\/ALL\s+SCALE/);
  t.match(text, /service:shop\/web\s+1\/2\/2\s+1-3\s+0\/3\s+-\s+scale_up succeeded/);
  t.match(text, /project:shop\s+2\/3\/3\s+db,web\s+-/);
  t.notMatch(text, /SWARM/, 'no Swarm table off a manager');
});

t.test('did you mean: the nearest commands by edit distance', async (t) => {
  t.equal(editDistance('stauts', 'status'), 2);
  t.equal(editDistance('', 'abc'), 3);
  t.same(suggestCommands('stauts'), ['status']);
  t.same(suggestCommands('restrat'), ['restart']);
  t.same(suggestCommands('incident'), ['incidents']);
  t.same(suggestCommands('xyzzy'), []);
  t.match(unknownCommand('resum'), /did you mean "resume"\?/);
  t.notMatch(unknownCommand('xyzzy'), /did you mean|Usage/);
});

t.test('the default URL comes from PORT and HOST', async (t) => {
  t.equal(defaultUrl({}), 'http://127.0.0.1:9095');
  t.equal(defaultUrl({ PORT: '9100' }), 'http://127.0.0.1:9100');
  t.equal(
    defaultUrl({ PORT: '9100', HOST: '0.0.0.0' }),
    'http://127.0.0.1:9100',
    'a wildcard is reached on loopback',
  );
  t.equal(defaultUrl({ HOST: '192.0.2.7' }), 'http://192.0.2.7:9095');
  t.equal(defaultUrl({ HOST: '::1' }), 'http://[::1]:9095');
  t.equal(defaultUrl({ PORT: 'abc' }), 'http://127.0.0.1:9095');
});
