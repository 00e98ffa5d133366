// An image reference as a registry sees it: which host to ask, for which repository, under which tag.
// Docker's short forms are expanded the way the engine expands them (`nginx` is
// docker.io/library/nginx:latest), so a container's Config.Image and the engine's RepoDigests compare
// on the same terms. A reference pinned to a digest names one image for ever: it is never updated.

/** The registry Docker Hub references name, and the host that serves its API. */
export const DOCKER_HUB = 'docker.io';
export const DOCKER_HUB_API = 'registry-1.docker.io';

export interface ImageReference {
  /** The registry as references name it (`docker.io`, `127.0.0.1:5000`, `ghcr.io`). */
  readonly registry: string;
  /** The repository path inside it (`library/nginx`, `team/app`). */
  readonly repository: string;
  /** The tag (`latest` when none is given); undefined for a reference pinned to a digest only. */
  readonly tag?: string | undefined;
  /** The digest a reference is pinned to (`sha256:…`). */
  readonly digest?: string | undefined;
}

export type ParsedReference =
  | { readonly ok: true; readonly ref: ImageReference }
  | { readonly ok: false; readonly detail: string };

// Docker's reference grammar (distribution/reference): lowercase path components joined by separators,
// a tag of up to 128 word characters, a digest of an algorithm and its hex.
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-f0-9]{32,}$/;
const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$/;

const refused = (image: string, why: string): ParsedReference => ({
  ok: false,
  detail: `${JSON.stringify(image.slice(0, 200))} is not an image reference: ${why}`,
});

/** A first path part names a registry when it has a dot or a port, or is localhost (Docker's rule). */
const namesRegistry = (part: string) => part.includes('.') || part.includes(':') || part === 'localhost';

export function parseReference(image: string): ParsedReference {
  if (image.length === 0 || image.length > 512) return refused(image, 'empty or too long');
  if (/\s/.test(image)) return refused(image, 'it contains whitespace');
  let rest = image;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) return refused(image, 'the digest is not algorithm:hex');
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) return refused(image, 'the tag has characters a tag cannot have');
  }
  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  if (parts.length > 1 && namesRegistry(parts[0] ?? '')) {
    registry = parts.shift() ?? DOCKER_HUB;
    if (!HOST.test(registry)) return refused(image, 'the registry is not host[:port]');
  }
  if (registry === 'index.docker.io') registry = DOCKER_HUB;
  if (!parts.every((p) => COMPONENT.test(p))) {
    return refused(image, 'the repository must be lowercase path parts of letters, digits and . _ -');
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  return {
    ok: true,
    ref: { registry, repository: parts.join('/'), tag: tag ?? (digest ? undefined : 'latest'), digest },
  };
}

/** `registry/repository:tag` in full, as logs and messages name it. */
export const referenceText = (r: ImageReference): string =>
  `${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;

/** The same repository in the same registry (the short and the full forms of Docker Hub's agree). */
export const sameRepository = (a: ImageReference, b: ImageReference): boolean =>
  a.registry === b.registry && a.repository === b.repository;

/** The host whose /v2/ API serves this registry. */
export const apiHost = (registry: string): string => (registry === DOCKER_HUB ? DOCKER_HUB_API : registry);

/**
 * Plain HTTP for a registry on the loopback interface, as the engine itself allows without TLS
 * (its default insecure range is 127.0.0.0/8); HTTPS for every other.
 */
export function registryScheme(registry: string): 'http' | 'https' {
  const host = registry.replace(/:[0-9]+$/, '');
  return host === 'localhost' || /^127\.[0-9.]+$/.test(host) || host === '[::1]' ? 'http' : 'https';
}
