// Registry credentials from the Docker config file (`$DOCKER_CONFIG/config.json`, else
// `~/.docker/config.json`), read only: the service never writes it and never logs what it holds.
// Only inline `auths[host].auth` entries are used; credential helpers (credsStore, credHelpers) would
// mean running programs on the host, so they are reported and not run.
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { DOCKER_HUB } from './reference.js';

/** A username and password for one registry. Its JSON and inspect forms hide the password. */
export class Credentials {
  constructor(
    readonly registry: string,
    readonly username: string,
    readonly password: string,
  ) {}
  toJSON() {
    return { registry: this.registry, username: this.username, password: '[redacted]' };
  }
  [inspect.custom]() {
    return `Credentials(${this.registry}, ${this.username}, [redacted])`;
  }
  /** The HTTP Basic header value. */
  basic(): string {
    return `Basic ${Buffer.from(`${this.username}:${this.password}`).toString('base64')}`;
  }
}

export interface DockerAuth {
  /** Credentials by registry (`docker.io`, `127.0.0.1:5000`, `ghcr.io`). */
  readonly byRegistry: ReadonlyMap<string, Credentials>;
  /** Why some entries were not used (never their content). */
  readonly notes: ReadonlyArray<string>;
}

export const NO_AUTH: DockerAuth = { byRegistry: new Map(), notes: [] };

/** The registry a config.json key names: `https://index.docker.io/v1/` is Docker Hub; a URL's host. */
export function registryOfKey(key: string): string {
  let host = key.trim();
  const scheme = /^[a-z]+:\/\//i.exec(host);
  if (scheme) host = host.slice(scheme[0].length);
  host = host.split('/')[0] ?? '';
  if (host === 'index.docker.io' || host === 'registry-1.docker.io' || host === 'docker.io')
    return DOCKER_HUB;
  return host.toLowerCase();
}

/** The credentials of a config.json's text; pure. A file that is not valid JSON gives none, with a note. */
export function parseDockerConfig(text: string): DockerAuth {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return {
      byRegistry: new Map(),
      notes: ['the Docker config file is not valid JSON: no credentials used'],
    };
  }
  const config = (raw && typeof raw === 'object' ? raw : {}) as {
    auths?: unknown;
    credsStore?: unknown;
    credHelpers?: unknown;
  };
  const byRegistry = new Map<string, Credentials>();
  const notes: string[] = [];
  if (config.credsStore || (config.credHelpers && typeof config.credHelpers === 'object')) {
    notes.push('credential helpers (credsStore, credHelpers) are not run: only inline auths are used');
  }
  const auths = config.auths && typeof config.auths === 'object' ? config.auths : {};
  for (const [key, entry] of Object.entries(auths as Record<string, unknown>)) {
    const registry = registryOfKey(key);
    const encoded = (entry as { auth?: unknown } | null)?.auth;
    if (typeof encoded !== 'string' || encoded === '') continue;
    const decoded = Buffer.from(encoded, 'base64').toString('utf8');
    const sep = decoded.indexOf(':');
    if (sep <= 0) {
      notes.push(`the auth entry for ${registry} is not base64 of user:password: not used`);
      continue;
    }
    byRegistry.set(registry, new Credentials(registry, decoded.slice(0, sep), decoded.slice(sep + 1)));
  }
  return { byRegistry, notes };
}

/** The directory of the Docker config file: DOCKER_CONFIG, else ~/.docker. */
export const dockerConfigDir = (env: NodeJS.ProcessEnv = process.env): string =>
  env.DOCKER_CONFIG || join(homedir(), '.docker');

/** Reads `config.json` in that directory; a missing file means no credentials, not an error. */
export async function readDockerAuth(dir: string = dockerConfigDir()): Promise<DockerAuth> {
  let text: string;
  try {
    text = await readFile(join(dir, 'config.json'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return NO_AUTH;
    return {
      byRegistry: new Map(),
      notes: [
        `the Docker config file could not be read (${(err as NodeJS.ErrnoException).code}): no credentials used`,
      ],
    };
  }
  return parseDockerConfig(text);
}
