// Alertmanager silences while the service heals, pure: the silence a remediation started from an alert
// asks for (that alert's own labels as equality matchers, the service named as its creator, why, and an
// end that bounds it even if the service never comes back to expire it), and which ends of a
// remediation expire it. Alertmanager's API v2 shapes (PostableSilence).

export interface SilenceMatcher {
  readonly name: string;
  readonly value: string;
  readonly isRegex: false;
  readonly isEqual: true;
}

export interface SilenceRequest {
  readonly matchers: ReadonlyArray<SilenceMatcher>;
  readonly startsAt: string;
  readonly endsAt: string;
  readonly createdBy: string;
  readonly comment: string;
}

export const SILENCE_CREATOR = 'autoheal-nexus';

/** Longest label value kept in a matcher; Alertmanager takes more, a silence needs no more. */
const MAX_VALUE = 1024;

/**
 * The silence for one alert while its remediation runs: exactly that alert (every label it carries),
 * from now until `maxMs` from now at the latest. Undefined for an alert without labels to match on.
 */
export function silenceRequest(o: {
  readonly labels: Readonly<Record<string, string>>;
  readonly now: number;
  readonly maxMs: number;
  readonly target: string;
  readonly action: string;
  readonly remediationId: string;
}): SilenceRequest | undefined {
  const matchers = Object.entries(o.labels)
    .filter(([name, value]) => name !== '' && value !== '' && value.length <= MAX_VALUE)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, value]): SilenceMatcher => ({ name, value, isRegex: false, isEqual: true }));
  if (!matchers.some((m) => m.name === 'alertname')) return undefined;
  return {
    matchers,
    startsAt: new Date(o.now).toISOString(),
    endsAt: new Date(o.now + o.maxMs).toISOString(),
    createdBy: SILENCE_CREATOR,
    comment: `AutoHeal-Nexus is remediating ${o.target} (${o.action}, remediation ${o.remediationId}); expired when it is verified, or at once if the service gives up`,
  };
}

/**
 * The silence an operator asks for from the chat ("Silence 1 h"): every alert about one container,
 * whatever its name (the `container` label our rules and cAdvisor-based rules carry), until `until`.
 */
export function operatorSilence(o: {
  readonly container: string;
  readonly now: number;
  readonly until: number;
  readonly by: string;
}): SilenceRequest {
  return {
    matchers: [{ name: 'container', value: o.container.slice(0, MAX_VALUE), isRegex: false, isEqual: true }],
    startsAt: new Date(o.now).toISOString(),
    endsAt: new Date(Math.max(o.until, o.now + 60_000)).toISOString(),
    createdBy: SILENCE_CREATOR,
    comment: `Silenced from Telegram by ${o.by} for ${o.container}`,
  };
}

/** How a container's remediation ended, as far as its silence goes. */
export type RemediationEnd = 'recovered' | 'given_up' | 'final' | 'retry' | 'none';

/**
 * Whether the silence ends with this step: verified (the humans need not hear), given up or failed
 * for good (they must hear now). A retry keeps it: the service is still on it.
 */
export const expiresSilence = (end: RemediationEnd): boolean => end !== 'retry';
