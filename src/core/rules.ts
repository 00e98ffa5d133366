// The optional rules file: maps alerts that carry no `remediation` label to an action, by alertname and
// label matchers. Validated and compiled once at start-up (the file is read by inputs/rules-file.ts); pure.
import { type Static, Type } from 'typebox';
import { Value } from 'typebox/value';
import { type ActionCatalog, NO_ACTION } from './actions.js';

const Rule = Type.Object(
  {
    alertname: Type.Optional(Type.String({ minLength: 1 })),
    match: Type.Optional(Type.Record(Type.String(), Type.String())),
    match_re: Type.Optional(Type.Record(Type.String(), Type.String())),
    /** An action of the service's registry, or "none" (record and escalate only). */
    action: Type.String({ minLength: 1 }),
    params: Type.Optional(Type.Record(Type.String(), Type.String())),
  },
  { additionalProperties: false },
);
export const RulesFileSchema = Type.Object({ rules: Type.Array(Rule) }, { additionalProperties: false });
export type RulesFile = Static<typeof RulesFileSchema>;

export interface CompiledRule {
  readonly alertname?: string | undefined;
  readonly match: ReadonlyArray<[string, string]>;
  readonly matchRe: ReadonlyArray<[string, RegExp]>;
  readonly action: string;
  readonly params: Readonly<Record<string, string>>;
}

const RULE_KEYS = ['alertname', 'match', 'match_re', 'action', 'params'];

/** The allowed actions of a rule, as a list for a message: the registry's, then "none". */
function allowedActions(actions: ActionCatalog): string {
  return [...[...actions].map(([name]) => name), NO_ACTION].join(', ');
}

/** One schema error of a rules document in words: which rule (by its index), which key, what is right. */
function explain(doc: unknown, path: string, message: string, actions: ActionCatalog): string {
  const m = /^\/rules\/(\d+)(?:\/([^/]+))?/.exec(path);
  if (!m) {
    return `${path || '/'} ${message}; the file is a YAML map with one key, rules: a list of {alertname, match, match_re, action, params}`;
  }
  const i = Number(m[1]);
  const key = m[2];
  const rule = (doc as { rules?: unknown[] }).rules?.[i];
  const where = `rules[${i}] (rule ${i + 1} of the list)`;
  if (key === 'action' || (key === undefined && /action/.test(message))) {
    const got = (rule as { action?: unknown } | undefined)?.action;
    return `${where}: ${got === undefined ? 'has no action' : `action ${JSON.stringify(got)} is not an action`}; allowed actions: ${allowedActions(actions)}`;
  }
  if (key !== undefined && !RULE_KEYS.includes(key)) {
    return `${where}: unknown key "${key}"; a rule has ${RULE_KEYS.join(', ')}`;
  }
  return `${where}: ${key ?? 'the rule'} ${message}`;
}

/** Validates a rules document against the schema and the actions the service has (its registry). */
export function compileRules(doc: unknown, source: string, actions: ActionCatalog): CompiledRule[] {
  if (!Value.Check(RulesFileSchema, doc)) {
    const [e] = Value.Errors(RulesFileSchema, doc);
    throw new Error(`${source}: ${explain(doc, e?.instancePath ?? '', e?.message ?? 'is invalid', actions)}`);
  }
  doc.rules.forEach((r, i) => {
    if (r.action !== NO_ACTION && !actions.has(r.action)) {
      throw new Error(`${source}: ${explain(doc, `/rules/${i}/action`, '', actions)}`);
    }
  });
  return doc.rules.map((r, i) => ({
    alertname: r.alertname,
    match: Object.entries(r.match ?? {}),
    matchRe: Object.entries(r.match_re ?? {}).map(([k, re]): [string, RegExp] => {
      try {
        // Anchored like Prometheus matchers.
        return [k, new RegExp(`^(?:${re})$`)];
      } catch (err) {
        throw new Error(`${source}: rules[${i}].match_re.${k}: ${(err as Error).message}`);
      }
    }),
    action: r.action,
    params: r.params ?? {},
  }));
}

/** The first rule matching the alert's labels. */
export function matchRule(
  rules: ReadonlyArray<CompiledRule>,
  labels: Readonly<Record<string, string>>,
): CompiledRule | undefined {
  return rules.find(
    (r) =>
      (r.alertname === undefined || labels.alertname === r.alertname) &&
      r.match.every(([k, v]) => labels[k] === v) &&
      r.matchRe.every(([k, re]) => re.test(labels[k] ?? '')),
  );
}
