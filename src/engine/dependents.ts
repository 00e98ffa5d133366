// The dependents stage: after a container was restarted or re-created and verified, the containers that
// depend on it (core/dependents.ts: its network namespace, depends_on with restart: true) are healed
// too, layer by layer, each verified before the next layer, those of one layer in parallel. Each is
// judged by mayTouch (scope, protection, autoheal.actions, pause) and left alone, reported, when it may
// not be touched. The chain is the parent's incident: every step is on its timeline and in the audit.
// While a dependent is acted on, its record carries the intent, so the watcher takes its stop for ours
// and a restart of the service verifies it.
import { stopTimeoutOf } from '../actions/handler.js';
import { verifyAndSettle } from '../actions/verify.js';
import { type DependentStep, planDependents } from '../core/dependents.js';
import { mayTouch } from '../core/policy.js';
import { emptyRecord, type RemediationResult, type Signal } from '../core/types.js';
import type { ContainerDetails, ContainerSummary } from '../docker/client.js';
import { type EngineIo, runBounded } from './deps.js';

export interface ChainOutcome {
  /** One clause per dependent: "client recreate succeeded (network namespace)". */
  readonly summary: string;
  readonly failed: boolean;
}

/**
 * Heals the dependents of `parent` (as it was inspected before `action`), now `newId`. Returns
 * undefined when it has none. Never throws for a dependent's failure: that is in the outcome.
 */
export async function healDependents(
  io: EngineIo,
  signal: Signal,
  action: string,
  parent: ContainerDetails,
  newId: string,
  remediationId: string,
): Promise<ChainOutcome | undefined> {
  const { deps } = io;
  const listing = await deps.docker.listContainers({ all: true });
  const plan = planDependents(
    { name: parent.name, labels: parent.labels, ids: [parent.id, newId] },
    action,
    listing,
    newId,
  );
  for (const p of plan.problems) deps.log.warn({ event: 'dependents', container: parent.name }, p);
  if (plan.layers.length === 0) return undefined;
  const clauses: string[] = [];
  let failed = false;
  for (const layer of plan.layers) {
    if (failed) {
      // A dependent of a failed one would be restarted against something broken: reported, not touched.
      for (const s of layer) clauses.push(`${s.container.name} not touched (an earlier step failed)`);
      continue;
    }
    const results = await Promise.all(layer.map((s) => healOne(io, signal, parent, s, remediationId)));
    for (const r of results) {
      clauses.push(r.clause);
      if (r.result !== 'succeeded' && r.result !== 'skipped') failed = true;
    }
  }
  return { summary: clauses.join('; '), failed };
}

async function healOne(
  io: EngineIo,
  signal: Signal,
  parent: ContainerDetails,
  step: DependentStep<ContainerSummary>,
  remediationId: string,
): Promise<{ clause: string; result: RemediationResult }> {
  const { deps } = io;
  const name = step.container.name;
  const why =
    step.why === 'network_namespace' ? `in ${parent.name}'s network namespace` : `depends on ${parent.name}`;
  const now = deps.clock.now();
  const note = (result: RemediationResult, detail: string) => {
    deps.log.info(
      {
        event: 'dependent',
        parent: parent.name,
        container: name,
        why: step.why,
        mode: step.mode,
        result,
        detail,
        remediationId,
      },
      `dependent ${name} of ${parent.name}: ${step.mode} ${result} (${detail})`,
    );
    deps.store.addIncidentEvent(parent.name, signal, {
      at: deps.clock.now(),
      type: 'verification',
      action: `${step.mode} ${name}`,
      result,
      detail: `${why}: ${detail}`,
      remediationId,
    });
    return { clause: `${name} ${step.mode} ${result} (${why}: ${detail})`, result };
  };
  if (step.mode === 'ignore') return note('skipped', 'autoheal.dependents=ignore');
  const details = await deps.docker.inspect(step.container.id);
  if (!details) return note('skipped', 'no longer exists');
  const record = deps.store.record(name);
  const no = mayTouch(details, step.mode, record, now, io.ctx());
  if (no) return note('skipped', `left alone: ${no.reason}${no.detail ? ` (${no.detail})` : ''}`);
  if (io.busy.has(name) || record?.inFlight) return note('skipped', 'an action on it is running');
  const handler = deps.actions.get(step.mode);
  if (!handler) return note('failed', `no ${step.mode} action`);
  io.busy.add(name);
  // The intent on its record: the watcher takes the stop for ours, a restart of the service verifies it.
  const before = record ?? emptyRecord(name);
  io.durably(() =>
    deps.store.putRecord({
      ...before,
      inFlight: { action: step.mode, startedAt: now, remediationId, signalId: signal.id },
    }),
  );
  let result: RemediationResult = 'failed';
  let detail: string;
  try {
    const params: Record<string, string> = step.networkMode ? { networkMode: step.networkMode } : {};
    const outcome = await runBounded(
      io,
      handler,
      { ...io.handlerContext(signal), params },
      {
        kind: 'container',
        container: details,
        stopTimeoutSec: stopTimeoutOf(details, deps.config.defaultStopTimeoutSec),
      },
    );
    detail = outcome.detail;
    if (outcome.ok) {
      const v = await verifyAndSettle(deps.docker, outcome, details.id, {
        timeoutMs: deps.config.verifyTimeoutMs,
        graceMs: deps.config.verifyGraceMs,
        now: () => deps.clock.now(),
      });
      result = v.result;
      detail = v.detail;
    }
  } catch (err) {
    detail = `docker error: ${(err as Error).message}`;
  } finally {
    io.busy.delete(name);
  }
  const end = deps.clock.now();
  io.durably(() =>
    deps.store.putRecord({
      ...(deps.store.record(name) ?? before),
      inFlight: undefined,
      lastActionAt: now,
      lastAction: step.mode,
      lastResult: result,
    }),
  );
  deps.metrics.remediations.inc({ action: step.mode, result });
  deps.metrics.remediationDuration.observe({ action: step.mode }, (end - now) / 1000);
  return note(result, detail);
}
