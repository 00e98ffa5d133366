// Finds the service's own container, so that it never heals itself: detected from the mount table
// inside Docker, or given as SELF_CONTAINER_ID, and then held as the container's full id (a name given
// there would stop matching once the container is renamed).
import { readFileSync } from 'node:fs';
import { isFullId } from './core/names.js';
import { checkSelector, resolveTarget } from './core/targets.js';
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

/**
 * The full id of the container SELF_CONTAINER_ID names (a name, an id prefix of 12 or more hex
 * characters, or the full id), matched against one listing as every target is (core/targets.ts):
 * never `inspect(text)`, for which the engine reads any hex text as an id prefix. undefined when no
 * container, or more than one, has it. Throws when the engine cannot be asked (the caller asks again).
 */
export async function resolveSelfContainerId(
  docker: Pick<DockerClient, 'listContainers'>,
  idOrName: string,
): Promise<string | undefined> {
  if (isFullId(idOrName)) return idOrName;
  const target = { kind: 'container', name: idOrName } as const;
  if (!checkSelector(target).ok) return undefined;
  const found = resolveTarget(target, await docker.listContainers({ all: true }));
  return found.ok ? found.containers[0]?.id : undefined;
}
