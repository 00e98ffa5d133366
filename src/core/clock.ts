// Time is injected so that decisions and tests never depend on the wall clock or sleep.
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
