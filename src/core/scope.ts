// Which containers the service may touch: the opt-in scope, the opt-out label, and never itself.
import { CONTAINER_LABELS } from './labels.js';
import type { ContainerView } from './types.js';

/** Which containers may be healed: labelled ones, one Compose project's, or all. */
export type WatchScope = 'label' | 'project' | 'all';

export interface ScopeContext {
  readonly scope: WatchScope;
  readonly composeProject: string | undefined;
  readonly selfContainerId: string | undefined;
}

export type ScopeVerdict =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: 'self' | 'not_in_scope'; readonly detail: string };

export const isSelf = (c: Pick<ContainerView, 'id' | 'name'>, selfId: string | undefined): boolean =>
  Boolean(selfId && (c.id.startsWith(selfId) || c.name === selfId));

export function checkScope(c: ContainerView, ctx: ScopeContext): ScopeVerdict {
  if (isSelf(c, ctx.selfContainerId))
    return { ok: false, reason: 'self', detail: 'the service never acts on its own container' };
  const task = c.labels[CONTAINER_LABELS.swarmTask];
  if (task !== undefined) {
    const service = c.labels[CONTAINER_LABELS.swarmService];
    return {
      ok: false,
      reason: 'not_in_scope',
      detail: `a Swarm task's container: healed through its service${service ? ` (swarm:${service})` : ''}, never directly`,
    };
  }
  const enable = c.labels[CONTAINER_LABELS.enable];
  if (enable === 'false')
    return { ok: false, reason: 'not_in_scope', detail: `${CONTAINER_LABELS.enable}=false` };
  switch (ctx.scope) {
    case 'all':
      return { ok: true };
    case 'project':
      return c.labels[CONTAINER_LABELS.composeProject] === ctx.composeProject
        ? { ok: true }
        : { ok: false, reason: 'not_in_scope', detail: `not in compose project ${ctx.composeProject}` };
    case 'label':
      return enable === 'true' || c.labels[CONTAINER_LABELS.legacyEnable] === 'true'
        ? { ok: true }
        : { ok: false, reason: 'not_in_scope', detail: `not labelled ${CONTAINER_LABELS.enable}=true` };
  }
}

/** Docker label filters that list the candidates of a scope in one API call. */
export function scopeListFilter(ctx: ScopeContext): string[] | undefined {
  if (ctx.scope === 'project' && ctx.composeProject)
    return [`${CONTAINER_LABELS.composeProject}=${ctx.composeProject}`];
  return undefined;
}
