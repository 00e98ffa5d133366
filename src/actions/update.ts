// update: the container's image tag pulled again and the container re-created on what it names now,
// through the recreate machinery: the old container waits aside (stopped, so the previous image stays
// in use and no prune takes it) until the engine has verified the new one, and is put back and
// started when it is not healthy; that is the rollback to the previous image. A reference pinned to a
// digest is never updated. Credentials come from the Docker config file, read-only.
import type { RegistryCredentials } from '../docker/client.js';
import { readDockerAuth } from '../registry/auth.js';
import { parseReference, referenceText, sameRepository } from '../registry/reference.js';
import { type ActionContext, type ActionHandler, type ActionOutcome, wrongKind } from './handler.js';
import { recreateAction } from './recreate.js';

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

export const updateAction: ActionHandler = {
  name: 'update',
  targets: ['container'],
  async run(ctx, target): Promise<ActionOutcome> {
    if (target.kind !== 'container') return wrongKind('update', target);
    const c = target.container;
    const parsed = parseReference(c.image);
    if (!parsed.ok) return { ok: false, detail: `${parsed.detail}: nothing changed` };
    const reference = referenceText(parsed.ref);
    if (parsed.ref.digest) {
      return { ok: false, detail: `${c.name} runs ${reference}, pinned to a digest: it is never updated` };
    }
    const auth = await readDockerAuth();
    const found = auth.byRegistry.get(parsed.ref.registry);
    const credentials: RegistryCredentials | undefined = found && {
      username: found.username,
      password: found.password,
      serveraddress: parsed.ref.registry,
    };
    const before = await digestOf(ctx, c.imageId, c.image);
    const pulled = await ctx.docker.pull(c.image, credentials);
    if ('failed' in pulled) return { ok: false, detail: `${pulled.detail}: nothing changed` };
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
    return { ...out, detail: `pulled ${reference}: ${before} → ${after}; ${out.detail}` };
  },
  // What a crash leaves is what recreate leaves: the old container aside, perhaps a replacement.
  resume: recreateAction.resume,
};
