// scale_up, scale_down: a Compose service's or a Swarm service's replicas, one bounded step at a time
// (core/scale.ts plans it within autoheal.scale.min/max, SCALE_MIN/SCALE_MAX).
//   Compose: a replica is added the way `docker compose up --scale` adds one: a container created from
//   the service's own definition (its newest replica's) under the next container-number, and started;
//   each new one is verified healthy (or running for the grace period) and one that is not is removed
//   again. A replica goes highest number first: renamed aside (what a restart of the service finds),
//   stopped gracefully with its stop timeout, removed.
//   Swarm: the service's Replicas, through the manager; the engine verifies the tasks, and a scale-up
//   whose tasks do not come up is scaled back.
import { CONTAINER_LABELS } from '../core/labels.js';
import { asideName, isAside, nameBeforeAside } from '../core/names.js';
import { planStep, type ScaleDirection } from '../core/scale.js';
import { parseTarget } from '../core/targets.js';
import type { ContainerView } from '../core/types.js';
import { type ContainerDefinition, type ContainerDetails, lookupTargets } from '../docker/client.js';
import {
  type ActionContext,
  type ActionHandler,
  type ActionOutcome,
  type ActionTarget,
  wrongKind,
} from './handler.js';
import { verifyRecovery } from './verify.js';

type ComposeService = Extract<ActionTarget, { kind: 'compose_service' }>;

const message = (err: unknown) => (err as Error)?.message ?? String(err);

/** A replica's number: its container-number label, else the number its name ends in. */
export function replicaNumber(c: Pick<ContainerView, 'name' | 'labels'>): number {
  const label = Number(c.labels[CONTAINER_LABELS.composeNumber]);
  if (Number.isInteger(label) && label > 0) return label;
  const m = /[_-]([0-9]+)$/.exec(c.name);
  return m?.[1] ? Number(m[1]) : 0;
}

const byNumber = <C extends Pick<ContainerView, 'name' | 'labels'>>(cs: ReadonlyArray<C>): C[] =>
  [...cs].sort((a, b) => replicaNumber(a) - replicaNumber(b));

/** Host ports the definition binds by number: a second replica could not bind them. */
function fixedHostPorts(d: ContainerDefinition): string[] {
  const bindings = (d.hostConfig.PortBindings ?? {}) as Record<string, Array<{ HostPort?: string }> | null>;
  return Object.values(bindings)
    .flatMap((b) => b ?? [])
    .map((b) => b.HostPort ?? '')
    .filter((p) => p !== '' && p !== '0');
}

/** The step's plan, from the action's parameters and the service's labels; automatic: cut to the limits. */
const plan = (
  ctx: ActionContext,
  direction: ScaleDirection,
  current: number,
  labels: Record<string, string>,
) =>
  planStep({ direction, current, labels, params: ctx.params, defaults: ctx.config.scale, automatic: true });

/** One new replica: created from the definition under its number, started. Its id, or why not. */
async function addReplica(
  ctx: ActionContext,
  def: ContainerDefinition,
  name: string,
  number: number,
): Promise<{ id: string; name: string } | { failed: string }> {
  const labels = {
    ...((def.config.Labels ?? {}) as Record<string, string>),
    [CONTAINER_LABELS.composeNumber]: String(number),
    [CONTAINER_LABELS.scaleAdded]: new Date(ctx.now()).toISOString(),
  };
  const created = await ctx.docker.create(name, { ...def, config: { ...def.config, Labels: labels } });
  if ('refused' in created) return { failed: `${name}: ${created.detail}` };
  try {
    const started = await ctx.docker.start(created.id);
    if (started === 'gone') return { failed: `${name}: removed before it could start` };
  } catch (err) {
    await ctx.docker.remove(created.id, { force: true }).catch(() => undefined);
    return { failed: `${name}: cannot start: ${message(err)}` };
  }
  return { id: created.id, name };
}

/** Verifies a new replica; one that does not come up is removed again. Says how it ended. */
async function proveOrRemove(
  ctx: ActionContext,
  r: { id: string; name: string },
): Promise<{ ok: boolean; detail: string }> {
  const v = await verifyRecovery(ctx.docker, r.id, {
    timeoutMs: ctx.config.verifyTimeoutMs,
    graceMs: ctx.config.verifyGraceMs,
    now: ctx.now,
  });
  if (v.result === 'succeeded') return { ok: true, detail: `${r.name} ${v.detail}` };
  const why = v.lastHealthOutput?.trim() ? ` (${v.lastHealthOutput.trim().slice(0, 200)})` : '';
  try {
    await ctx.docker.remove(r.id, { force: true });
    return { ok: false, detail: `${r.name} ${v.detail}${why}: removed again` };
  } catch (err) {
    return { ok: false, detail: `${r.name} ${v.detail}${why}: could not remove it: ${message(err)}` };
  }
}

async function composeUp(ctx: ActionContext, t: ComposeService): Promise<ActionOutcome> {
  const replicas = byNumber(t.replicas);
  const newest = replicas.at(-1);
  if (!newest)
    return { ok: false, detail: `service ${t.project}/${t.service} has no container to scale from` };
  const p = plan(ctx, 'up', replicas.length, newest.labels);
  if (!p.ok) return { ok: false, detail: p.detail };
  const pattern = /^(.*[_-])[0-9]+$/.exec(newest.name);
  if (!pattern?.[1])
    return {
      ok: false,
      detail: `${newest.name} has no replica number in its name (a fixed container_name?): Compose cannot scale it either`,
    };
  const def = await ctx.docker.definition(newest.id);
  if (!def) return { ok: false, detail: `${newest.name} no longer exists` };
  const ports = fixedHostPorts(def);
  if (ports.length)
    return {
      ok: false,
      detail: `${t.service} publishes host port ${ports.join(', ')}: another replica could not bind it`,
    };
  const top = Math.max(...replicas.map(replicaNumber));
  const wanted = Array.from({ length: p.to - p.from }, (_, i) => top + 1 + i);
  const added = await Promise.all(wanted.map((n) => addReplica(ctx, def, `${pattern[1]}${n}`, n)));
  const proofs = await Promise.all(
    added.map((a) => ('failed' in a ? { ok: false, detail: a.failed } : proveOrRemove(ctx, a))),
  );
  const kept = proofs.filter((x) => x.ok).length;
  const to = p.from + kept;
  const detail = `${t.project}/${t.service} ${p.from} → ${to} replicas: ${proofs.map((x) => x.detail).join('; ')}`;
  return { ok: kept === wanted.length, detail, scaled: { from: p.from, to } };
}

/** Stops and removes one replica, renamed aside first so a restart of the service knows to finish it. */
async function removeReplica(
  ctx: ActionContext,
  t: ComposeService,
  c: ContainerDetails,
): Promise<string | undefined> {
  try {
    if (!isAside(c.name)) {
      const renamed = await ctx.docker.rename(c.id, asideName(c.name));
      if (renamed === 'gone') return undefined;
    }
    try {
      await ctx.docker.stop(c.id, t.stopTimeoutSec(c));
    } catch (err) {
      ctx.log.warn({ container: c.name, err }, 'scale_down: the stop did not finish; killing the replica');
      await ctx.docker.kill(c.id);
    }
    await ctx.docker.remove(c.id, { force: true });
    return undefined;
  } catch (err) {
    return `${c.name}: ${message(err)}`;
  }
}

async function composeDown(ctx: ActionContext, t: ComposeService): Promise<ActionOutcome> {
  const replicas = byNumber(t.replicas);
  const first = replicas[0];
  if (!first) return { ok: false, detail: `service ${t.project}/${t.service} has no container` };
  const p = plan(ctx, 'down', replicas.length, first.labels);
  if (!p.ok) return { ok: false, detail: p.detail };
  const victims = replicas.slice(p.to).reverse();
  const failed = (await Promise.all(victims.map((c) => removeReplica(ctx, t, c)))).filter(
    (f): f is string => f !== undefined,
  );
  const to = p.to + failed.length;
  const names = victims.map((c) => c.name).join(', ');
  return {
    ok: failed.length === 0,
    detail: `${t.project}/${t.service} ${p.from} → ${to} replicas: ${failed.length ? `not removed: ${failed.join('; ')}` : `stopped and removed ${names}`}`,
    scaled: { from: p.from, to },
  };
}

async function swarmScale(
  ctx: ActionContext,
  direction: ScaleDirection,
  t: Extract<ActionTarget, { kind: 'swarm_service' }>,
): Promise<ActionOutcome> {
  const svc = t.service;
  if (svc.replicas === undefined)
    return { ok: false, detail: `${svc.name} is a global service (one task per node): it is not scaled` };
  const p = plan(ctx, direction, svc.replicas, { ...svc.labels });
  if (!p.ok) return { ok: false, detail: p.detail };
  const done = await ctx.docker.scaleService(svc.id, svc.version, p.to);
  if (done !== 'updated') return { ok: false, detail: `${svc.name} not scaled: ${done.replace(/_/g, ' ')}` };
  return {
    ok: true,
    detail: `${svc.name} ${p.from} → ${p.to} replicas`,
    scaled: { from: p.from, to: p.to },
    serviceSpec: {},
    // A scale-up whose tasks do not come up is scaled back to what it was.
    settle: async (verified) => {
      if (verified || direction === 'down') return '';
      try {
        const now = (await ctx.docker.listServices()).find((s) => s.id === svc.id);
        if (!now) return 'the service is gone';
        const back = await ctx.docker.scaleService(svc.id, now.version, p.from);
        return back === 'updated'
          ? `scaled back to ${p.from}`
          : `not scaled back: ${back.replace(/_/g, ' ')}`;
      } catch (err) {
        return `not scaled back: ${message(err)}`;
      }
    },
  };
}

/**
 * After a crash of the service during a scale step of a Compose service: a replica renamed aside is
 * stopped and removed (the scale-down is finished); a replica the scale-up added is verified, and one
 * that is not running, or not healthy in time, is removed. Nothing is added or removed anew.
 */
async function resumeCompose(ctx: ActionContext, name: string) {
  const t = parseTarget(name);
  if (t.kind !== 'service') return { detail: `${name} is not a Compose service`, result: 'failed' as const };
  const found = await lookupTargets(ctx.docker, t);
  const all = found.ok ? found.containers : [];
  const live = new Set(all.filter((c) => !isAside(c.name)).map((c) => c.name));
  const notes: string[] = [];
  let failed = false;
  for (const c of all) {
    const details = await ctx.docker.inspect(c.id);
    if (!details) continue;
    if (isAside(c.name) && !live.has(nameBeforeAside(c.name))) {
      await ctx.docker
        .stop(details.id, details.stopTimeoutSec ?? ctx.config.defaultStopTimeoutSec)
        .catch(() => undefined);
      await ctx.docker.remove(details.id, { force: true });
      notes.push(`removed ${c.name} (a scale-down it was finishing)`);
      continue;
    }
    if (details.labels[CONTAINER_LABELS.scaleAdded] === undefined) continue;
    const proof = await proveOrRemove(ctx, { id: details.id, name: details.name });
    if (!proof.ok) failed = true;
    notes.push(proof.detail);
  }
  return {
    detail: notes.length ? notes.join('; ') : `${name}: nothing left half done`,
    result: failed ? ('failed' as const) : ('succeeded' as const),
  };
}

function makeScaleAction(direction: ScaleDirection): ActionHandler {
  const name = `scale_${direction}`;
  return {
    name,
    targets: ['compose_service', 'swarm_service'],
    // A step the replicas could not take is escalated at once, never retried on its own.
    oneShot: true,
    // A verified step is not an attempt at a recovery: the cap counts the failed steps in a row.
    stepwise: true,
    bounds(c, o) {
      if (c.replicas === undefined) return undefined;
      const p = planStep({
        direction,
        current: c.replicas,
        labels: c.labels,
        params: o.params,
        defaults: o.scale,
        automatic: o.automatic,
      });
      if (p.ok) return undefined;
      return { reason: 'invalidStep' in p ? 'invalid_step' : 'scale_limit', detail: p.detail };
    },
    async run(ctx, target) {
      if (target.kind === 'swarm_service') return swarmScale(ctx, direction, target);
      if (target.kind !== 'compose_service') return wrongKind(name, target);
      return direction === 'up' ? composeUp(ctx, target) : composeDown(ctx, target);
    },
    resume: resumeCompose,
  };
}

export const scaleUpAction = makeScaleAction('up');
export const scaleDownAction = makeScaleAction('down');
