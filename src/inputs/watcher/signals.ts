// Pure helpers of the health watcher: what an engine event means, the Signal a watched container's
// failure becomes, and the label values of its per-container metrics. No I/O here.
import { randomUUID } from 'node:crypto';
import { parseDuration } from '../../core/duration.js';
import { CONTAINER_LABELS } from '../../core/labels.js';
import type { Condition, ContainerView, HealthStatus, Signal } from '../../core/types.js';

/** The metric-friendly name of an engine action: `health_status: unhealthy` counts as `health_status`. */
export const eventKind = (action: string): string => {
  const i = action.indexOf(':');
  return i === -1 ? action : action.slice(0, i);
};

/** The health an event reports, for `health_status: <status>` actions only. */
export function healthFromAction(action: string): HealthStatus | undefined {
  if (!action.startsWith('health_status')) return undefined;
  const status = action.slice(action.indexOf(':') + 1).trim();
  return status === 'healthy' || status === 'unhealthy' || status === 'starting' ? status : undefined;
}

/**
 * The failure signal of a watched container; the action is the one given (an exit 0 opted in), else its
 * autoheal.on_unhealthy label, else restart.
 */
export function watcherSignal(
  c: Pick<ContainerView, 'name' | 'labels'>,
  o: {
    source: 'docker_event' | 'reconcile';
    condition: Condition;
    now: number;
    reason: string;
    action?: string | undefined;
  },
): Signal {
  return {
    id: randomUUID(),
    source: o.source,
    status: 'firing',
    receivedAt: o.now,
    condition: o.condition,
    target: { kind: 'container', name: c.name },
    action: o.action ?? c.labels[CONTAINER_LABELS.onUnhealthy] ?? 'restart',
    params: {},
    labels: {},
    annotations: {},
    reason: o.reason,
  };
}

/** Label values of the per-container gauges: bounded to watched containers, taken from the engine. */
export function seriesLabels(c: Pick<ContainerView, 'name' | 'labels'>): {
  container: string;
  service: string;
  project: string;
} {
  return {
    container: c.name,
    service: c.labels[CONTAINER_LABELS.composeService] ?? '',
    project: c.labels[CONTAINER_LABELS.composeProject] ?? '',
  };
}

/** 1 when healthy, or running without a health check; 0 otherwise (the gauge's documented meaning). */
export const healthyValue = (c: Pick<ContainerView, 'state' | 'health'>): number =>
  c.state === 'running' && (c.health === 'healthy' || c.health === 'none') ? 1 : 0;

/** The grace period after a start (label autoheal.start_period, or the global default), in ms. */
export function startPeriodOf(c: Pick<ContainerView, 'labels'>, defaultMs: number): number {
  const v = c.labels[CONTAINER_LABELS.startPeriod];
  return (v === undefined ? undefined : parseDuration(v)) ?? defaultMs;
}

/** The exit code in a listing's status ("Exited (0) 5 seconds ago"); undefined when it shows none. */
export function exitCodeFromStatus(status: string | undefined): number | undefined {
  const m = /^Exited \((-?\d+)\)/.exec(status ?? '');
  return m?.[1] === undefined ? undefined : Number(m[1]);
}
