// cleanup: frees disk without touching anything the operator did not opt in or protected.
// Stopped containers are removed only when in scope; images, networks and build cache are pruned by
// the engine's own prune calls; volumes only when enabled; oversized json-file logs of watched
// containers are truncated in place (what `docker logs` rotation would do, without a shell).
import { stat, truncate } from 'node:fs/promises';
import { CONTAINER_LABELS } from '../core/labels.js';
import { isAside } from '../core/names.js';
import { checkScope } from '../core/scope.js';
import { parseDuration } from '../core/duration.js';
import type { PruneKind } from '../docker/client.js';
import { type ActionHandler, type CleanupReport, wrongKind } from './handler.js';

const PROTECTED = `${CONTAINER_LABELS.protect}=true`;
const STOPPED = new Set(['exited', 'created', 'dead']);

export const cleanupAction: ActionHandler = {
  name: 'cleanup',
  targets: ['host'],
  async run(ctx, target) {
    if (target.kind !== 'host') return wrongKind('cleanup', target);
    const { scope } = target;
    const { cleanup } = ctx.config;
    const until = ctx.params.until ?? cleanup.pruneUntil;
    const minAgeMs = parseDuration(until) ?? 0;
    const removed: Record<string, number> = {};
    const errors: string[] = [];
    const truncatedLogs: string[] = [];
    let reclaimed = 0;

    const containers = await ctx.docker.listContainers({ all: true });
    const now = ctx.now();
    for (const c of containers) {
      if (!STOPPED.has(c.state) || c.labels[CONTAINER_LABELS.protect] === 'true') continue;
      // The old container of a recreate or an update, kept (with its image) until the new one is verified.
      if (isAside(c.name)) continue;
      if (!checkScope(c, scope).ok || now - c.created < minAgeMs) continue;
      // Stopped for a moment by a restart or a stop-start under way: not a leftover.
      if (target.inUse?.(c.name)) continue;
      try {
        const r = await ctx.docker.remove(c.id);
        if (r.removed) {
          removed.containers = (removed.containers ?? 0) + 1;
          reclaimed += r.reclaimedBytes;
        }
      } catch (err) {
        // Started again since the listing (someone restarted it): it is no leftover, and the engine
        // refused to remove it, as it should. Not an error of the cleanup.
        if (/running container|is restarting|stop the container before/i.test((err as Error).message)) {
          ctx.log.info(
            { event: 'cleanup_skipped', container: c.name, reason: 'started again' },
            `cleanup: ${c.name} is running again since it was listed; kept`,
          );
          continue;
        }
        errors.push(`remove ${c.name}: ${(err as Error).message}`);
      }
    }

    const kinds: PruneKind[] = ['images', 'networks', 'build'];
    if (cleanup.pruneVolumes) kinds.push('volumes');
    for (const kind of kinds) {
      try {
        const r = await ctx.docker.prune(kind, {
          until: kind === 'volumes' ? undefined : until,
          labelNot: kind === 'build' ? undefined : [PROTECTED],
          danglingOnly: true,
        });
        removed[kind] = r.deleted.length;
        reclaimed += r.reclaimedBytes;
      } catch (err) {
        errors.push(`prune ${kind}: ${(err as Error).message}`);
      }
    }

    if (cleanup.logMaxBytes > 0) {
      for (const c of containers) {
        if (c.state !== 'running' || !checkScope(c, scope).ok) continue;
        const details = await ctx.docker.inspect(c.id).catch(() => undefined);
        if (!details?.logPath) continue;
        try {
          const { size } = await stat(details.logPath);
          if (size <= cleanup.logMaxBytes) continue;
          await truncate(details.logPath, 0);
          truncatedLogs.push(c.name);
          reclaimed += size;
        } catch (err) {
          // Inside a container the log directory must be mounted for this; say so once per container.
          errors.push(
            `truncate log of ${c.name}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
          );
        }
      }
    }
    const report: CleanupReport = {
      ok: errors.length === 0,
      reclaimedBytes: reclaimed,
      removed,
      truncatedLogs,
      errors,
    };
    return { ok: report.ok, detail: `reclaimed ${reclaimed} bytes`, report };
  },
};
