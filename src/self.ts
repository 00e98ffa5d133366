// Finds the service's own container, so that it never heals itself: detected from the mount table
// inside Docker, or given as SELF_CONTAINER_ID, and then held as the container's full id (a name given
// there would stop matching once the container is renamed).
import { readFileSync } from 'node:fs';
import type { DockerClient } from './docker/client.js';

export function detectSelfContainerId(mountinfoPath = '/proc/self/mountinfo'): string | undefined {
  try {
    const text = readFileSync(mountinfoPath, 'utf8');
    // Docker bind-mounts /etc/hostname from /var/lib/docker/containers/<id>/hostname.
    const m = /\/containers\/([0-9a-f]{64})\/(?:hostname|resolv\.conf|hosts)/.exec(text);
    return m?.[1];
  } catch {
    return undefined;
  }
}

export const isFullContainerId = (s: string): boolean => /^[0-9a-f]{64}$/.test(s);

/**
 * The full id of the container SELF_CONTAINER_ID names (a name, a short id or the full id); undefined
 * when no container has it. Throws when the engine cannot be asked (the caller asks again later).
 */
export async function resolveSelfContainerId(
  docker: Pick<DockerClient, 'inspect'>,
  idOrName: string,
): Promise<string | undefined> {
  if (isFullContainerId(idOrName)) return idOrName;
  const c = await docker.inspect(idOrName.replace(/^\//, ''));
  return c?.id;
}
