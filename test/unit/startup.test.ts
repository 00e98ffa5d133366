// The start-up messages as pure functions: the start-up line, a port that cannot be bound, a refused
// engine socket, and SCHEDULES targets that name no container.
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { checkScheduleTargets, parseSchedules } from '../../src/inputs/schedules.js';
import { listenFailure, socketPermissionHint, startupSummary } from '../../src/startup.js';

t.test(
  'the start-up line: telegram on/off agrees with the notifier; audit log and state paths',
  async (t) => {
    const botOnly = loadConfig({ TELEGRAM_BOT_TOKEN: '123:abc', ADMIN_TOKEN: 'admin-token-0123456789' });
    const s = startupSummary(botOnly, { version: '1.2.3', schedules: 0, rules: 0, cwd: '/srv/app' });
    t.equal(s.fields.telegram, false, 'a bot token without a chat is off');
    t.match(s.message, /channels: telegram off \(TELEGRAM_CHAT_ID is empty\)/);
    t.match(s.message, /audit log: \/srv\/app\/logs\/auto_repair\.log; state: \/srv\/app\/data;/);
    t.match(s.message, /inputs: webhook off \(WEBHOOK_TOKEN is not set\), admin on, watcher heals/);
    t.match(s.message, /^autoheal-nexus 1\.2\.3 starting on http:\/\/127\.0\.0\.1:9095;/);
    t.notMatch(s.message, /admin-token-0123456789|123:abc/, 'no token in the line');

    const both = loadConfig({ TELEGRAM_BOT_TOKEN: '123:abc', TELEGRAM_CHAT_ID: '-100,42', LOG_FILE: '' });
    const b = startupSummary(both, { version: '1', schedules: 2, rules: 0, cwd: '/x' });
    t.equal(b.fields.telegram, true);
    t.match(b.message, /telegram on \(2 chat\(s\)\)/);
    t.match(b.message, /audit log: stdout only/);
    t.match(b.message, /schedules 2 entries/);
  },
);

t.test('a port that cannot be bound: one line naming PORT and HOST and what to do', async (t) => {
  const c = { host: '127.0.0.1', port: 9095 };
  const inUse = listenFailure(Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' }), c);
  t.match(inUse, /^PORT 9095 on HOST 127\.0\.0\.1 is already in use .* set PORT to a free port/);
  t.notMatch(inUse, /\n/, 'one line');
  t.match(listenFailure({ code: 'EACCES' }, { host: '0.0.0.0', port: 80 }), /set PORT to 1024 or above/);
  t.match(listenFailure({ code: 'EADDRNOTAVAIL' }, { host: '10.9.9.9', port: 9095 }), /set HOST/);
  t.equal(listenFailure(new Error('other'), c), undefined);
});

t.test('a refused socket says its group and the exact fix', async (t) => {
  const host = 'unix:///var/run/docker.sock';
  const reason = 'connect EACCES /var/run/docker.sock';
  const inContainer = socketPermissionHint(host, reason, {
    gid: 998,
    uid: 1000,
    groups: [1000],
    inContainer: true,
  });
  t.equal(
    inContainer,
    '/var/run/docker.sock belongs to group 998 and this process (uid 1000, groups 1000) is not in it: run the container with --group-add 998 (docker-compose.yml: DOCKER_GID=998 in .env)',
  );
  const onHost = socketPermissionHint(host, reason, {
    gid: 998,
    uid: 1000,
    groups: [1000],
    inContainer: false,
  });
  t.match(onHost, /usermod -aG .* --group-add 998/);
  t.equal(
    socketPermissionHint(host, 'connect ENOENT /var/run/docker.sock', {
      gid: 1,
      uid: 1,
      groups: [],
      inContainer: false,
    }),
    undefined,
  );
  t.equal(
    socketPermissionHint('tcp://127.0.0.1:2375', reason, { gid: 1, uid: 1, groups: [], inContainer: false }),
    undefined,
  );
});

t.test('SCHEDULES: a target that names no container is refused, in words', async (t) => {
  const entries = parseSchedules(
    '0 3 * * *=restart:web; 0 4 * * *=restart:ghost; 0 5 * * *=cleanup; 0 6 * * *=restart_stack:project:nope',
  );
  const containers = [
    { id: 'a'.repeat(64), name: 'web', labels: {}, health: 'healthy' as const, state: 'running' },
  ];
  t.same(checkScheduleTargets(entries, containers as never), [
    'SCHEDULES: entry 2 "0 4 * * *=restart:ghost": no container named "ghost" on this engine (`docker ps -a` lists the names); fix the target or remove the entry',
    'SCHEDULES: entry 4 "0 6 * * *=restart_stack:project:nope": no container of project:nope on this engine (`docker ps -a` lists the names); fix the target or remove the entry',
  ]);
});
