// The per-container gauges the watcher keeps (healthy, up, restarts): one series each per watched
// container, named by container, Compose service and project, so their number stays bounded by what is
// watched. A rename moves a container's series; a removal drops them unless another container (a
// recreated one with the same name) owns them now.
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
  constructor(
    private readonly metrics: Pick<Metrics, 'containerHealthy' | 'containerUp' | 'containerRestarts'>,
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
