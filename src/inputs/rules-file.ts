// Reads the optional rules file (YAML) from disk; validation and matching are pure, in core/rules.ts.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { defaultActions } from '../actions/registry.js';
import type { ActionCatalog } from '../core/actions.js';
import { type CompiledRule, compileRules } from '../core/rules.js';

/** The rules, checked against the service's actions (the default registry unless one is given). */
export function loadRulesFile(path: string, actions: ActionCatalog = defaultActions()): CompiledRule[] {
  let doc: unknown;
  try {
    doc = parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`RULES_FILE: cannot read ${path}: ${(err as Error).message}`);
  }
  return compileRules(doc, `RULES_FILE ${path}`, actions);
}
