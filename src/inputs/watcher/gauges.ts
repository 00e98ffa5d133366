// The per-container gauges the watcher keeps (healthy, up, restarts): one series each per watched
// container, named by container, Compose service and project, so their number stays bounded by what is
// watched. A rename moves a container's series; a removal drops them unless another container (a
// recreated one with the same name) owns them now.
import { scalableReplicas } from '../../core/scale.js';
import type { ContainerView } from '../../core/types.js';
import type { Metrics } from '../../metrics.js';
import { healthyValue, seriesLabels } from './signals.js';

export type Series = ReturnType<typeof seriesLabels>;

/** What the gauges read of a watched container, and the series they last published for it. */
export interface Gauged extends Pick<ContainerView, 'name' | 'labels' | 'state' | 'health' | 'restartCount'> {
  series: Series | undefined;
}

const sameSeries = (a: Series, b: Series): boolean =>
  a.container === b.container && a.service === b.service && a.project === b.project;

export class ContainerGauges {
  /** The Compose services whose replicas were published at the last pass. */
  private scalable = new Set<string>();

  constructor(
    private readonly metrics: Pick<
      Metrics,
      'containerHealthy' | 'containerUp' | 'containerRestarts' | 'replicas'
    >,
    /** Every container watched now, to know who owns a series before dropping it. */
    private readonly watched: () => Iterable<Gauged>,
  ) {}

  publish(k: Gauged): void {
    const { containerHealthy, containerUp, containerRestarts } = this.metrics;
    const labels = seriesLabels(k);
    if (k.series && !sameSeries(k.series, labels)) this.drop(k.series, k);
    k.series = labels;
    containerHealthy.set(labels, healthyValue(k));
    containerUp.set(labels, k.state === 'running' ? 1 : 0);
    if (k.restartCount !== undefined) containerRestarts.set(labels, k.restartCount);
  }

  /** After a pass: the replicas of each watched Compose service that sets scale limits (autoheal_replicas). */
  publishReplicas(): void {
    const counts = scalableReplicas(this.watched());
    for (const key of this.scalable) if (!counts.has(key)) this.metrics.replicas.remove({ service: key });
    for (const [key, n] of counts) this.metrics.replicas.set({ service: key }, n);
    this.scalable = new Set(counts.keys());
  }

  /** Removes a container's series unless another watched container (a recreated one) now owns them. */
  drop(s: Series, except?: Gauged): void {
    for (const other of this.watched()) {
      if (other !== except && other.series && sameSeries(other.series, s)) return;
    }
    const { containerHealthy, containerUp, containerRestarts } = this.metrics;
    containerHealthy.remove(s);
    containerUp.remove(s);
    containerRestarts.remove(s);
  }
}
