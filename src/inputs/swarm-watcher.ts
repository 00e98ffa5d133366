// The Swarm watcher: the second input of a Swarm manager, next to the container watcher (which leaves
// task containers alone: they are Swarm's). Every WATCHDOG_INTERVAL (and at once when the engine
// reports a service change) it lists the services in scope and their tasks. A task that failed is a
// signal for its service (swarm:NAME), judged by the one policy: each counts against the service's
// attempts, and past the cap the service is given up and escalated once, with the tasks' errors (Swarm
// alone would restart it forever). An update Swarm paused or rolled back by itself is told to the
// humans once. On an engine that is not a manager it does nothing.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Clock } from '../core/clock.js';
import { CONTAINER_LABELS } from '../core/labels.js';
import { checkScope } from '../core/scope.js';
import { swarmPass, taskEvidence } from '../core/swarm-rules.js';
import { swarmRecordName } from '../core/targets.js';
import type { Signal } from '../core/types.js';
import type { DockerClient, SwarmTask } from '../docker/client.js';
import type { Metrics } from '../metrics.js';
import type { Engine } from '../engine/engine.js';
import { serviceView } from '../engine/swarm-path.js';

export interface SwarmWatcherDeps {
  readonly config: Pick<Config, 'watchdogIntervalMs' | 'watcherHeal'>;
  readonly docker: DockerClient;
  readonly engine: Pick<Engine, 'ingest' | 'notifyOnly' | 'observe' | 'policyContext'>;
  readonly log: Logger;
  readonly clock: Clock;
  /** autoheal_replicas of the services that set a scale limit. */
  readonly metrics?: Pick<Metrics, 'replicas'> | undefined;
}

interface Known {
  readonly seen: Set<string>;
  reported: string | undefined;
}

export class SwarmWatcher {
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private passing: Promise<void> | undefined;
  private readonly known = new Map<string, Known>();
  /** Whether the engine was a manager at the last pass (reported once per change). */
  private manager: boolean | undefined;
  readonly stats = { passes: 0, signals: 0, changes: 0 };
  private follow: AbortController | undefined;
  private soon: NodeJS.Timeout | undefined;

  constructor(private readonly d: SwarmWatcherDeps) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
    void this.followChanges();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.soon);
    this.follow?.abort();
  }

  /**
   * The engine's service changes and task exits start a pass at once (coalesced over 200 ms), so a
   * failing task is seen in well under the poll interval; the poll still runs when the stream is down.
   */
  private async followChanges(): Promise<void> {
    while (!this.stopped) {
      this.follow = new AbortController();
      try {
        if (this.manager !== false) {
          for await (const _ of this.d.docker.swarmChanges(this.follow.signal)) {
            this.stats.changes++;
            if (this.soon === undefined) {
              this.soon = setTimeout(() => {
                this.soon = undefined;
                if (!this.stopped) this.pass().catch(() => undefined);
              }, 200);
              this.soon.unref();
            }
          }
        }
      } catch (err) {
        if (this.stopped) return;
        this.d.log.debug(
          { err, event: 'swarm_watch' },
          'swarm watcher: change stream ended; the poll goes on',
        );
      }
      // Not a manager, or the stream ended: look again after a poll interval.
      await new Promise((r) => setTimeout(r, this.d.config.watchdogIntervalMs).unref());
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(async () => {
      try {
        await this.pass();
      } catch (err) {
        this.d.log.warn({ err, event: 'swarm_watch' }, 'swarm watcher: cannot read the services');
      }
      this.schedule(this.d.config.watchdogIntervalMs);
    }, ms);
    this.timer.unref();
  }

  /** One pass over the services (one at a time; a caller during one waits for it). */
  pass(): Promise<void> {
    this.passing ??= this.passOnce().finally(() => {
      this.passing = undefined;
    });
    return this.passing;
  }

  private async passOnce(): Promise<void> {
    const { docker, engine, log, clock } = this.d;
    const manager = (await docker.swarmRole()) === 'manager';
    if (manager !== this.manager) {
      this.manager = manager;
      if (manager)
        log.info({ event: 'swarm_watch' }, 'this engine is a Swarm manager: watching its services');
    }
    if (!manager) return;
    const services = await docker.listServices();
    // Every task of the swarm in one call, grouped by service (not one call per service).
    const byService = new Map<string, SwarmTask[]>();
    for (const t of await docker.listTasks())
      byService.set(t.serviceId, [...(byService.get(t.serviceId) ?? []), t]);
    const now = clock.now();
    const live = new Set<string>();
    for (const s of services) {
      const tasks = byService.get(s.id) ?? [];
      const view = serviceView(s, tasks, now);
      if (!checkScope(view, engine.policyContext).ok) continue;
      live.add(s.id);
      // Its record sees it healthy (the stable period, a given-up service's recovery) like a container's.
      engine.observe(view);
      // A service that sets a scale limit has its replicas published, as a Compose service's are.
      const { scaleMin, scaleMax } = CONTAINER_LABELS;
      if (s.replicas !== undefined && (s.labels[scaleMin] !== undefined || s.labels[scaleMax] !== undefined))
        this.d.metrics?.replicas.set({ service: swarmRecordName(s.name) }, s.replicas);
      const first = !this.known.has(s.id);
      const k = this.known.get(s.id) ?? { seen: new Set<string>(), reported: undefined };
      this.known.set(s.id, k);
      const found = swarmPass({ service: s, tasks, seen: k.seen, reported: k.reported, first });
      for (const t of tasks) if (t.state === 'failed' || t.state === 'rejected') k.seen.add(t.id);
      k.reported = found.reported;
      if (found.halted) {
        const detail = `Swarm ${found.halted.state.replace('_', ' ')} the update of swarm:${s.name}: ${found.halted.message}`;
        log.warn({ event: 'swarm_update', service: s.name, state: found.halted.state }, detail);
        engine.notifyOnly(this.signalFor(s.name, s.labels, now, detail), 'swarm_update', undefined, detail);
      }
      if (found.failures.length && this.d.config.watcherHeal) {
        const reason = `${found.failures.length} task${found.failures.length === 1 ? '' : 's'} failed: ${taskEvidence(found.failures)}`;
        this.stats.signals++;
        try {
          engine.ingest([this.signalFor(s.name, s.labels, now, reason)]);
        } catch (err) {
          log.error({ err, service: s.name }, 'cannot record a swarm watcher signal');
        }
      }
    }
    for (const id of [...this.known.keys()]) if (!live.has(id)) this.known.delete(id);
    this.stats.passes++;
  }

  private signalFor(
    service: string,
    labels: Readonly<Record<string, string>>,
    now: number,
    reason: string,
  ): Signal {
    return {
      id: randomUUID(),
      source: 'reconcile',
      status: 'firing',
      receivedAt: now,
      condition: 'unhealthy',
      target: { kind: 'swarm', service },
      action: labels[CONTAINER_LABELS.onUnhealthy] ?? 'restart',
      params: {},
      labels: {},
      annotations: {},
      reason: `${swarmRecordName(service)}: ${reason}`,
    };
  }
}
