// update: the container's image tag pulled again and the container re-created on what it names now,
// through the recreate machinery: the old container waits aside (stopped, so the previous image stays
// in use and no prune takes it) until the engine has verified the new one, and is put back and
// started when it is not healthy; that is the rollback to the previous image. Once the new one is
// verified, the previous image is released when nothing else names or uses it. A reference pinned to
// a digest is never updated. Credentials come from the Docker config file, read only.
//
// Policy: a container takes updates only when opted in (autoheal.update, else AUTOPATCH; see
// core/updates.ts), never while it has an open incident; replicas go one at a time (oneAtATime), and
// a failed update is escalated at once and never retried (oneShot).
import { type UpdateMode, updateRefusal } from '../core/updates.js';
import { asideName } from '../core/names.js';
import { lookupContainer, type RegistryCredentials } from '../docker/client.js';
import { readDockerAuth } from '../registry/auth.js';
import { checkUpdate } from '../registry/check.js';
import { parseReference, referenceText, sameRepository } from '../registry/reference.js';
import {
  type ActionContext,
  type ActionHandler,
  type ActionOutcome,
  type ResumeOutcome,
  wrongKind,
} from './handler.js';
import { recreateAction } from './recreate.js';

export type UpdateResult = 'updated' | 'rolled_back' | 'failed';

export interface UpdateOptions {
  /** AUTOPATCH: the mode of a container without an autoheal.update label. */
  readonly autopatch?: UpdateMode;
  /**
   * Told how each update that ran ended (the autoheal_updates_total metric; a rolled-back image is
   * remembered so that check runs do not apply it again): the container and the image it was moved to.
   */
  readonly onResult?: (
    result: UpdateResult,
    update: { readonly container: string; readonly image?: string },
  ) => void;
}

const short = (id: string | undefined) => (id ?? 'unknown').replace(/^sha256:/, '').slice(0, 12);

/** The digest of an image in the reference's repository, for the audit and the escalation. */
async function digestOf(ctx: ActionContext, imageId: string | undefined, image: string): Promise<string> {
  const wanted = parseReference(image);
  if (!imageId || !wanted.ok) return `image ${short(imageId)}`;
  const info = await ctx.docker.imageInfo(imageId).catch(() => undefined);
  for (const line of info?.repoDigests ?? []) {
    const p = parseReference(line);
    if (p.ok && p.ref.digest && sameRepository(p.ref, wanted.ref)) return p.ref.digest;
  }
  return `image ${short(imageId)}`;
}

/**
 * The previous image, released once the new container is verified: removed when no tag names it any
 * more (the pull moved its tag) and no container uses it; kept, with the reason, otherwise. Never throws.
 */
async function releaseImage(ctx: ActionContext, imageId: string | undefined, newId: string): Promise<string> {
  if (!imageId || imageId === newId) return 'no previous image to release';
  try {
    const info = await ctx.docker.imageInfo(imageId);
    if (!info) return `the previous image ${short(imageId)} is already gone`;
    const tags = info.repoTags ?? [];
    if (tags.length > 0) return `kept the previous image ${short(imageId)}: still tagged ${tags.join(', ')}`;
    const r = await ctx.docker.removeImage(imageId);
    if (r === 'in_use') return `kept the previous image ${short(imageId)}: another container uses it`;
    return r === 'removed'
      ? `released the previous image ${short(imageId)}`
      : `the previous image ${short(imageId)} is already gone`;
  } catch (err) {
    ctx.log.warn({ err, imageId }, 'update: cannot release the previous image');
    return `kept the previous image ${short(imageId)}: ${(err as Error).message}`;
  }
}

/** Whether the container of this name runs `imageId` again after a rollback. */
async function backOn(ctx: ActionContext, name: string, imageId: string | undefined): Promise<boolean> {
  const c = await ctx.docker.inspect(name).catch(() => undefined);
  return c?.running === true && (imageId === undefined || c.imageId === imageId);
}

/**
 * Wraps recreate's settle: verified, the old container goes and the previous image is released; not,
 * the old container is put back, and the update counts as rolled back only when it runs again.
 */
function settleUpdate(
  ctx: ActionContext,
  o: UpdateOptions,
  name: string,
  previousImage: string | undefined,
  newImage: string,
  settle: ((verified: boolean) => Promise<string>) | undefined,
  newDigest?: string,
): (verified: boolean) => Promise<string> {
  const image = newDigest?.startsWith('sha256:') ? newDigest : newImage || undefined;
  return async (verified) => {
    const line = settle ? await settle(verified) : '';
    if (verified) {
      o.onResult?.('updated', { container: name, image });
      return [line, await releaseImage(ctx, previousImage, newImage)].filter(Boolean).join(', ');
    }
    const back = await backOn(ctx, name, previousImage);
    o.onResult?.(back ? 'rolled_back' : 'failed', { container: name, image });
    return back
      ? `${line}; rolled back to ${short(previousImage)}`
      : `${line}; NOT back on ${short(previousImage)}: look at it now`;
  };
}

export function makeUpdateAction(o: UpdateOptions = {}): ActionHandler {
  const fallback = o.autopatch ?? 'off';
  return {
    name: 'update',
    targets: ['container'],
    consent: (c, r, { automatic }) => updateRefusal(c, r, { automatic, fallback }),
    oneAtATime: true,
    oneShot: true,
    batch: true,
    async run(ctx, target): Promise<ActionOutcome> {
      if (target.kind !== 'container') return wrongKind('update', target);
      const c = target.container;
      const parsed = parseReference(c.image);
      if (!parsed.ok) return { ok: false, detail: `${parsed.detail}: nothing changed` };
      const reference = referenceText(parsed.ref);
      if (parsed.ref.digest) {
        return { ok: false, detail: `${c.name} runs ${reference}, pinned to a digest: it is never updated` };
      }
      const auth = await readDockerAuth(ctx.config.dockerConfigDir);
      const found = auth.byRegistry.get(parsed.ref.registry);
      const credentials: RegistryCredentials | undefined = found && {
        username: found.username,
        password: found.password,
        serveraddress: parsed.ref.registry,
      };
      const before = await digestOf(ctx, c.imageId, c.image);
      const pulled = await ctx.docker.pull(c.image, credentials);
      if ('failed' in pulled) {
        o.onResult?.('failed', { container: c.name });
        return { ok: false, detail: `${pulled.detail}: nothing changed` };
      }
      if (pulled.id === c.imageId) {
        return {
          ok: true,
          detail: `${c.name} already runs the current ${reference} (${before}): nothing to do`,
        };
      }
      const after = await digestOf(ctx, pulled.id, c.image);
      ctx.log.info(
        { container: c.name, reference, from: before, to: after },
        `update ${c.name}: pulled ${reference}, re-creating it on the new image`,
      );
      // The definition names the tag, which the pull has moved: the new container runs the new image.
      const out = await recreateAction.run(ctx, target);
      const detail = `pulled ${reference}: ${before} → ${after}; ${out.detail}`;
      if (!out.ok) {
        // Nothing was started on the new image: recreate has put the old container back.
        o.onResult?.('failed', { container: c.name, image: after.startsWith('sha256:') ? after : pulled.id });
        return { ...out, detail };
      }
      return {
        ...out,
        detail,
        settle: settleUpdate(ctx, o, c.name, c.imageId, pulled.id, out.settle, after),
      };
    },
    // What a crash leaves is what recreate leaves: the old container aside, perhaps a replacement.
    // Their images are read first: the replacement runs the new image, the old one the previous.
    async resume(ctx, name): Promise<ResumeOutcome> {
      const previous = await imageOfNamed(ctx, asideName(name));
      const replacement = await imageOfNamed(ctx, name);
      const left = (await recreateAction.resume?.(ctx, name)) ?? { detail: 'nothing was left half done' };
      if (!left.settle) return { ...left, ...(await tookEffect(ctx, name, left.detail)) };
      return { ...left, settle: settleUpdate(ctx, o, name, previous, replacement ?? '', left.settle) };
    },
  };
}

/**
 * With nothing left half done, whether the interrupted update took effect: the container runs what its
 * tag names at the registry now. Otherwise (the crash came before the new container ran) the update did
 * not happen: counted as failed, never started again.
 */
async function tookEffect(ctx: ActionContext, name: string, found: string): Promise<ResumeOutcome> {
  const r = await lookupContainer(ctx.docker, name);
  const c = r.ok ? r.containers[0] : undefined;
  if (!c) return { detail: found };
  const auth = await readDockerAuth(ctx.config.dockerConfigDir);
  const check = await checkUpdate(ctx.docker, c, { auth });
  if (check.status === 'up_to_date') return { detail: `${found}; ${name} runs the current image` };
  return {
    detail: `${found}; the update did not take effect (${check.detail}); it is not started again`,
    undone: true,
  };
}

/** The image id of the container of exactly this name, if there is one. */
async function imageOfNamed(ctx: ActionContext, name: string): Promise<string | undefined> {
  const r = await lookupContainer(ctx.docker, name);
  return r.ok ? r.containers[0]?.imageId : undefined;
}

/** update with AUTOPATCH=off: containers take updates only with autoheal.update=apply (or notify, by hand). */
export const updateAction: ActionHandler = makeUpdateAction();
