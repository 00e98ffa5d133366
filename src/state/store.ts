// Durable state of the healer: per-container policy records, de-duplication keys, incidents,
// remediations, accepted-but-unprocessed signals (the inbox) and the circuit breaker.
// Everything lives in memory and is journalled on every change (see journal.ts).
import { randomUUID } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { ScaleLedger } from '../core/scale.js';
import type { EscalationAlert } from '../notifiers/am-escalations.js';
import { describeTarget } from '../core/targets.js';
import { type ContainerRecord, type DecisionReason, emptyRecord, type Signal } from '../core/types.js';
import { Journal, type JournalLogger, type JournalOptions } from './journal.js';

export type IncidentEventType = 'signal' | 'decision' | 'action' | 'verification' | 'escalation' | 'note';

export interface IncidentEvent {
  readonly at: number;
  readonly type: IncidentEventType;
  readonly source?: string | undefined;
  readonly reason?: DecisionReason | string | undefined;
  readonly action?: string | undefined;
  readonly result?: string | undefined;
  readonly detail?: string | undefined;
  readonly alertname?: string | undefined;
  readonly fingerprint?: string | undefined;
  readonly remediationId?: string | undefined;
}

export interface Incident {
  readonly id: string;
  readonly container: string;
  readonly openedAt: number;
  readonly closedAt?: number | undefined;
  readonly status: 'open' | 'resolved' | 'recovered' | 'given_up' | 'reset';
  readonly alertname?: string | undefined;
  readonly events: ReadonlyArray<IncidentEvent>;
}

export type RemediationState =
  | 'queued'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'timed_out'
  | 'skipped'
  | 'dry_run';

export interface RemediationRecord {
  readonly id: string;
  readonly target: string;
  readonly action: string;
  readonly state: RemediationState;
  readonly source: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly container?: string | undefined;
  readonly reason?: string | undefined;
  readonly requestedBy?: string | undefined;
  readonly skipReason?: string | undefined;
  readonly verification?: string | undefined;
  readonly detail?: string | undefined;
  readonly reclaimedBytes?: number | undefined;
  readonly durationMs?: number | undefined;
  /** A service target names several containers: each one's result, and the names expected. */
  readonly targets?: ReadonlyArray<string> | undefined;
  readonly results?: Readonly<Record<string, { readonly state: RemediationState; readonly detail?: string }>>;
}

/** Worst first: a request is only as good as its worst container. */
const STATE_RANK: RemediationState[] = [
  'failed',
  'timed_out',
  'running',
  'queued',
  'succeeded',
  'dry_run',
  'skipped',
];

/** An image update that was rolled back: the digest (or image id) it would have run, and when. */
export interface RejectedUpdate {
  readonly image: string;
  readonly at: number;
}

export const MAX_REJECTED_UPDATES = 1000;

/** An Alertmanager silence the service created for a target it is remediating. */
export interface SilenceHeld {
  readonly id: string;
  readonly at: number;
  readonly alertname?: string | undefined;
}

/** A forecast target on which no preventive action is taken until a time, and why. */
export interface ForecastHold {
  readonly until: number;
  readonly reason: string;
}

/** Escalation messages about a container held until a time, and who asked. */
export interface Mute {
  readonly until: number;
  readonly by: string;
}

export interface CircuitState {
  readonly actionTimes: ReadonlyArray<number>;
  readonly openUntil?: number | undefined;
}

const MAX_EVENTS_PER_INCIDENT = 200;
export const MAX_CLOSED_INCIDENTS = 2000;
export const MAX_REMEDIATIONS = 5000;
export const DEDUP_TTL_MS = 7 * 24 * 3600 * 1000;
/** How often the caps and the de-duplication expiry are enforced while the service runs. */
export const PRUNE_INTERVAL_MS = 10 * 60 * 1000;
/** A remediation still under way is never pruned, however old. */
const FINAL_STATES: ReadonlySet<RemediationState> = new Set([
  'succeeded',
  'failed',
  'timed_out',
  'skipped',
  'dry_run',
]);

/** What one prune removed. */
export interface PruneResult {
  readonly dedup: number;
  readonly incidents: number;
  readonly remediations: number;
}

export class Store {
  readonly journal: Journal;
  private readonly containers: Map<string, ContainerRecord>;
  private readonly dedup: Map<string, number>;
  private readonly incidents: Map<string, Incident>;
  private readonly remediations: Map<string, RemediationRecord>;
  private readonly inbox: Map<string, Signal>;
  private readonly misc: Map<string, unknown>;
  private doneIds: string[] = [];
  private pruneTimer: NodeJS.Timeout | undefined;

  constructor(
    dir: string,
    private readonly log: JournalLogger,
    opts: Pick<JournalOptions, 'compactEvery' | 'write' | 'onWrite'> = {},
  ) {
    this.journal = new Journal({ dir, name: 'state', log, ...opts }).open();
    this.containers = this.journal.collection('containers');
    this.dedup = this.journal.collection('dedup');
    this.incidents = this.journal.collection('incidents');
    this.remediations = this.journal.collection('remediations');
    this.inbox = this.journal.collection('inbox');
    this.misc = this.journal.collection('misc');
  }

  close(): void {
    this.stopPruning();
    try {
      this.flushDone();
    } finally {
      this.journal.close();
    }
  }

  /** Gathers the writes of fn into one durable write (see Journal.batch). */
  batch<R>(fn: () => R): R {
    return this.journal.batch(fn);
  }

  // Containers ---------------------------------------------------------------------------------

  record(name: string): ContainerRecord | undefined {
    return this.containers.get(name);
  }

  records(): IterableIterator<ContainerRecord> {
    return this.containers.values();
  }

  putRecord(record: ContainerRecord): void {
    this.journal.put('containers', record.name, record);
  }

  // De-duplication -----------------------------------------------------------------------------

  /** Records the key; false when it was already seen (a duplicate delivery). */
  claim(key: string, now: number): boolean {
    const exp = this.dedup.get(key);
    if (exp !== undefined && exp > now) return false;
    this.journal.put('dedup', key, now + DEDUP_TTL_MS);
    return true;
  }

  /** Takes a claim back (its signal could not be accepted, so a retry must not be a duplicate). */
  unclaim(key: string): void {
    this.journal.del('dedup', key);
  }

  // Inbox: signals accepted but not yet decided; replayed after a crash ---------------------------

  accept(signal: Signal): void {
    this.journal.put('inbox', signal.id, signal);
  }

  /**
   * Marks a signal processed. Marks made in the same tick share one write; a crash before it only
   * replays signals whose effects are already recorded (and the policy skips them: in progress,
   * cooldown), never loses one.
   */
  done(signalId: string): void {
    this.doneIds.push(signalId);
    if (this.doneIds.length === 1) setImmediate(() => this.flushDone());
  }

  private flushDone(): void {
    const ids = this.doneIds;
    if (ids.length === 0) return;
    this.doneIds = [];
    try {
      this.journal.batch(() => {
        for (const id of ids) this.journal.del('inbox', id);
      });
    } catch (err) {
      // Kept in the inbox: replayed after a restart, where the policy skips what was already done.
      this.log.error({ err, signals: ids.length }, 'cannot mark signals as processed');
    }
  }

  pending(): Signal[] {
    return [...this.inbox.values()].sort((a, b) => a.receivedAt - b.receivedAt);
  }

  // Incidents --------------------------------------------------------------------------------------

  incident(id: string): Incident | undefined {
    return this.incidents.get(id);
  }

  putIncident(incident: Incident): void {
    const events =
      incident.events.length > MAX_EVENTS_PER_INCIDENT
        ? incident.events.slice(-MAX_EVENTS_PER_INCIDENT)
        : incident.events;
    this.journal.put('incidents', incident.id, { ...incident, events });
  }

  listIncidents(filter: { since?: number; container?: string } = {}): Incident[] {
    const out: Incident[] = [];
    for (const i of this.incidents.values()) {
      if (filter.container && i.container !== filter.container) continue;
      if (filter.since !== undefined && (i.closedAt ?? Number.POSITIVE_INFINITY) < filter.since) continue;
      out.push(i);
    }
    return out.sort((a, b) => b.openedAt - a.openedAt);
  }

  /** The container's open incident, or a new one that the container's record points to. */
  openIncident(container: string, signal: Signal, now: number): string {
    const r = this.record(container);
    const existing = r?.incidentId ? this.incident(r.incidentId) : undefined;
    if (existing && existing.closedAt === undefined) return existing.id;
    const incident: Incident = {
      id: randomUUID(),
      container,
      openedAt: now,
      status: 'open',
      alertname: signal.alertname,
      events: [
        {
          at: now,
          type: 'signal',
          source: signal.source,
          detail: signal.condition,
          alertname: signal.alertname,
          fingerprint: signal.fingerprint,
        },
      ],
    };
    this.putIncident(incident);
    this.putRecord({ ...(r ?? emptyRecord(container)), incidentId: incident.id });
    return incident.id;
  }

  /** Adds an event to the container's open incident, if it has one. */
  addIncidentEvent(container: string, signal: Signal, e: IncidentEvent): void {
    const r = this.record(container);
    const incident = r?.incidentId ? this.incident(r.incidentId) : undefined;
    if (!incident || incident.closedAt !== undefined) return;
    this.putIncident({
      ...incident,
      events: [...incident.events, { ...e, alertname: signal.alertname, fingerprint: signal.fingerprint }],
    });
  }

  /** Closes an open incident; false when there was none to close. */
  closeIncident(id: string | undefined, status: Incident['status'], now: number, detail: string): boolean {
    const incident = id ? this.incident(id) : undefined;
    if (!incident || incident.closedAt !== undefined) return false;
    this.putIncident({
      ...incident,
      status,
      closedAt: now,
      events: [...incident.events, { at: now, type: 'note', result: status, detail }],
    });
    return true;
  }

  openIncidentCount(): number {
    let n = 0;
    for (const i of this.incidents.values()) if (i.closedAt === undefined) n++;
    return n;
  }

  // Remediations -----------------------------------------------------------------------------------

  remediation(id: string): RemediationRecord | undefined {
    return this.remediations.get(id);
  }

  putRemediation(r: RemediationRecord): void {
    this.journal.put('remediations', r.id, r);
  }

  /** Creates or updates the remediation a signal asked for (its target, source, requester, reason). */
  upsertRemediation(
    now: number,
    signal: Signal,
    id: string,
    patch: { state: RemediationState; container: string | undefined; action: string },
  ): void {
    const existing = this.remediation(id);
    this.putRemediation({
      id,
      target: describeTarget(signal.target),
      source: signal.source,
      createdAt: existing?.createdAt ?? now,
      reason: signal.reason,
      requestedBy: signal.requestedBy,
      ...existing,
      ...patch,
      updatedAt: now,
    });
  }

  updateRemediation(now: number, id: string, patch: Partial<RemediationRecord>): void {
    const existing = this.remediation(id);
    if (existing) this.putRemediation({ ...existing, ...patch, updatedAt: now });
  }

  /**
   * Records one container's result; the request's state is the worst of them once every target
   * container has one (still running before that).
   */
  recordRemediationResult(
    now: number,
    id: string,
    container: string,
    state: RemediationState,
    patch: Partial<RemediationRecord> = {},
  ): void {
    const existing = this.remediation(id);
    if (!existing) return;
    const results = { ...existing.results, [container]: { state, detail: patch.detail } };
    const expected = existing.targets ?? [container];
    const done = expected.every((name) => results[name] !== undefined);
    const states = Object.values(results).map((r) => r.state);
    const worst = STATE_RANK.find((st) => states.includes(st)) ?? state;
    this.putRemediation({
      ...existing,
      ...patch,
      container: expected.length === 1 ? container : undefined,
      results,
      state: done ? worst : 'running',
      updatedAt: now,
    });
  }

  listRemediations(): RemediationRecord[] {
    return [...this.remediations.values()];
  }

  // Circuit breaker ----------------------------------------------------------------------------------

  /** The image an update of this container was rolled back from: not applied again by a check run. */
  rejectedUpdate(container: string): RejectedUpdate | undefined {
    return (this.misc.get('rejected_updates') as Record<string, RejectedUpdate> | undefined)?.[container];
  }

  /** Remembers (or, with undefined, forgets) the image a container's update was rolled back from. */
  putRejectedUpdate(container: string, rejected: RejectedUpdate | undefined): void {
    this.putEntry('rejected_updates', container, rejected, (all) => {
      // Bounded: the oldest go first (a host has far fewer containers than this).
      const names = Object.keys(all).sort((a, b) => (all[a]?.at ?? 0) - (all[b]?.at ?? 0));
      for (const n of names.slice(0, Math.max(0, names.length - MAX_REJECTED_UPDATES))) delete all[n];
    });
  }

  /** The Alertmanager silence held for a target while it is remediated (notifiers/silences.ts). */
  silence(target: string): SilenceHeld | undefined {
    return (this.misc.get('silences') as Record<string, SilenceHeld> | undefined)?.[target];
  }

  /** Remembers (or, with undefined, forgets) the silence held for a target. */
  putSilence(target: string, s: SilenceHeld | undefined): void {
    this.putEntry('silences', target, s);
  }

  silencedTargets(): string[] {
    return Object.keys((this.misc.get('silences') as Record<string, SilenceHeld> | undefined) ?? {});
  }

  /** The escalation alerts posted to Alertmanager and not resolved yet, by key (notifiers/am-escalations.ts). */
  /** A container whose escalation messages are held until a time ("Silence 1 h" from the chat). */
  mute(target: string): Mute | undefined {
    return (this.misc.get('mutes') as Record<string, Mute> | undefined)?.[target];
  }

  /** Sets (or, with undefined, lifts) a container's mute; ended mutes are dropped on the way. */
  putMute(target: string, m: Mute | undefined, now: number): void {
    this.putEntry('mutes', target, m, (all) => {
      for (const [k, v] of Object.entries(all)) if (v.until <= now) delete all[k];
    });
  }

  /** When the preventive actions of forecasts were taken (the daily cap counts them). */
  forecastActions(): number[] {
    return (this.misc.get('forecast_actions') as number[] | undefined) ?? [];
  }

  putForecastActions(times: ReadonlyArray<number>): void {
    this.journal.put('misc', 'forecast_actions', [...times]);
  }

  /** Forecast targets held from preventive actions (one did not help), by `kind:target`. */
  forecastHolds(): Record<string, ForecastHold> {
    return (this.misc.get('forecast_holds') as Record<string, ForecastHold> | undefined) ?? {};
  }

  putForecastHold(key: string, h: ForecastHold | undefined, now: number): void {
    this.putEntry('forecast_holds', key, h, (all) => {
      for (const [k, v] of Object.entries(all)) if (v.until <= now) delete all[k];
    });
  }

  escalationAlerts(): Array<[string, EscalationAlert]> {
    return Object.entries(
      (this.misc.get('escalation_alerts') as Record<string, EscalationAlert> | undefined) ?? {},
    );
  }

  putEscalationAlert(key: string, a: EscalationAlert | undefined): void {
    this.putEntry('escalation_alerts', key, a);
  }

  /** Sets (or, with undefined, deletes) one entry of a map kept whole under a misc key, in one write. */
  private putEntry<T>(
    name: string,
    key: string,
    value: T | undefined,
    bound?: (all: Record<string, T>) => void,
  ): void {
    const all = { ...((this.misc.get(name) as Record<string, T> | undefined) ?? {}) };
    if (value !== undefined) all[key] = value;
    else if (key in all) delete all[key];
    else return;
    bound?.(all);
    this.journal.put('misc', name, all);
  }

  /** The services an alert scaled up, until they are back at their baseline (core/scale.ts). */
  scaleLedger(): ScaleLedger {
    return (this.misc.get('scale_ledger') as ScaleLedger | undefined) ?? {};
  }

  putScaleLedger(l: ScaleLedger): void {
    this.journal.put('misc', 'scale_ledger', l);
  }

  circuit(): CircuitState {
    return (this.misc.get('circuit') as CircuitState | undefined) ?? { actionTimes: [] };
  }

  putCircuit(state: CircuitState): void {
    this.journal.put('misc', 'circuit', state);
  }

  // Housekeeping -----------------------------------------------------------------------------------

  /**
   * Prunes now (a state that grew while the service was down shrinks at start-up), then every
   * intervalMs. The timer does not keep the process alive; close() stops it.
   */
  startPruning(clock: Clock, intervalMs = PRUNE_INTERVAL_MS): void {
    this.stopPruning();
    const run = () => {
      try {
        this.prune(clock.now());
      } catch (err) {
        // Nothing was removed (the deletes are one write, rolled back); the next run tries again.
        this.log.error(
          { err, event: 'prune_failed' },
          `cannot prune the state (${(err as Error).message}); it is retried in ${Math.round(intervalMs / 1000)} s`,
        );
      }
    };
    run();
    this.pruneTimer = setInterval(run, intervalMs);
    this.pruneTimer.unref();
  }

  stopPruning(): void {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    this.pruneTimer = undefined;
  }

  /**
   * Drops expired de-duplication keys, the oldest closed incidents beyond MAX_CLOSED_INCIDENTS and the
   * oldest finished remediations beyond MAX_REMEDIATIONS, in one write; then, once most of what is on
   * disk is dead, compacts in the background so the files shrink too. Throws StateWriteError (nothing
   * removed) when the disk refuses.
   */
  prune(now: number): PruneResult {
    const dedup: string[] = [];
    for (const [k, exp] of this.dedup) if (exp <= now) dedup.push(k);
    const closed = [...this.incidents.values()].filter((i) => i.closedAt !== undefined);
    const incidents =
      closed.length > MAX_CLOSED_INCIDENTS
        ? closed
            .sort((a, b) => (a.closedAt ?? 0) - (b.closedAt ?? 0))
            .slice(0, closed.length - MAX_CLOSED_INCIDENTS)
        : [];
    const finished = [...this.remediations.values()].filter((r) => FINAL_STATES.has(r.state));
    const remediations =
      finished.length > MAX_REMEDIATIONS
        ? finished.sort((a, b) => a.updatedAt - b.updatedAt).slice(0, finished.length - MAX_REMEDIATIONS)
        : [];
    const removed = { dedup: dedup.length, incidents: incidents.length, remediations: remediations.length };
    if (dedup.length + incidents.length + remediations.length === 0) return removed;
    this.journal.batch(() => {
      for (const k of dedup) this.journal.del('dedup', k);
      for (const i of incidents) this.journal.del('incidents', i.id);
      for (const r of remediations) this.journal.del('remediations', r.id);
    });
    this.journal.compactIfWasteful();
    return removed;
  }
}
