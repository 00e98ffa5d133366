// Is there a newer image for a container? Its image reference is compared, as the engine would pull it,
// with what the container runs: the registry's current digest for the tag against the RepoDigests of
// the container's own image (by its id, not by the tag, which a pull may already have moved). Nothing
// is changed: no pull, no container touched. Every "cannot tell" is `unknown` with the reason.
import type { ContainerDetails, DockerClient } from '../docker/client.js';
import { type DockerAuth, NO_AUTH } from './auth.js';
import { parseReference, referenceText, sameRepository } from './reference.js';
import { type RemoteOptions, remoteDigest } from './remote.js';

export type UpdateStatus = 'up_to_date' | 'available' | 'unknown';

export interface UpdateCheck {
  readonly status: UpdateStatus;
  /** The reference in full (`127.0.0.1:5000/team/app:1`), or the container's text when it is not one. */
  readonly reference: string;
  /** The digest of the container's image in that repository, when the engine knows one. */
  readonly localDigest?: string | undefined;
  readonly remoteDigest?: string | undefined;
  readonly detail: string;
}

export interface CheckOptions {
  readonly auth?: DockerAuth;
  readonly remote?: RemoteOptions;
}

/** The digest in a `repository@sha256:…` line of RepoDigests, when it is for this repository. */
function digestIn(line: string, ref: ReturnType<typeof parseReference>): string | undefined {
  const parsed = parseReference(line);
  if (!parsed.ok || !ref.ok || !sameRepository(parsed.ref, ref.ref)) return undefined;
  return parsed.ref.digest;
}

export async function checkUpdate(
  docker: Pick<DockerClient, 'imageInfo'>,
  container: Pick<ContainerDetails, 'name' | 'image' | 'imageId'>,
  o: CheckOptions = {},
): Promise<UpdateCheck> {
  const parsed = parseReference(container.image);
  if (!parsed.ok) return { status: 'unknown', reference: container.image, detail: parsed.detail };
  const ref = parsed.ref;
  const reference = referenceText(ref);
  if (ref.digest) {
    return {
      status: 'up_to_date',
      reference,
      localDigest: ref.digest,
      detail: `${container.name} runs an image pinned to a digest: it is never updated`,
    };
  }
  let local: Awaited<ReturnType<DockerClient['imageInfo']>>;
  try {
    local = await docker.imageInfo(container.imageId ?? container.image);
  } catch (err) {
    return {
      status: 'unknown',
      reference,
      detail: `the engine could not say which image ${container.name} runs: ${(err as Error).message}`,
    };
  }
  if (!local)
    return {
      status: 'unknown',
      reference,
      detail: `the image of ${container.name} is not in the engine any more`,
    };
  const localDigests = local.repoDigests.map((l) => digestIn(l, parsed)).filter((d): d is string => !!d);
  const localDigest = localDigests[0];
  const remote = await remoteDigest(ref, (o.auth ?? NO_AUTH).byRegistry.get(ref.registry), o.remote);
  if (!remote.ok) return { status: 'unknown', reference, localDigest, detail: remote.detail };
  if (!localDigest) {
    return {
      status: 'unknown',
      reference,
      remoteDigest: remote.digest,
      detail: `the image of ${container.name} was not pulled from ${ref.registry}/${ref.repository} (built here?): nothing to compare`,
    };
  }
  if (localDigests.includes(remote.digest)) {
    return {
      status: 'up_to_date',
      reference,
      localDigest: remote.digest,
      remoteDigest: remote.digest,
      detail: `${container.name} runs the current ${reference}`,
    };
  }
  return {
    status: 'available',
    reference,
    localDigest,
    remoteDigest: remote.digest,
    detail: `${reference} is now ${remote.digest.slice(0, 19)}; ${container.name} runs ${localDigest.slice(0, 19)}`,
  };
}
