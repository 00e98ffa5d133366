// Intake: a signal is claimed (de-duplicated by its key) and recorded in the inbox before any work
// starts, so an answered webhook is never lost and a redelivered alert is never acted on twice.
import type { Signal } from '../core/types.js';
import type { Store } from '../state/store.js';

/** The key that makes a redelivered signal a duplicate; undefined for signals that are never duplicates. */
export function dedupKey(s: Signal): string | undefined {
  if (s.source === 'alertmanager' && s.fingerprint)
    return `am:${s.fingerprint}:${s.startsAt ?? ''}:${s.status}`;
  return undefined;
}

/**
 * Claims and records signals in the inbox; returns those accepted and the duplicates with their key.
 * Call inside one store batch (one write, all or nothing).
 */
export function acceptSignals(
  store: Store,
  signals: ReadonlyArray<Signal>,
  now: number,
): { accepted: Signal[]; duplicates: Array<[Signal, string]> } {
  const accepted: Signal[] = [];
  const duplicates: Array<[Signal, string]> = [];
  for (const s of signals) {
    const key = dedupKey(s);
    if (key !== undefined && !store.claim(key, now)) {
      duplicates.push([s, key]);
      continue;
    }
    store.accept(s);
    accepted.push(s);
  }
  return { accepted, duplicates };
}
