// The calm way back down, as an input: once every alert that scaled a service up has resolved, and the
// stabilisation window (SCALE_DOWN_STABILIZATION) has passed since then or since its last step, the
// service is asked for one scale_down, never below the replicas it had before the first alert (nor its
// minimum). Each step is a request like any other: through the engine and the one policy, audited.
// What is due is read from the durable ledger (core/scale.ts), so a restart of the service keeps it.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Clock } from '../core/clock.js';
import { dueStepDowns, steppedDown } from '../core/scale.js';
import { requestSignal } from '../core/signals.js';
import { parseTarget } from '../core/targets.js';
import type { Engine } from '../engine/engine.js';
import type { Store } from '../state/store.js';

export interface ScaleDownDeps {
  readonly config: Config;
  readonly engine: Pick<Engine, 'request'>;
  readonly store: Store;
  readonly clock: Clock;
  readonly log: Logger;
}

/** How often the ledger is read: a fraction of the window, between 1 s and 15 s. */
export const tickMs = (windowMs: number): number =>
  Math.min(15_000, Math.max(1000, Math.floor(windowMs / 5)));

export class ScaleDown {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: ScaleDownDeps) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), tickMs(this.deps.config.scale.downStabilizationMs));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Asks every service due a step down for one; returns how many were asked. */
  tick(): number {
    const { store, clock, config, engine, log } = this.deps;
    const now = clock.now();
    let asked = 0;
    try {
      const windowMs = config.scale.downStabilizationMs;
      for (const e of dueStepDowns(store.scaleLedger(), now, windowMs)) {
        // The step is noted first: one request per window, even if this one is not decided yet.
        store.batch(() => store.putScaleLedger(steppedDown(store.scaleLedger(), e.key, now)));
        const quietFor = Math.round((now - (e.quietSince ?? now)) / 1000);
        engine.request(
          requestSignal({
            id: randomUUID(),
            source: 'schedule',
            target: parseTarget(e.key),
            action: 'scale_down',
            requestedBy: 'scale-down',
            reason: `the alerts that scaled it up resolved ${quietFor}s ago (SCALE_DOWN_STABILIZATION=${windowMs / 1000}s); back towards ${e.baseline}`,
            params: { step: '1', floor: String(e.baseline) },
            now,
          }),
        );
        asked++;
      }
    } catch (err) {
      // The state refused a write: the ledger is read again at the next tick.
      log.error(
        { err, event: 'scale_down' },
        'cannot ask for a scale-down step; tried again at the next tick',
      );
    }
    return asked;
  }
}
