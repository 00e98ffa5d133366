// The host path: an action on the host as a whole (cleanup: prune what is unused, truncate oversized
// logs), not on one container. Same policy as the container path (circuit breaker, dry run, one at a
// time), and the same report; no verification, since there is no container to verify.
import { randomUUID } from 'node:crypto';
import { type ActionHandler, accepts, reportOf } from '../actions/handler.js';
import { decideHost } from '../core/policy.js';
import type { ActionName, RemediationResult, Signal } from '../core/types.js';
import type { EngineIo } from './deps.js';

/** The busy key of the host path: one host action at a time. */
const HOST_KEY = 'host:cleanup';

/** Decides and runs a host action; returns a one-line account of what was done. */
export async function runHostAction(
  io: EngineIo,
  signal: Signal,
  action: ActionName,
  /** The registered handler; missing or not accepting a host target, the action fails as one with none. */
  found: ActionHandler | undefined,
): Promise<{ summary: string; reclaimedBytes?: number }> {
  const handler = found && accepts(found, 'host') ? found : undefined;
  const name = handler?.name ?? action;
  const { deps, report, busy, limit } = io;
  const ctx = io.ctx();
  const now = deps.clock.now();
  const decision = decideHost(signal, deps.store.circuit(), busy.has(HOST_KEY), now, ctx);
  report.audit(signal, decision, 'host');
  if (decision.verdict === 'skip') {
    report.finishManual(signal, 'skipped', decision);
    return {
      summary: `${name} not run (${decision.reason}${decision.detail ? `: ${decision.detail}` : ''})`,
    };
  }
  if (decision.dryRun) {
    deps.metrics.remediations.inc({ action: name, result: 'dry_run' });
    report.finishManual(signal, 'dry_run', decision);
    return { summary: `dry run: ${name} would run` };
  }
  const remediationId = signal.remediationId ?? randomUUID();
  busy.add(HOST_KEY);
  deps.store.upsertRemediation(deps.clock.now(), signal, remediationId, {
    state: 'running',
    container: undefined,
    action: name,
  });
  if (signal.source !== 'manual') io.countForCircuit(now);
  try {
    if (!handler) throw new Error(`no ${name} handler`);
    const cleaned = reportOf(
      await limit(() =>
        handler.run(io.handlerContext(signal), {
          kind: 'host',
          scope: ctx,
          inUse: (c) => busy.has(c) || deps.store.record(c)?.inFlight !== undefined,
        }),
      ),
    );
    const result: RemediationResult = cleaned.ok ? 'succeeded' : 'failed';
    const durationMs = deps.clock.now() - now;
    deps.metrics.remediations.inc({ action: name, result });
    deps.metrics.remediationDuration.observe({ action: name }, durationMs / 1000);
    deps.metrics.reclaimedBytes.inc(cleaned.reclaimedBytes);
    const detail = `reclaimed ${cleaned.reclaimedBytes} bytes; removed ${JSON.stringify(cleaned.removed)}${
      cleaned.truncatedLogs.length ? `; truncated logs of ${cleaned.truncatedLogs.join(', ')}` : ''
    }${cleaned.errors.length ? `; errors: ${cleaned.errors.join('; ')}` : ''}`;
    deps.log.info(
      {
        event: 'remediation',
        action: name,
        result,
        durationMs,
        reclaimedBytes: cleaned.reclaimedBytes,
        removed: cleaned.removed,
        truncatedLogs: cleaned.truncatedLogs,
        errors: cleaned.errors,
        alertname: signal.alertname,
        fingerprint: signal.fingerprint,
        source: signal.source,
        remediationId,
      },
      `${name}: ${result}, ${cleaned.reclaimedBytes} bytes reclaimed`,
    );
    deps.store.updateRemediation(deps.clock.now(), remediationId, {
      state: result,
      detail,
      reclaimedBytes: cleaned.reclaimedBytes,
      durationMs,
    });
    return { summary: `${name} ${result}: ${detail}`, reclaimedBytes: cleaned.reclaimedBytes };
  } catch (err) {
    deps.metrics.remediations.inc({ action: name, result: 'failed' });
    deps.log.error({ err, event: 'remediation', action: name, result: 'failed' }, `${name} failed`);
    deps.store.updateRemediation(deps.clock.now(), remediationId, {
      state: 'failed',
      detail: (err as Error).message,
    });
    return { summary: `${name} failed: ${(err as Error).message}` };
  } finally {
    busy.delete(HOST_KEY);
  }
}
