// Finds the service's own container id when it runs inside Docker, so that it never heals itself.
import { readFileSync } from 'node:fs';

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
