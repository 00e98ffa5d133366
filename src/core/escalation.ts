// The escalation vocabulary: the kinds of event the engine hands to a human channel (healing failed,
// the breaker opened, a critical alert arrived, an escalated container recovered). Here in core/ so the
// engine, the metrics and the notifiers share one list; what an escalation carries and how it is
// delivered stay with the notifiers.
export const ESCALATION_KINDS = [
  'given_up',
  'verification_failed',
  'circuit_open',
  'crash_loop',
  'flapping',
  'alert',
  'recovered',
  /** A check run found image updates for autoheal.update=notify containers: listed, nothing changed. */
  'updates_available',
  /** Swarm paused or rolled back a service's update by itself. */
  'swarm_update',
] as const;
export type EscalationKind = (typeof ESCALATION_KINDS)[number];
