// The Telegram updates input without a network: updates are journalled with the offset before they are
// handled, handled once each in order, replayed after a reopen when a crash left them unhandled, and an
// update below the offset is a repeat. A webhook left set is removed when polling is asked for.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Update } from '@grammyjs/types';
import pino from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import { systemClock } from '../../src/core/clock.js';
import { type BotApi, TelegramUpdates } from '../../src/inputs/telegram-updates.js';
import { createMetrics } from '../../src/metrics.js';
import type { BotCall } from '../../src/notifiers/telegram.js';

const u = (id: number): Update => ({ update_id: id }) as Update;

/** A Bot API that answers getUpdates from a script and records every call. */
function scriptedApi(answers: Array<BotCall<unknown>>) {
  const calls: Array<{ method: string; payload: Record<string, unknown> }> = [];
  const api: BotApi = {
    async call<T>(method: string, payload: Record<string, unknown>, o?: { signal?: AbortSignal }) {
      calls.push({ method, payload });
      if (method === 'getUpdates') {
        const next = answers.shift();
        if (next) return next as BotCall<T>;
        // Nothing more: a long poll that ends only when stopped.
        await new Promise<void>((resolve) => o?.signal?.addEventListener('abort', () => resolve()));
        return { ok: false, reason: 'aborted' };
      }
      return { ok: true, result: true as T };
    },
  };
  return { api, calls };
}

function make(dir: string, api: BotApi, handle: (u: Update) => Promise<void>) {
  return new TelegramUpdates({
    mode: 'poll',
    api,
    dataDir: dir,
    log: pino({ level: 'silent' }),
    metrics: createMetrics(new Registry()),
    clock: systemClock,
    handle,
    retryBaseMs: 1,
  });
}

const until = async (fn: () => boolean) => {
  for (let i = 0; i < 400 && !fn(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!fn()) throw new Error('condition not reached');
};

t.test(
  'polled updates are journalled, handled in order once each, and the offset confirms them',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'tg-updates-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const { api, calls } = scriptedApi([
      { ok: true, result: [u(7), u(5), u(6)] },
      { ok: false, status: 502, reason: 'Bad Gateway' },
      { ok: true, result: [u(6), u(8)] },
    ]);
    const handled: number[] = [];
    const inputs = make(dir, api, async (x) => {
      handled.push(x.update_id);
    });
    inputs.start();
    await until(() => handled.length === 4);
    t.same(handled, [5, 6, 7, 8], 'in order; 6 handed out again is a repeat');
    t.equal(inputs.nextOffset, 9);
    const offsets = calls.filter((c) => c.method === 'getUpdates').map((c) => c.payload.offset);
    t.same(offsets.slice(0, 4), [0, 8, 8, 9], 'each poll confirms what was received');
    t.same(calls[0]?.payload.allowed_updates, ['message', 'callback_query']);
    await inputs.stop();
    t.equal(inputs.backlog, 0);
  },
);

t.test('a crash before an update was handled: it is handled after the reopen, once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-updates-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Life 1: the handler never finishes (the process dies in it).
  const life1 = make(dir, scriptedApi([]).api, () => new Promise(() => undefined));
  t.ok(life1.receive([u(41), u(42)]), 'journalled');
  life1.start();
  t.equal(life1.backlog, 2);
  // Life 2 opens the same journal (what a restart after kill -9 finds).
  const handled: number[] = [];
  const { api, calls } = scriptedApi([{ ok: true, result: [u(42), u(43)] }]);
  const life2 = make(dir, api, async (x) => {
    handled.push(x.update_id);
  });
  t.equal(life2.backlog, 2, 'both found in the journal');
  t.equal(life2.nextOffset, 43, 'the offset survived');
  life2.start();
  await until(() => handled.length === 3);
  t.same(handled, [41, 42, 43], 'the journalled ones first, the repeat of 42 dropped');
  t.equal(calls.find((c) => c.method === 'getUpdates')?.payload.offset, 43);
  await life2.stop();
});

t.test('a webhook left set (409) is removed once and polling goes on', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-updates-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { api, calls } = scriptedApi([
    { ok: false, status: 409, reason: "Conflict: can't use getUpdates method while webhook is active" },
    { ok: true, result: [u(1)] },
  ]);
  const handled: number[] = [];
  const inputs = make(dir, api, async (x) => {
    handled.push(x.update_id);
  });
  inputs.start();
  await until(() => handled.length === 1);
  t.same(
    calls.slice(0, 3).map((c) => c.method),
    ['getUpdates', 'deleteWebhook', 'getUpdates'],
  );
  t.equal(calls[1]?.payload.drop_pending_updates, false, 'pending updates are kept');
  await inputs.stop();
});
