// The `.env` story of `npm start` and `npm run cli`: both pass `--dotenv=.env`, and the file, when it
// (Not Node's --env-file flag: Node 20 reads that one even after the script name and fails on a missing file.)
// exists, fills in the variables the environment does not set (the real environment wins, as with
// compose). Parsed by node:util parseEnv, the parser of Node's own --env-file (KEY=value, quotes,
// comments, `export `). A missing file is no error: `.env` is optional.
import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';

export interface EnvFileResult {
  /** The file read, or undefined when it does not exist. */
  readonly path: string | undefined;
  /** The keys taken from the file (the ones the environment did not set). */
  readonly applied: ReadonlyArray<string>;
}

/** Fills `env` from the file at `path` where `env` has no value yet. Throws on an unreadable file. */
export function applyEnvFile(path: string, env: Record<string, string | undefined>): EnvFileResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { path: undefined, applied: [] };
    throw new Error(`--dotenv: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  const applied: string[] = [];
  for (const [key, value] of Object.entries(parseEnv(text))) {
    if (env[key] !== undefined) continue;
    env[key] = value;
    applied.push(key);
  }
  return { path, applied };
}

/** `--dotenv=PATH` or `--dotenv PATH` in argv, else undefined. */
export function envFileArg(argv: ReadonlyArray<string>): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a.startsWith('--dotenv=')) return a.slice('--dotenv='.length);
    if (a === '--dotenv') return argv[i + 1];
  }
  return undefined;
}
