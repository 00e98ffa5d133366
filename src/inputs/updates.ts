// auto_patcher's check run: an input like the others. It asks the registry, for every watched container
// whose image is a registry reference, whether its tag names a newer image (read only: no pull, no
// container touched), then hands the engine one `update` request per container or Compose service
// opted in with autoheal.update=apply (the engine decides, acts, verifies and rolls back under the one
// policy), and tells the humans in one message of the updates of `notify` containers. What to do with
// what it found is decided by core/updates.ts; this file only gathers and hands over.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Clock } from '../core/clock.js';
import { CONTAINER_LABELS } from '../core/labels.js';
import { isAside } from '../core/names.js';
import type { PolicyContext } from '../core/policy.js';
import { checkScope, scopeListFilter } from '../core/scope.js';
import { requestSignal } from '../core/signals.js';
import { describeTarget } from '../core/targets.js';
import type { Signal, SignalSource } from '../core/types.js';
import { planUpdates, type UpdateMode, updateModeOf } from '../core/updates.js';
import type { DockerClient } from '../docker/client.js';
import type { Metrics } from '../metrics.js';
import { readDockerAuth } from '../registry/auth.js';
import { checkUpdate, type UpdateCheck } from '../registry/check.js';
import type { RemoteOptions } from '../registry/remote.js';
import type { Store } from '../state/store.js';

/** Registry requests of one check run at a time: a host with many containers does not flood its registry. */
const PARALLEL_CHECKS = 4;

export interface UpdateCheckerDeps {
  readonly docker: DockerClient;
  readonly engine: {
    readonly policyContext: PolicyContext;
    request(signal: Omit<Signal, 'remediationId'>): string;
    notifyOnly(signal: Signal, kind: 'updates_available', container?: undefined, detail?: string): void;
  };
  readonly config: Pick<Config, 'autopatch' | 'dockerConfigDir'>;
  readonly store: Pick<Store, 'rejectedUpdate'>;
  readonly metrics: Pick<Metrics, 'updates'>;
  readonly log: Logger;
  readonly clock: Clock;
  /** Registry timeouts (tests shorten them). */
  readonly remote?: RemoteOptions;
}

/** One watched container as a check found it. */
export interface ContainerUpdate extends UpdateCheck {
  readonly container: string;
  /** What the container takes: its autoheal.update label, else AUTOPATCH; `off` for a protected one. */
  readonly mode: UpdateMode;
  /** When an update of it to this same image was rolled back: check runs do not apply it again. */
  readonly rolledBackAt?: number | undefined;
}

export interface CheckReport {
  readonly checkedAt: number;
  readonly containers: ReadonlyArray<ContainerUpdate>;
}

export interface RunReport extends CheckReport {
  readonly id: string;
  /** The update requested per target (`web`, `service:shop/api`) and its remediation id. */
  readonly requested: ReadonlyArray<{ readonly target: string; readonly remediationId: string }>;
  /** The notify containers whose updates were listed to the humans. */
  readonly notified: ReadonlyArray<string>;
}

export interface RunOptions {
  readonly source: Extract<SignalSource, 'schedule' | 'manual'>;
  readonly requestedBy: string;
  readonly reason: string;
  readonly dryRun?: boolean;
}

const shortDigest = (d: string | undefined) => (d ? d.replace(/^sha256:/, '').slice(0, 12) : 'unknown');

export class UpdateChecker {
  private running: Promise<RunReport> | undefined;

  constructor(private readonly d: UpdateCheckerDeps) {}

  /** Whether a run is under way (a schedule does not start a second one). */
  get busy(): boolean {
    return this.running !== undefined;
  }

  /**
   * Every watched container in scope, as the registry answers for it now. Nothing is changed. The
   * service's own container, one put aside by a recreate and a protected one are left out of updates
   * (protected ones are listed as `off`).
   */
  async check(): Promise<CheckReport> {
    const found = await this.gather();
    return { checkedAt: this.d.clock.now(), containers: found.map(({ labels: _, ...c }) => c) };
  }

  /** The check, with each container's labels (for the plan; never in a report). */
  private async gather(): Promise<
    Array<ContainerUpdate & { readonly labels: Readonly<Record<string, string>> }>
  > {
    const { docker, engine, config } = this.d;
    const ctx = engine.policyContext;
    const listed = await docker.listContainers({ all: true, labels: scopeListFilter(ctx) });
    const watched = listed.filter((c) => checkScope(c, ctx).ok && !isAside(c.name));
    const auth = await readDockerAuth(config.dockerConfigDir);
    for (const note of auth.notes) this.d.log.warn({ event: 'update_check' }, note);
    const out: Array<ContainerUpdate & { labels: Readonly<Record<string, string>> }> = new Array(
      watched.length,
    );
    let next = 0;
    const worker = async () => {
      while (next < watched.length) {
        const i = next++;
        const c = watched[i];
        if (!c) continue;
        const protectedOne = c.labels[CONTAINER_LABELS.protect] === 'true';
        const mode = protectedOne ? 'off' : updateModeOf(c.labels, config.autopatch);
        const check = await this.checkOne(c.id, c.name, c.image, auth);
        const rejected = this.d.store.rejectedUpdate(c.name);
        const rolledBackAt =
          check.status === 'available' && rejected && rejected.image === check.remoteDigest
            ? rejected.at
            : undefined;
        const detail =
          rolledBackAt === undefined
            ? check.detail
            : `${check.detail}; an update to it was rolled back at ${new Date(rolledBackAt).toISOString()}: not applied again by a check run (update it by hand, or push a fixed image)`;
        out[i] = { container: c.name, mode, labels: c.labels, ...check, detail, rolledBackAt };
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_CHECKS, watched.length) }, worker));
    return out.filter(Boolean);
  }

  private async checkOne(
    id: string,
    name: string,
    listedImage: string,
    auth: Awaited<ReturnType<typeof readDockerAuth>>,
  ): Promise<UpdateCheck> {
    try {
      // The listing shows an image id once a pull has moved the tag: the definition names the tag.
      const details = await this.d.docker.inspect(id);
      if (!details) return { status: 'unknown', reference: listedImage, detail: `${name} is gone` };
      return await checkUpdate(this.d.docker, details, { auth, remote: this.d.remote });
    } catch (err) {
      return {
        status: 'unknown',
        reference: listedImage,
        detail: `cannot check ${name}: ${(err as Error).message}`,
      };
    }
  }

  /**
   * A check run: check, then request the updates of `apply` containers (one request per container or
   * Compose service; the engine takes a service's replicas one at a time) and list those of `notify`
   * containers to the humans in one message. One run at a time: a second caller gets the first's report.
   */
  run(o: RunOptions): Promise<RunReport> {
    this.running ??= this.runOnce(o).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async runOnce(o: RunOptions): Promise<RunReport> {
    const { engine, log, metrics, clock } = this.d;
    const id = randomUUID();
    const gathered = await this.gather();
    const report: CheckReport = {
      checkedAt: clock.now(),
      containers: gathered.map(({ labels: _, ...c }) => c),
    };
    const found = gathered.map((c) => ({
      name: c.container,
      // A protected container is listed as off: never planned.
      labels: c.mode === 'off' ? { ...c.labels, [CONTAINER_LABELS.update]: 'off' } : c.labels,
      status: c.status,
      rejected: c.rolledBackAt !== undefined,
    }));
    const available = report.containers.filter((c) => c.status === 'available');
    if (available.length) metrics.updates.inc({ result: 'available' }, available.length);
    const plan = planUpdates(found, this.d.config.autopatch);

    const requested: Array<{ target: string; remediationId: string }> = [];
    for (const target of plan.apply) {
      const remediationId = engine.request(
        requestSignal({
          id: randomUUID(),
          source: o.source,
          target,
          action: 'update',
          requestedBy: o.requestedBy,
          reason: o.reason,
          dryRun: o.dryRun,
          now: clock.now(),
        }),
      );
      requested.push({ target: describeTarget(target), remediationId });
    }

    if (plan.notify.length) {
      const byName = new Map(report.containers.map((c) => [c.container, c]));
      const lines = plan.notify.map((name) => {
        const c = byName.get(name);
        return `${name}: ${c?.reference} ${shortDigest(c?.localDigest)} → ${shortDigest(c?.remoteDigest)}`;
      });
      const signal: Signal = {
        ...requestSignal({
          id: `updates:${id}`,
          source: o.source,
          target: { kind: 'host' },
          action: 'update',
          requestedBy: o.requestedBy,
          reason: o.reason,
          now: clock.now(),
        }),
        remediationId: undefined,
      };
      const detail = `${plan.notify.length} image update${plan.notify.length === 1 ? '' : 's'} available (autoheal.update=notify: nothing was changed):\n${lines.join('\n')}`;
      engine.notifyOnly(signal, 'updates_available', undefined, detail);
    }
    log.info(
      {
        event: 'update_check',
        runId: id,
        source: o.source,
        checked: report.containers.length,
        available: available.map((c) => c.container),
        requested,
        notified: plan.notify,
        left: plan.left,
        unknown: report.containers
          .filter((c) => c.status === 'unknown')
          .map((c) => `${c.container}: ${c.detail}`),
      },
      `update check: ${report.containers.length} checked, ${available.length} available, ${requested.length} update${requested.length === 1 ? '' : 's'} requested, ${plan.notify.length} listed`,
    );
    return { ...report, id, requested, notified: plan.notify };
  }
}
