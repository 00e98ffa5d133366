import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, EnvSchema, loadConfig, secretsOf, VALUE_HINTS } from '../../src/config.js';

t.test('defaults', async (t) => {
  const c = loadConfig({});
  t.equal(c.port, 9095);
  t.equal(c.dockerHost, 'unix:///var/run/docker.sock');
  t.equal(c.scope, 'label');
  t.equal(c.policy.maxAttempts, 3);
  t.equal(c.dataDir, './data');
  t.equal(c.logFile, './logs/auto_repair.log');
  t.equal(c.dryRun, false);
  t.equal(c.webhookToken, undefined);
  t.ok(Object.isFrozen(c));
});

t.test('an invalid value names the variable and what it expects', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ MAX_RESTART_ATTEMPTS: 'abc' }, /^MAX_RESTART_ATTEMPTS: expected an integer from 1 to 100, got "abc"/],
    [{ PORT: '70000' }, /^PORT: /],
    [{ WATCH_SCOPE: 'everything' }, /^WATCH_SCOPE: expected one of "label", "project", "all"/],
    [{ DRY_RUN: 'yes' }, /^DRY_RUN: /],
    [{ DOCKER_HOST: 'ftp://x' }, /^DOCKER_HOST: /],
    [{ WATCH_SCOPE: 'project' }, /^COMPOSE_PROJECT: required/],
    [{ WEBHOOK_TOKEN: 'short' }, /^WEBHOOK_TOKEN is 5 characters; it needs at least 16 /],
    [{ ADMIN_TOKEN: '123456789' }, /^ADMIN_TOKEN is 9 characters; it needs at least 16 /],
    [{ TELEGRAM_CHAT_ID: 'abc' }, /^TELEGRAM_CHAT_ID: /],
  ];
  for (const [env, re] of cases) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message: re }, JSON.stringify(env));
  }
});

t.test('a wrong chat id says what a chat id looks like, not the pattern', async (t) => {
  for (const bad of ['@mychannel', 'abc', '-100 123']) {
    try {
      loadConfig({ TELEGRAM_CHAT_ID: bad });
      t.fail(`should refuse ${bad}`);
    } catch (err) {
      const m = (err as Error).message;
      t.match(m, /^TELEGRAM_CHAT_ID: ".*" is not valid; expected a chat id is a number/, bad);
      t.match(m, /-1001234567890/, 'with an example');
      t.notMatch(m, /\^|\$\||\[0-9\]/, 'no regex');
    }
  }
});

t.test('every patterned setting has a hint in words; no message shows a pattern', async (t) => {
  for (const [key, schema] of Object.entries(EnvSchema.properties as Record<string, { pattern?: string }>)) {
    if (!schema.pattern) continue;
    t.ok(VALUE_HINTS[key], `${key} has a hint`);
    try {
      loadConfig({ [key]: 'not valid at all \u00e9' });
      t.fail(`${key} accepted nonsense`);
    } catch (err) {
      t.notOk((err as Error).message.includes(schema.pattern), `${key}: no pattern in the message`);
    }
  }
});

t.test('a rejected token is not echoed back', async (t) => {
  try {
    loadConfig({ WEBHOOK_TOKEN: 'secretsecret' });
    t.fail('should throw');
  } catch (err) {
    t.ok(err instanceof ConfigError);
    t.notMatch((err as Error).message, /secretsecret/);
  }
});

t.test('tokens from files; both forms at once is an error', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
  const f = join(dir, 'token');
  writeFileSync(f, 'file-token-0123456789abcdef\n');
  t.equal(loadConfig({ WEBHOOK_TOKEN_FILE: f }).webhookToken, 'file-token-0123456789abcdef');
  t.throws(() => loadConfig({ WEBHOOK_TOKEN_FILE: f, WEBHOOK_TOKEN: 'x'.repeat(20) }), /both set/);
  t.throws(() => loadConfig({ ADMIN_TOKEN_FILE: join(dir, 'missing') }), /ADMIN_TOKEN_FILE: cannot read/);
});

t.test('telegram chats and topics', async (t) => {
  const c = loadConfig({ TELEGRAM_CHAT_ID: '-1001234,42:7' });
  t.same(c.telegram.chats, [
    { chatId: '-1001234', topicId: undefined },
    { chatId: '42', topicId: 7 },
  ]);
});

t.test('.env.example documents every variable', async (t) => {
  const { readFileSync } = await import('node:fs');
  const text = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
  for (const key of Object.keys(EnvSchema.properties)) t.match(text, new RegExp(`^#? ?${key}=`, 'm'), key);
});

t.test(
  'Telegram controls: on only with a token, a chat, an allow-list, an update mode and ADMIN_TOKEN',
  async (t) => {
    const base = {
      TELEGRAM_BOT_TOKEN: '123:abc',
      TELEGRAM_CHAT_ID: '-100',
      TELEGRAM_ALLOWED_USERS: '42,43',
      ADMIN_TOKEN: 'admin-token-0123456789',
    };
    const on = loadConfig(base).telegram;
    t.ok(on.controls);
    t.same(on.allowedUsers, [42, 43]);
    t.equal(on.updates, 'poll');
    for (const off of [
      { TELEGRAM_ALLOWED_USERS: '' },
      { ADMIN_TOKEN: '' },
      { TELEGRAM_CHAT_ID: '' },
      { TELEGRAM_BOT_TOKEN: '' },
      { TELEGRAM_UPDATES: 'off' },
    ])
      t.notOk(loadConfig({ ...base, ...off }).telegram.controls, JSON.stringify(off));
    t.throws(() => loadConfig({ ...base, TELEGRAM_ALLOWED_USERS: 'alice' }), /TELEGRAM_ALLOWED_USERS/);
    t.throws(() => loadConfig({ ...base, TELEGRAM_UPDATES: 'webhook' }), /needs TELEGRAM_WEBHOOK_URL/);
    t.throws(
      () => loadConfig({ ...base, TELEGRAM_WEBHOOK_SECRET: 'short' }),
      { message: /TELEGRAM_WEBHOOK_SECRET/ },
      'too short for a secret',
    );
    t.throws(
      () => loadConfig({ ...base, TELEGRAM_WEBHOOK_SECRET: 'has spaces in this secret' }),
      /TELEGRAM_WEBHOOK_SECRET/,
    );
    const hook = loadConfig({
      ...base,
      TELEGRAM_UPDATES: 'webhook',
      TELEGRAM_WEBHOOK_URL: 'https://heal.example.org/telegram/webhook',
      TELEGRAM_WEBHOOK_SECRET: 'webhook-secret-0123456789',
    });
    t.equal(hook.telegram.webhookSecret, 'webhook-secret-0123456789');
    t.ok(
      secretsOf(hook).includes('webhook-secret-0123456789'),
      'the webhook secret is scrubbed like a token',
    );
  },
);
