// restart_stack: every container of a Compose project restarted in depends_on order, layer by layer
// (core/compose-graph.ts), the containers of a layer in parallel. A layer starts only when every
// container of the one before is healthy again (or running for the grace period, without a health
// check), because that is what its dependents wait for at `docker compose up`. A layer that fails
// stops the stack there: restarting what depends on a broken service would only break it too.
import { buildComposeGraph, describeCycle, type GraphProblem, layersOf } from '../core/compose-graph.js';
import type { ContainerDetails } from '../docker/client.js';
import {
  type ActionContext,
  type ActionHandler,
  type ActionStep,
  type ActionTarget,
  wrongKind,
} from './handler.js';
import { verifyRecovery } from './verify.js';

type Project = Extract<ActionTarget, { kind: 'compose_project' }>;

const skipped = (container: string, at: number, detail: string): ActionStep => ({
  container,
  action: 'restart',
  result: 'skipped',
  at,
  detail,
});

/** One container: restarted, then verified; the step says how it ended. Never throws. */
async function restartOne(ctx: ActionContext, target: Project, c: ContainerDetails): Promise<ActionStep> {
  const began = ctx.now();
  const step = (result: ActionStep['result'], detail: string): ActionStep => ({
    container: c.name,
    action: 'restart',
    result,
    at: ctx.now(),
    detail,
  });
  try {
    const stopTimeoutSec = target.stopTimeoutSec(c);
    if ((await ctx.docker.restart(c.id, stopTimeoutSec)) === 'gone') {
      return step('failed', 'container no longer exists');
    }
    const v = await verifyRecovery(ctx.docker, c.id, {
      timeoutMs: ctx.config.verifyTimeoutMs,
      graceMs: ctx.config.verifyGraceMs,
      now: ctx.now,
    });
    const took = ((ctx.now() - began) / 1000).toFixed(1);
    const why = v.lastHealthOutput?.trim() ? ` (${v.lastHealthOutput.trim().slice(0, 200)})` : '';
    return step(v.result, `restarted (stop timeout ${stopTimeoutSec}s); ${v.detail} after ${took}s${why}`);
  } catch (err) {
    return step('failed', `engine error: ${(err as Error).message}`);
  }
}

const describeProblem = (p: GraphProblem): string =>
  [p.container, p.service].filter(Boolean).join('/') + (p.container || p.service ? ': ' : '') + p.detail;

export const restartStackAction: ActionHandler = {
  name: 'restart_stack',
  targets: ['compose_project'],
  async run(ctx, target) {
    if (target.kind !== 'compose_project') return wrongKind('restart_stack', target);
    const startedAt = ctx.now();
    const steps: ActionStep[] = target.untouched.map((u) => skipped(u.name, startedAt, u.reason));
    // The containers left alone still order the others: a protected db is not restarted, but what
    // depends on it still comes after what it depends on.
    const touched = new Set(target.containers.map((c) => c.name));
    const graph = buildComposeGraph<ContainerDetails | (typeof target.untouched)[number]>(target.project, [
      ...target.containers,
      ...target.untouched,
    ]);
    const inGraph = new Set(
      [...graph.services.values()]
        .flatMap((s) => s.containers.map((c) => c.name))
        .filter((n) => touched.has(n)),
    );
    for (const c of target.containers) {
      if (inGraph.has(c.name)) continue;
      const why = graph.problems.find((p) => p.container === c.name)?.detail ?? 'not part of the project';
      steps.push(skipped(c.name, startedAt, why));
    }
    // Label problems do not stop the stack (the graph is built without them) but an operator should fix them.
    for (const p of graph.problems) {
      ctx.log.warn({ project: target.project, problem: describeProblem(p) }, 'restart_stack: depends_on');
    }
    const order = layersOf(graph);
    if (!order.ok) {
      const cycles = order.cycles.map(describeCycle).join('; ');
      for (const c of inGraph) steps.push(skipped(c, startedAt, `not restarted: dependency cycle ${cycles}`));
      return {
        ok: false,
        detail: `dependency cycle in ${target.project}: ${cycles}; nothing restarted`,
        steps,
      };
    }
    const layers = order.layers
      .map((services) =>
        services
          .flatMap((s) => graph.services.get(s)?.containers ?? [])
          .filter((c): c is ContainerDetails => touched.has(c.name)),
      )
      .filter((layer) => layer.length > 0);
    const chain = order.layers.map((l) => l.join(' + ')).join(' → ');
    let restarted = 0;
    for (const [i, layer] of layers.entries()) {
      // Each step is recorded when its verdict comes in, so the steps read in the order they happened.
      const results = await Promise.all(
        layer.map((c) =>
          restartOne(ctx, target, c).then((s) => {
            steps.push(s);
            return s;
          }),
        ),
      );
      restarted += results.length;
      const failed = results.filter((s) => s.result !== 'succeeded');
      if (failed.length === 0) continue;
      const names = failed.map((s) => `${s.container} ${s.result.replace('_', ' ')}`).join(', ');
      const rest = layers.slice(i + 1).flat();
      const at = ctx.now();
      for (const c of rest) steps.push(skipped(c.name, at, `not restarted: ${names} in layer ${i + 1}`));
      const left = rest.length > 0 ? `; ${rest.length} later not restarted` : '';
      return {
        ok: false,
        detail: `${target.project}: ${names} (layer ${i + 1} of ${layers.length}: ${chain})${left}`,
        steps,
      };
    }
    const noted = graph.problems.length > 0 ? `; ${graph.problems.length} depends_on problem(s) logged` : '';
    return {
      ok: true,
      detail: `${target.project}: ${restarted} container(s) restarted and verified in ${layers.length} layer(s): ${chain}${noted}`,
      steps,
    };
  },
};
