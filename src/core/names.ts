// Docker's own grammar for what may name a container, and Compose's for services and projects. Every
// target text from an alert, a request or a schedule is parsed here before it reaches the engine: a
// name goes into the engine's URL path, and the engine answers odd paths (`../x`) with a redirect.
// Pure: no I/O here.

/**
 * moby's restrictedNamePattern (daemon/names): what `docker run --name` accepts, an optional `/` first.
 * At least two characters: the engine refuses `--name a`. Nothing here can spell `..`, a `/` inside,
 * a space, a control character or a query: a name that passes is one URL path segment as it stands.
 */
const CONTAINER_NAME = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const FULL_ID = /^[0-9a-f]{64}$/;
const HEX = /^[0-9a-f]+$/;

/** The short id the docker CLI prints: shorter hex strings are names only (`df` is never an id). */
export const MIN_ID_PREFIX = 12;
/**
 * Docker itself sets no limit on a name; this one keeps a 3 KB alert label out of URLs and logs. It is
 * the admin API's limit too.
 */
export const MAX_NAME_LENGTH = 256;

/** compose-spec's key pattern for services (docker-compose 1.29's schema has the same). */
const COMPOSE_SERVICE = /^[a-zA-Z0-9._-]+$/;
/**
 * compose-spec asks for `^[a-z0-9][a-z0-9_-]*$`; docker-compose 1.29 derives a project name from the
 * directory by keeping only `[-_a-z0-9]`, so its projects may start with `-` or `_`: both are accepted.
 */
const COMPOSE_PROJECT = /^[a-z0-9_-]+$/;
/** swarmkit's rule for service names: a DNS label of up to 63 characters (letters, digits, "-", "_"). */
const SWARM_SERVICE = /^[a-zA-Z0-9](?:[-_]*[a-zA-Z0-9]+)*$/;
const MAX_SWARM_SERVICE = 63;

export type ContainerRef =
  | { readonly ok: true; readonly kind: 'name' | 'id' | 'id_prefix'; readonly value: string }
  | { readonly ok: false; readonly reason: 'invalid_name'; readonly detail: string };

/** Up to 64 characters of what the caller sent, escaped, for a message: never the whole of a long text. */
export function quoteInput(text: string): string {
  const cut = text.length > 64 ? `${text.slice(0, 64)}…` : text;
  return JSON.stringify(cut);
}

const invalid = (detail: string): ContainerRef => ({ ok: false, reason: 'invalid_name', detail });

/**
 * A container reference as Docker would read it: a full id (64 lowercase hex), an id prefix of at
 * least 12 hex characters (which may equally be a name: the match decides), or a name.
 */
export function parseContainerRef(text: string): ContainerRef {
  if (text.length === 0) return invalid('a container name or id is empty');
  if (text.length > MAX_NAME_LENGTH) {
    return invalid(`${quoteInput(text)} is longer than ${MAX_NAME_LENGTH} characters`);
  }
  if (!CONTAINER_NAME.test(text)) {
    return invalid(
      `${quoteInput(text)} is not a container name or id: Docker names are two or more letters, digits, "_", "." or "-", starting with a letter or digit; ids are 64 lowercase hex characters, or their first ${MIN_ID_PREFIX} or more`,
    );
  }
  const value = text.replace(/^\//, '');
  if (FULL_ID.test(value)) return { ok: true, kind: 'id', value };
  if (value.length >= MIN_ID_PREFIX && HEX.test(value)) return { ok: true, kind: 'id_prefix', value };
  return { ok: true, kind: 'name', value };
}

export const isFullId = (text: string): boolean => FULL_ID.test(text);

export type NameCheck = { readonly ok: true } | { readonly ok: false; readonly detail: string };

export function checkComposeService(text: string): NameCheck {
  if (text.length > 0 && text.length <= MAX_NAME_LENGTH && COMPOSE_SERVICE.test(text)) return { ok: true };
  return {
    ok: false,
    detail: `${quoteInput(text)} is not a Compose service name: use letters, digits, "_", "." or "-"`,
  };
}

export function checkComposeProject(text: string): NameCheck {
  if (text.length > 0 && text.length <= MAX_NAME_LENGTH && COMPOSE_PROJECT.test(text)) return { ok: true };
  return {
    ok: false,
    detail: `${quoteInput(text)} is not a Compose project name: use lowercase letters, digits, "_" or "-"`,
  };
}

export function checkSwarmService(text: string): NameCheck {
  if (text.length > 0 && text.length <= MAX_SWARM_SERVICE && SWARM_SERVICE.test(text)) return { ok: true };
  return {
    ok: false,
    detail: `${quoteInput(text)} is not a Swarm service name: up to ${MAX_SWARM_SERVICE} letters, digits, "-" or "_", starting and ending with a letter or digit`,
  };
}

/** What a recreate renames the old container to while the new one is verified (recreate.ts, resume). */
const ASIDE_SUFFIX = '-autoheal-replaced';
export const asideName = (name: string): string => `${name}${ASIDE_SUFFIX}`;
/** A container a recreate put aside: no action and no watcher signal touches it; the recreate settles it. */
export const isAside = (name: string): boolean => name.endsWith(ASIDE_SUFFIX);
/** The name a container put aside had before (its aside name without the suffix). */
export const nameBeforeAside = (name: string): string =>
  isAside(name) ? name.slice(0, -ASIDE_SUFFIX.length) : name;
