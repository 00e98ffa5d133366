// Resumption after a restart of the service: every action it was carrying out when it died (a record
// with an intent, inFlight) is verified, never started again, and its result recorded as that
// attempt's. Signals for such a container wait for the verification (ContainerPath awaits it).
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { verifyRecovery, verifyService } from '../actions/verify.js';
import { deferDelayMs } from '../core/pending.js';
import { resumed } from '../core/records.js';
import { targetOfRecord } from '../core/targets.js';
import type { ContainerRecord, ContainerView, RemediationResult, Signal } from '../core/types.js';
import { lookupContainer } from '../docker/client.js';
import type { EngineDeps, EngineIo } from './deps.js';
import type { ContainerPath } from './remediate.js';

export class Resumption {
  private readonly deps: EngineDeps;
  /** Actions interrupted by a restart of the service, being verified (by container name). */
  private readonly resuming = new Map<string, Promise<void>>();

  constructor(
    private readonly io: EngineIo,
    private readonly path: ContainerPath,
  ) {
    this.deps = io.deps;
  }

  /** The verification under way for this container, if any. */
  of(name: string): Promise<void> | undefined {
    return this.resuming.get(name);
  }

  has(name: string): boolean {
    return this.resuming.has(name);
  }

  /**
   * Starts verifying every interrupted action: the record gets the cooldown of an action that ran
   * (core's resumed), and the verification runs under the signal that asked for it when that is still
   * in the inbox. Returns the verifications, for the engine to track.
   */
  start(pending: ReadonlyArray<Signal>): Promise<void>[] {
    const byId = new Map(pending.map((s) => [s.id, s]));
    const started: Promise<void>[] = [];
    for (const r of [...this.deps.store.records()]) {
      if (!r.inFlight) continue;
      const next = resumed(r, this.deps.config.policy.cooldownMs);
      this.deps.log.warn(
        {
          event: 'resume',
          container: r.name,
          action: r.inFlight.action,
          signalId: r.inFlight.signalId,
          remediationId: r.inFlight.remediationId,
          nextAllowedAt: next.nextAllowedAt,
        },
        'verifying an action interrupted by a restart of the service (it is not started again)',
      );
      this.deps.store.putRecord(next);
      const origin = (r.inFlight.signalId && byId.get(r.inFlight.signalId)) || this.resumeSignal(r);
      started.push(this.resumeAction(r.name, origin));
    }
    return started;
  }

  /** The signal an interrupted action is verified under when its own is no longer in the inbox. */
  private resumeSignal(r: ContainerRecord): Signal {
    return {
      id: r.inFlight?.signalId ?? randomUUID(),
      source: 'reconcile',
      status: 'firing',
      receivedAt: this.deps.clock.now(),
      condition: 'retry',
      target: { kind: 'container', name: r.name },
      action: r.inFlight?.action,
      params: {},
      labels: {},
      annotations: {},
      reason: 'an action interrupted by a restart of the service',
    };
  }

  /**
   * Verifies an action the service was carrying out when it died, and records its result as that
   * attempt's: the action itself may have reached the engine or not, but it is never started again.
   * Signals for the container wait for the result (remediateContainer), so they see its cooldown.
   */
  private resumeAction(name: string, signal: Signal): Promise<void> {
    this.io.busy.add(name);
    const p = this.verifyInterrupted(name, signal).finally(() => {
      this.io.busy.delete(name);
      this.resuming.delete(name);
    });
    this.resuming.set(name, p);
    return p;
  }

  /**
   * A Swarm service's interrupted action: Swarm carries an update through by itself once it has it, so
   * there is nothing to finish; the tasks are verified against the spec as it is now.
   */
  private async verifyService(
    name: string,
    signal: Signal,
    intent: NonNullable<ContainerRecord['inFlight']>,
  ): Promise<void> {
    const { config, docker, clock } = this.deps;
    const service = name.slice('swarm:'.length);
    const svc = (await docker.listServices()).find((s) => s.name === service);
    const v = svc
      ? await verifyService(docker, svc.id, {
          timeoutMs: config.verifyTimeoutMs,
          graceMs: config.verifyGraceMs,
          now: () => clock.now(),
          after: intent.startedAt,
          rollback: intent.action === 'rollback',
        })
      : { result: 'failed' as const, detail: 'the service no longer exists', lastHealthOutput: undefined };
    const view: ContainerView = {
      id: svc?.id ?? '',
      name,
      labels: svc?.labels ?? {},
      state: 'running',
      health: v.result === 'succeeded' ? 'healthy' : 'unhealthy',
    };
    this.path.recordResult(signal, view, intent.action, {
      startedAt: intent.startedAt,
      remediationId: intent.remediationId,
      result: v.result,
      detail: `interrupted by a restart of the service, then verified: ${v.detail}`,
      lastHealthOutput: v.lastHealthOutput,
    });
  }

  private async verifyInterrupted(name: string, signal: Signal): Promise<void> {
    const { config, docker } = this.deps;
    for (let tries = 1; ; tries++) {
      const intent = this.deps.store.record(name)?.inFlight;
      if (!intent) return;
      try {
        if (targetOfRecord(name).kind === 'swarm') {
          await this.verifyService(name, signal, intent);
          return;
        }
        // An action with steps of its own (recreate) first finishes or rolls back what it left.
        const handler = this.deps.actions.get(intent.action);
        if (targetOfRecord(name).kind === 'service') {
          // A Compose service as a whole (a scale step): the action verifies what it finds itself.
          const left = handler?.resume
            ? await handler.resume(this.io.handlerContext(signal), name)
            : { detail: `no ${intent.action} action to finish it`, result: 'failed' as const };
          const view: ContainerView = { id: '', name, labels: {}, state: 'running', health: 'none' };
          this.path.recordResult(signal, view, intent.action, {
            startedAt: intent.startedAt,
            remediationId: intent.remediationId,
            result: left.result ?? 'failed',
            detail: `interrupted by a restart of the service, then verified: ${left.detail}`,
          });
          return;
        }
        const left = handler?.resume ? await handler.resume(this.io.handlerContext(signal), name) : undefined;
        // By name from one listing: a name read back from the state is never taken as an id prefix.
        const found = await lookupContainer(docker, name);
        const details = found.ok ? found.containers[0] : undefined;
        let result: RemediationResult = 'failed';
        let detail = found.ok ? 'container no longer exists' : found.detail;
        let lastHealthOutput: string | undefined;
        if (details) {
          const v = await verifyRecovery(docker, left?.verifyId ?? details.id, {
            timeoutMs: config.verifyTimeoutMs,
            graceMs: config.verifyGraceMs,
            now: () => this.deps.clock.now(),
          });
          result = v.result;
          detail = v.detail;
          lastHealthOutput = v.lastHealthOutput;
        }
        if (left) detail = `${left.detail}; ${detail}`;
        if (left?.undone && result === 'succeeded') result = 'failed';
        if (left?.settle) detail = `${detail}; ${await left.settle(result === 'succeeded')}`;
        const view: ContainerView = details ?? { id: '', name, labels: {}, state: 'unknown', health: 'none' };
        this.path.recordResult(signal, view, intent.action, {
          startedAt: intent.startedAt,
          remediationId: intent.remediationId,
          result,
          detail: `interrupted by a restart of the service, then verified: ${detail}`,
          lastHealthOutput,
        });
        return;
      } catch (err) {
        if (this.io.stopping()) return;
        const delay = deferDelayMs(tries);
        this.deps.log.warn(
          { err, event: 'resume', container: name, retryInMs: delay },
          'cannot verify an interrupted action yet; retrying',
        );
        await sleep(delay, undefined, { ref: false });
      }
    }
  }
}
