#!/usr/bin/env node
// `npm start` and `npm run cli` run this first (prestart, precli): it builds (`npm run build`) only when
// an input is newer than the last build's stamp (dist/.build-stamp, written by the build), so a start
// with nothing changed costs no compile. Inputs: src, routes, the tsconfig files and package.json.
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const STAMP = join(root, 'dist', '.build-stamp');
const INPUTS = ['src', 'routes', 'tsconfig.json', 'tsconfig.build.json', 'package.json'];

/** The newest file under `path` (a file or a directory), as [mtimeMs, path]. */
function newest(path) {
  let st;
  try {
    st = statSync(path);
  } catch {
    return [0, path];
  }
  if (!st.isDirectory()) return [st.mtimeMs, path];
  let best = [st.mtimeMs, path];
  for (const name of readdirSync(path)) {
    const found = newest(join(path, name));
    if (found[0] > best[0]) best = found;
  }
  return best;
}

let stamp = 0;
try {
  stamp = statSync(STAMP).mtimeMs;
} catch {
  stamp = 0;
}
const [changedAt, changed] = INPUTS.map((p) => newest(join(root, p))).reduce((a, b) => (b[0] > a[0] ? b : a));
if (stamp > 0 && changedAt <= stamp) process.exit(0);
process.stderr.write(
  `autoheal-nexus: building (${stamp === 0 ? 'no build yet' : `${changed.slice(root.length)} changed since the last build`})\n`,
);
// npm's own path when run by npm (npm_execpath), so the same npm builds; else npm from PATH.
const npm = process.env.npm_execpath;
execFileSync(npm ? process.execPath : 'npm', [...(npm ? [npm] : []), 'run', '--silent', 'build'], {
  cwd: root,
  stdio: 'inherit',
});
