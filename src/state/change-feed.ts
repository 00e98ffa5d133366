// The change feed: a small in-process bus that says "this part of the durable state changed" to
// whoever listens (the status page's event stream). The store's journal reports every write here;
// writes that come in a burst (one remediation writes its record, incident and request together) are
// gathered for a short while and handed on as one change naming every collection touched.
import type { Clock } from '../core/clock.js';

/** What one change says: the collections written since the last one, and a sequence number. */
export interface StateChange {
  readonly seq: number;
  readonly at: number;
  readonly topics: ReadonlyArray<string>;
}

export type ChangeListener = (change: StateChange) => void;

/** Collections whose writes say nothing an operator can see (de-duplication keys). */
const QUIET = new Set(['dedup']);

/** How long writes are gathered before listeners hear of them: well within a second. */
export const GATHER_MS = 50;

export class ChangeFeed {
  private readonly listeners = new Set<ChangeListener>();
  private readonly touched = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;

  constructor(
    private readonly clock: Pick<Clock, 'now'>,
    private readonly gatherMs = GATHER_MS,
  ) {}

  /** A write to a collection (called by the journal; cheap, never throws). */
  touch(collection: string): void {
    if (QUIET.has(collection)) return;
    this.touched.add(collection);
    if (this.timer || this.listeners.size === 0) {
      if (this.listeners.size === 0) this.touched.clear();
      return;
    }
    this.timer = setTimeout(() => this.flush(), this.gatherMs);
    this.timer.unref();
  }

  /** Listens until the returned function is called. */
  subscribe(fn: ChangeListener): () => void {
    this.listeners.add(fn);
    return () => {
      this.listeners.delete(fn);
    };
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  /** Stops the pending hand-over (the service closes). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.touched.clear();
  }

  private flush(): void {
    this.timer = undefined;
    if (this.touched.size === 0) return;
    const change: StateChange = { seq: ++this.seq, at: this.clock.now(), topics: [...this.touched].sort() };
    this.touched.clear();
    for (const fn of this.listeners) {
      try {
        fn(change);
      } catch {
        // A listener's failure (a closed socket) is its own; the others still hear of the change.
      }
    }
  }
}
