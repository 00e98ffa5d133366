// recreate: a container re-created from its own inspected definition under the same name (so Compose
// still sees it), for a container a restart does not fix. The old one is stopped and renamed aside,
// not removed, until the engine has verified the new one; any failure puts it back under its name and
// starts it. The aside name follows from the name alone, so resume() finds what a crash left.
import { parseContainerRef } from '../core/names.js';
import { type ContainerDetails, lookupContainer } from '../docker/client.js';
import { type ActionContext, type ActionHandler, type ActionOutcome, wrongKind } from './handler.js';

/** Where the old container waits while its replacement is verified. */
import { asideName } from '../core/names.js';

export { asideName };

/** The one override recreate takes: another container's namespace (its dependents follow a new one). */
const sharedNamespace = (mode: string) =>
  mode.startsWith('container:') && parseContainerRef(mode.slice('container:'.length)).ok;

const short = (id: string) => id.slice(0, 12);
const message = (err: unknown) => (err as Error)?.message ?? String(err);

/** The container of exactly this name, or undefined; throws only when the engine fails. */
async function named(ctx: ActionContext, name: string): Promise<ContainerDetails | undefined> {
  const r = await lookupContainer(ctx.docker, name);
  return r.ok ? r.containers[0] : undefined;
}

/** Stops the container, killing it when the stop itself hangs (as stop_start does). */
async function stopOrKill(ctx: ActionContext, c: ContainerDetails, timeoutSec: number): Promise<string> {
  try {
    return await ctx.docker.stop(c.id, timeoutSec);
  } catch (err) {
    ctx.log.warn(
      { container: c.name, oldId: c.id, err },
      'recreate: stop did not finish; killing the container',
    );
    const killed = await ctx.docker.kill(c.id);
    return killed === 'gone' ? 'gone' : 'killed';
  }
}

/** One step of an undo: what it did, or why it failed (an undo goes on after a failed step). */
async function step(ctx: ActionContext, what: string, fn: () => Promise<string>): Promise<string> {
  try {
    return await fn();
  } catch (err) {
    ctx.log.error({ err }, `recreate: could not ${what}`);
    return `could not ${what}: ${message(err)}`;
  }
}

/**
 * Puts the old container back: the replacement (if any) removed, the old one renamed back to `name`
 * and started. Never throws; says what it did, step by step.
 */
async function putBack(ctx: ActionContext, oldId: string, name: string, newId?: string): Promise<string> {
  const { docker, log } = ctx;
  log.warn({ container: name, oldId, newId }, 'recreate: putting the old container back');
  const done: string[] = [];
  if (newId) {
    done.push(
      await step(ctx, `remove the new container ${short(newId)}`, async () => {
        await docker.remove(newId, { force: true });
        return `removed the new container ${short(newId)}`;
      }),
    );
  }
  done.push(
    await step(ctx, `rename ${short(oldId)} back to ${name}`, async () => {
      const r = await docker.rename(oldId, name);
      if (r === 'renamed') return `renamed the old container ${short(oldId)} back to ${name}`;
      return `could not rename ${short(oldId)} back to ${name}: ${r.replace(/_/g, ' ')}`;
    }),
  );
  done.push(
    await step(ctx, `start ${short(oldId)}`, async () => {
      const r = await docker.start(oldId);
      return r === 'gone' ? `the old container ${short(oldId)} is gone` : `${r.replace('_', ' ')} it`;
    }),
  );
  return `put back: ${done.join(', ')}`;
}

/** Removes the old container once its replacement is verified. Never throws. */
function removeOld(ctx: ActionContext, oldId: string, name: string): Promise<string> {
  return step(
    ctx,
    `remove the old container ${short(oldId)} (${asideName(name)}; remove it by hand)`,
    async () => {
      await ctx.docker.remove(oldId, { force: true });
      ctx.log.info({ container: name, oldId }, 'recreate: removed the old container');
      return `removed the old container ${short(oldId)}`;
    },
  );
}

export const recreateAction: ActionHandler = {
  name: 'recreate',
  targets: ['container'],
  async run(ctx, target): Promise<ActionOutcome> {
    if (target.kind !== 'container') return wrongKind('recreate', target);
    const { container: old, stopTimeoutSec } = target;
    const { docker, log } = ctx;
    const name = old.name;
    const aside = asideName(name);
    const startedAt = ctx.now();
    if (await named(ctx, aside)) {
      return {
        ok: false,
        detail: `a container named ${aside} already exists (left by an earlier recreate?): nothing changed; remove or rename it first`,
      };
    }
    const found = await docker.definition(old.id);
    if (!found) return { ok: false, detail: 'container no longer exists' };
    const networkMode = ctx.params.networkMode;
    if (networkMode !== undefined && !sharedNamespace(networkMode)) {
      return {
        ok: false,
        detail: `networkMode ${JSON.stringify(networkMode)} is not container:<id or name>: nothing changed`,
      };
    }
    const definition = networkMode ? { ...found, networkMode } : found;

    log.info({ container: name, oldId: old.id }, `recreate ${name}: stopping ${short(old.id)}`);
    const stopped = await stopOrKill(ctx, old, stopTimeoutSec);
    if (stopped === 'gone') return { ok: false, detail: 'container no longer exists' };
    let renamed: string;
    try {
      renamed = await docker.rename(old.id, aside);
    } catch (err) {
      return {
        ok: false,
        detail: `could not rename it aside: ${message(err)}; ${await putBack(ctx, old.id, name)}`,
      };
    }
    if (renamed === 'gone') return { ok: false, detail: 'container no longer exists' };
    if (renamed === 'name_in_use') {
      const started = await step(ctx, `start ${short(old.id)}`, async () => docker.start(old.id));
      return { ok: false, detail: `${aside} was taken meanwhile: nothing re-created; ${started}` };
    }
    log.info(
      { container: name, oldId: old.id },
      `recreate ${name}: ${short(old.id)} renamed aside to ${aside}`,
    );

    let newId: string | undefined;
    try {
      const created = await docker.create(name, definition);
      if ('refused' in created) {
        return {
          ok: false,
          detail: `could not create it: ${created.detail}; ${await putBack(ctx, old.id, name)}`,
        };
      }
      newId = created.id;
      log.info({ container: name, oldId: old.id, newId }, `recreate ${name}: created ${short(newId)}`);
      const started = await docker.start(newId);
      if (started === 'gone') {
        return {
          ok: false,
          detail: `the new container vanished before its start; ${await putBack(ctx, old.id, name)}`,
        };
      }
    } catch (err) {
      const what = newId ? `could not start the new container ${short(newId)}` : 'could not create it';
      return { ok: false, detail: `${what}: ${message(err)}; ${await putBack(ctx, old.id, name, newId)}` };
    }
    log.info(
      { container: name, oldId: old.id, newId },
      `recreate ${name}: started ${short(newId)}, to be verified`,
    );
    const id = newId;
    return {
      ok: true,
      detail: `${stopped.replace('_', ' ')} ${short(old.id)}, renamed it aside, created and started ${short(id)}`,
      startedAfter: startedAt,
      verifyId: id,
      settle: (verified) => (verified ? removeOld(ctx, old.id, name) : putBack(ctx, old.id, name, id)),
    };
  },

  async resume(ctx, name) {
    const aside = await named(ctx, asideName(name));
    const current = await named(ctx, name);
    if (aside && current) {
      // The crash fell between the replacement's create and its start: finish the start (one that
      // fails leaves it not running, which its verification fails and settle rolls back).
      if (current.state === 'created') {
        await step(ctx, `start the replacement ${short(current.id)}`, () => ctx.docker.start(current.id));
      }
      ctx.log.warn(
        { container: name, oldId: aside.id, newId: current.id },
        'recreate: resuming; the replacement is verified, the old container waits aside',
      );
      return {
        detail: `found the replacement ${short(current.id)} and the old container ${short(aside.id)} aside`,
        verifyId: current.id,
        settle: (verified) =>
          verified ? removeOld(ctx, aside.id, name) : putBack(ctx, aside.id, name, current.id),
      };
    }
    if (aside) {
      // Renamed aside with no replacement yet (or the replacement already removed by a rollback).
      const r = await ctx.docker.rename(aside.id, name);
      if (r !== 'renamed') throw new Error(`cannot rename ${asideName(name)} back to ${name}: ${r}`);
      await ctx.docker.start(aside.id);
      ctx.log.warn({ container: name, oldId: aside.id }, 'recreate: resuming; the old container is back');
      return {
        detail: `found the old container ${short(aside.id)} aside without a replacement: renamed back and started`,
      };
    }
    if (current && (current.state === 'exited' || current.state === 'created')) {
      // Stopped by the recreate before it was renamed aside: the stop is undone.
      const started = await step(ctx, `start ${short(current.id)}`, () => ctx.docker.start(current.id));
      return { detail: `found it stopped by the interrupted recreate: ${started.replace('_', ' ')}` };
    }
    return { detail: 'nothing was left half done' };
  },
};
