// The stack path: an action on a Compose project as a whole (restart_stack), not on one container. The
// breaker, dry run and one-at-a-time hold for the project (decideHost, keyed by the project); each of
// its containers the service may not touch (scope, protection, autoheal.actions, pause: mayTouch) is
// handed to the action as untouched and reported. The action verifies each step itself; the chain is
// one incident (keyed project:NAME), audited step by step, and a failed step escalates once.
import { randomUUID } from 'node:crypto';
import {
  type ActionHandler,
  type ActionStep,
  accepts,
  stopTimeoutOf,
  type Untouched,
} from '../actions/handler.js';
import { decideHost, mayTouch } from '../core/policy.js';
import { describeTarget } from '../core/targets.js';
import type { ActionName, RemediationResult, Signal } from '../core/types.js';
import { type ContainerDetails, isDetails, lookupTargets } from '../docker/client.js';
import type { EngineIo } from './deps.js';

/** One line per step: "db restart succeeded (healthy)". */
const describeSteps = (steps: ReadonlyArray<ActionStep>): string =>
  steps.map((s) => `${s.container} ${s.action} ${s.result}${s.detail ? ` (${s.detail})` : ''}`).join('; ');

/** Decides and runs an action on a whole Compose project; returns a one-line account of what was done. */
export async function runStackAction(
  io: EngineIo,
  signal: Signal,
  action: ActionName,
  project: string,
  found: ActionHandler | undefined,
): Promise<{ summary: string }> {
  const { deps, report, busy } = io;
  const ctx = io.ctx();
  const key = `project:${project}`;
  const handler = found && accepts(found, 'compose_project') ? found : undefined;
  const now = deps.clock.now();
  const decision = decideHost(signal, deps.store.circuit(), busy.has(key), now, ctx);
  report.audit(signal, decision, key);
  if (decision.verdict === 'skip') {
    report.finishManual(signal, 'skipped', decision);
    return { summary: `${action} of ${key} not run (${decision.reason}: ${decision.detail ?? ''})` };
  }
  const listed = await lookupTargets(deps.docker, signal.target);
  if (!listed.ok) {
    const miss = { verdict: 'skip', reason: listed.reason, detail: listed.detail } as const;
    report.finishManual(signal, 'skipped', miss);
    report.audit(signal, miss, key);
    return { summary: `no automatic action (${listed.reason}: ${listed.detail})` };
  }
  // Inspected one by one from the listing's ids, and each judged as decide() judges a container.
  const containers: ContainerDetails[] = [];
  const untouched: Untouched[] = [];
  for (const c of listed.containers) {
    const details = isDetails(c) ? c : await deps.docker.inspect(c.id);
    if (!details) continue;
    const no = mayTouch(details, action, deps.store.record(details.name), now, ctx);
    if (no)
      untouched.push({
        name: details.name,
        reason: `${no.reason}: ${no.detail ?? ''}`,
        labels: details.labels,
      });
    else containers.push(details);
  }
  if (decision.dryRun) {
    deps.metrics.remediations.inc({ action, result: 'dry_run' });
    report.finishManual(signal, 'dry_run', decision);
    const names = containers.map((c) => c.name).join(', ');
    return { summary: `dry run: ${action} would act on ${names || 'no container'} of ${key}` };
  }
  const remediationId = signal.remediationId ?? randomUUID();
  busy.add(key);
  const incidentId = io.durably(() => {
    const id = deps.store.openIncident(key, signal, now);
    report.addDecisionEvent(key, signal, decision, action, now);
    deps.store.addIncidentEvent(key, signal, {
      at: now,
      type: 'action',
      action,
      source: signal.source,
      detail: `${containers.length} containers${untouched.length ? `, ${untouched.length} left alone` : ''}`,
      remediationId,
    });
    deps.store.upsertRemediation(now, signal, remediationId, {
      state: 'running',
      container: undefined,
      action,
    });
    if (signal.source !== 'manual') io.countForCircuit(now);
    return id;
  });
  if (signal.source === 'alertmanager') deps.silences?.hold(signal, key, action, remediationId);
  deps.log.info(
    { event: 'action', incidentId, target: key, action, source: signal.source, remediationId, untouched },
    `${action} ${key}: ${containers.length} containers`,
  );
  let result: RemediationResult = 'failed';
  let detail: string;
  let steps: ReadonlyArray<ActionStep> = [];
  try {
    if (!handler) throw new Error(`no ${action} handler for a Compose project`);
    const outcome = await io.limit(() =>
      handler.run(io.handlerContext(signal), {
        kind: 'compose_project',
        project,
        containers,
        untouched,
        stopTimeoutSec: (c) => stopTimeoutOf(c, deps.config.defaultStopTimeoutSec),
      }),
    );
    steps = outcome.steps ?? [];
    result = outcome.ok ? 'succeeded' : 'failed';
    detail = steps.length ? `${outcome.detail}: ${describeSteps(steps)}` : outcome.detail;
  } catch (err) {
    detail = `docker error: ${(err as Error).message}`;
  } finally {
    busy.delete(key);
  }
  const end = deps.clock.now();
  deps.metrics.remediations.inc({ action, result });
  deps.metrics.remediationDuration.observe({ action }, (end - now) / 1000);
  for (const s of steps) {
    deps.log.info(
      {
        event: 'step',
        target: key,
        container: s.container,
        action: s.action,
        result: s.result,
        remediationId,
      },
      `${action} ${key}: ${s.container} ${s.action} ${s.result}${s.detail ? ` (${s.detail})` : ''}`,
    );
  }
  deps.log.info(
    { event: 'remediation', target: key, action, result, durationMs: end - now, detail, remediationId },
    `${action} ${key}: ${result}`,
  );
  io.durably(() => {
    for (const s of steps) {
      deps.store.addIncidentEvent(key, signal, {
        at: s.at,
        type: 'verification',
        action: `${s.action} ${s.container}`,
        result: s.result,
        detail: s.detail,
        remediationId,
      });
    }
    deps.store.updateRemediation(end, remediationId, { state: result, detail, durationMs: end - now });
    if (result === 'succeeded') report.closeIncident(incidentId, 'recovered', end, detail);
    else report.closeIncident(incidentId, 'given_up', end, detail);
  });
  deps.silences?.release(key, result === 'succeeded' ? 'recovered' : 'given_up');
  if (result !== 'succeeded') {
    // The humans get the chain and the step that failed; the stack is not retried on its own.
    report.escalate('verification_failed', {
      signal,
      detail: `${action} of ${describeTarget(signal.target)} failed: ${detail}`,
    });
  }
  return { summary: `${action} ${key} ${result}: ${detail}` };
}
