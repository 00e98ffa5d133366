// The vocabulary shared by inputs, decisions and effects: signals, targets, container views and decisions.

import type { ActionName } from './actions.js';

export type { ActionName } from './actions.js';

export type SignalSource = 'alertmanager' | 'docker_event' | 'reconcile' | 'manual' | 'schedule';

/** What a failure signal says is wrong, when an input knows (the watcher does; alerts say it in labels). */
export type Condition = 'unhealthy' | 'exited' | 'oom' | 'crash_loop' | 'alert' | 'requested' | 'retry';

/**
 * What a signal names, before it is resolved against the engine: a container (name or id), a Compose
 * service (optionally of one project), a whole Compose project, a Swarm service, or the host. See
 * core/targets.ts for the grammar an operator writes and the resolver.
 */
export type TargetSelector =
  | { readonly kind: 'container'; readonly name: string }
  | { readonly kind: 'service'; readonly service: string; readonly project?: string | undefined }
  | { readonly kind: 'project'; readonly project: string }
  | { readonly kind: 'swarm'; readonly service: string }
  | { readonly kind: 'host' }
  | { readonly kind: 'none' };

/** A normalised input: every input (webhook, engine events, reconcile, manual API, schedule) produces these. */
export interface Signal {
  readonly id: string;
  readonly source: SignalSource;
  readonly status: 'firing' | 'resolved';
  readonly receivedAt: number;
  readonly condition: Condition;
  readonly target: TargetSelector;
  /** The requested action, unvalidated (from the remediation label, the rules file, the API or a default). */
  readonly action: string | undefined;
  readonly params: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly alertname?: string | undefined;
  readonly fingerprint?: string | undefined;
  readonly startsAt?: string | undefined;
  readonly severity?: string | undefined;
  readonly host?: string | undefined;
  readonly generatorURL?: string | undefined;
  readonly externalURL?: string | undefined;
  readonly requestedBy?: string | undefined;
  readonly reason?: string | undefined;
  readonly force?: boolean | undefined;
  readonly dryRun?: boolean | undefined;
  /** Set by the manual API so its caller can follow the remediation it asked for. */
  readonly remediationId?: string | undefined;
}

/** What a retry keeps of the signal that started an incident, so its escalation still names the alert. */
export type SignalOrigin = Pick<
  Signal,
  | 'source'
  | 'alertname'
  | 'fingerprint'
  | 'severity'
  | 'labels'
  | 'annotations'
  | 'generatorURL'
  | 'externalURL'
>;

export const originOf = (s: Signal): SignalOrigin => ({
  source: s.source,
  alertname: s.alertname,
  fingerprint: s.fingerprint,
  severity: s.severity,
  labels: s.labels,
  annotations: s.annotations,
  generatorURL: s.generatorURL,
  externalURL: s.externalURL,
});

export type HealthStatus = 'healthy' | 'unhealthy' | 'starting' | 'none';

/** What the policy needs to know about one container, as the engine reported it. */
export interface ContainerView {
  readonly id: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly state: string;
  readonly health: HealthStatus;
  readonly startedAt?: number | undefined;
  readonly restartCount?: number | undefined;
  readonly stopTimeoutSec?: number | undefined;
  /** A service acted on as a whole (a Compose or Swarm service): its replicas now (undefined: global). */
  readonly replicas?: number | undefined;
}

/** Durable per-container policy state, keyed by container name (ids change when a container is recreated). */
export interface ContainerRecord {
  readonly name: string;
  /**
   * Actions carried out on the container (any source, forced or not, whatever their result; an
   * interrupted one too) since it was last stable: healthy for STABLE_PERIOD, or STABLE_PERIOD past
   * its last verified recovery. Skips never count. See "What counts as an attempt" in the guide.
   */
  readonly attempts: number;
  /** Consecutive failed remediations: drives the exponential cooldown. */
  readonly failures: number;
  readonly lastActionAt?: number | undefined;
  readonly lastAction?: string | undefined;
  readonly lastResult?: string | undefined;
  readonly nextAllowedAt?: number | undefined;
  readonly givenUp: boolean;
  readonly givenUpAt?: number | undefined;
  readonly pausedUntil?: number | undefined;
  readonly healthySince?: number | undefined;
  /** When the last action on the container was verified as a recovery. */
  readonly healedAt?: number | undefined;
  /** When a human was told the container is flapping (at most once per verified recovery). */
  readonly flappingAt?: number | undefined;
  /** Set when an operator stopped the container on purpose; cleared when it starts again. */
  readonly stoppedByOperator?: boolean | undefined;
  /**
   * The intent recorded before an action runs; survives a crash of the service. It names the signal
   * that asked for it, so that a replay of that signal verifies this action instead of starting another.
   */
  readonly inFlight?:
    | {
        readonly action: ActionName;
        readonly startedAt: number;
        readonly remediationId: string;
        readonly signalId?: string | undefined;
      }
    | undefined;
  /** The signal whose action was last started on this container (a replay of it is never acted on again). */
  readonly lastSignalId?: string | undefined;
  readonly incidentId?: string | undefined;
  /** A retry scheduled after a failed remediation; cancelled when its alert resolves. */
  readonly pendingRetry?:
    | { readonly action: ActionName; readonly at: number; readonly origin?: SignalOrigin | undefined }
    | undefined;
}

export const emptyRecord = (name: string): ContainerRecord => ({
  name,
  attempts: 0,
  failures: 0,
  givenUp: false,
});

export const SKIP_REASONS = [
  'duplicate',
  'resolved',
  'other_host',
  'no_target',
  'unknown_action',
  'invalid_target',
  'target_not_found',
  'target_ambiguous',
  'self',
  'not_in_scope',
  'protected',
  'action_not_allowed',
  'paused',
  'stopped_by_operator',
  'start_period',
  'in_progress',
  'given_up',
  'max_attempts',
  'flapping',
  'cooldown_active',
  'circuit_open',
  'already_healthy',
  'no_action',
  /** An action the container must opt in to (update), and it has not, or not now. */
  'not_opted_in',
  /** A replica not acted on because the one before it failed (an update goes one at a time). */
  'held_back',
  /** A scale step the service's limits do not allow (autoheal.scale.min/max, SCALE_MIN/SCALE_MAX). */
  'scale_limit',
  /** A scale step that is not a whole number from 1 to 100. */
  'invalid_step',
] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];
export const ACT_REASONS = ['ok', 'dry_run', 'forced'] as const;
export type ActReason = (typeof ACT_REASONS)[number];
export const DECISION_REASONS = [...ACT_REASONS, ...SKIP_REASONS] as const;
export type DecisionReason = ActReason | SkipReason;

export type Decision =
  | {
      readonly verdict: 'act';
      readonly reason: ActReason;
      readonly action: ActionName;
      readonly dryRun: boolean;
    }
  | { readonly verdict: 'skip'; readonly reason: SkipReason; readonly detail?: string | undefined };

export const REMEDIATION_RESULTS = ['succeeded', 'failed', 'timed_out', 'dry_run', 'skipped'] as const;
export type RemediationResult = (typeof REMEDIATION_RESULTS)[number];
