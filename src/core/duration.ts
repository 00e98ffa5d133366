// Human durations ("90s", "5m", "1h30m", "2d") to milliseconds; undefined when malformed.
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (/^[0-9]+$/.test(s)) return Number(s) * 1000;
  if (!/^([0-9]+(ms|s|m|h|d))+$/.test(s)) return undefined;
  let total = 0;
  for (const [, n, unit] of s.matchAll(/([0-9]+)(ms|s|m|h|d)/g))
    total += Number(n) * (UNIT_MS[unit ?? 's'] ?? 0);
  return total;
}
