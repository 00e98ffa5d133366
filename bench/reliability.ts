// Reliability script (issue 10): runs fault scenarios against the real service process and the real
// Docker engine, and prints a table: scenario | promise | observed | pass. Exit code 1 when any check
// fails. Each scenario has its own timeout and removes what it made (containers of this run's compose
// project, processes by pid, mounts, directories). Loopback only; test containers use --network none.
// Needs root (tmpfs mounts, a private dockerd) and the test image (test/fixtures/build-test-image.sh).
//
// Run: npm run bench:reliability            (about 5 minutes)
//      npx tsx bench/reliability.ts --only kill9,disk-full
//      npx tsx bench/reliability.ts --list
import { docker as mainDocker, ensureTestImage } from '../test/fixtures/docker.js';
import {
  type Check,
  cleanupCurrent,
  log,
  PROJECT,
  removeRunContainers,
  runScenario,
  type Scenario,
} from './reliability/harness.js';
import { corruptState } from './reliability/scenarios/corrupt-state.js';
import { diskFull } from './reliability/scenarios/disk-full.js';
import { duplicates } from './reliability/scenarios/duplicates.js';
import { engineRestart } from './reliability/scenarios/engine-restart.js';
import { hostileNames } from './reliability/scenarios/hostile-names.js';
import { kill9 } from './reliability/scenarios/kill9.js';
import { readOnlyDataDir } from './reliability/scenarios/readonly-datadir.js';
import { secrets } from './reliability/scenarios/secrets.js';
import { sigterm } from './reliability/scenarios/sigterm.js';
import { slowClients } from './reliability/scenarios/slow-clients.js';
import { telegram } from './reliability/scenarios/telegram.js';

const SCENARIOS: Scenario[] = [
  engineRestart,
  kill9,
  sigterm,
  diskFull,
  corruptState,
  telegram,
  duplicates,
  slowClients,
  hostileNames,
  secrets,
  readOnlyDataDir,
];

function parseArgs(argv: string[]): { only?: string[]; skip: string[]; list: boolean } {
  const out: { only?: string[]; skip: string[]; list: boolean } = { skip: [], list: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const value = () => (a.includes('=') ? a.slice(a.indexOf('=') + 1) : (argv[++i] ?? ''));
    if (a === '--list') out.list = true;
    else if (a.startsWith('--only')) out.only = value().split(',').filter(Boolean);
    else if (a.startsWith('--skip')) out.skip = value().split(',').filter(Boolean);
    else throw new Error(`unknown argument ${a}: use --only a,b  --skip a,b  --list`);
  }
  return out;
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function table(rows: Array<{ scenario: string; check: Check }>): string {
  const out = ['| scenario | promise | observed | pass |', '| --- | --- | --- | --- |'];
  for (const { scenario, check } of rows) {
    out.push(
      `| ${cell(scenario)} | ${cell(check.promise)} | ${cell(check.observed)} | ${check.pass ? 'yes' : '**NO**'} |`,
    );
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.list) {
    for (const s of SCENARIOS) process.stdout.write(`${s.name.padEnd(18)} ${s.title}\n`);
    return;
  }
  const unknown = [...(args.only ?? []), ...args.skip].filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length) throw new Error(`unknown scenario ${unknown.join(', ')}: see --list`);
  const chosen = SCENARIOS.filter(
    (s) => (!args.only || args.only.includes(s.name)) && !args.skip.includes(s.name),
  );
  if (process.getuid?.() !== 0) log('warning: not root; the tmpfs and private-dockerd scenarios will fail');
  await ensureTestImage();
  // Interrupted: the scenario under way still removes what it made (processes, containers, mounts).
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: cleaning up`);
      void cleanupCurrent()
        .then(() => removeRunContainers(mainDocker))
        .finally(() => process.exit(130));
    });
  }
  const t0 = Date.now();
  const rows: Array<{ scenario: string; check: Check }> = [];
  for (const s of chosen) {
    const { checks, ms } = await runScenario(s);
    for (const check of checks) rows.push({ scenario: `${s.name} (${Math.round(ms / 1000)} s)`, check });
    if (checks.length === 0) {
      rows.push({ scenario: s.name, check: { promise: 'records a check', observed: 'none', pass: false } });
    }
  }
  const left = await removeRunContainers(mainDocker).catch(() => 0);
  if (left) log(`removed ${left} container(s) of ${PROJECT} left behind`);
  const failed = rows.filter((r) => !r.check.pass).length;
  process.stdout.write(`\n${table(rows)}\n\n`);
  process.stdout.write(
    `${rows.length - failed} of ${rows.length} checks passed in ${Math.round((Date.now() - t0) / 1000)} s` +
      ` (node ${process.version}, ${new Date().toISOString()})\n`,
  );
  // Streams of the engine and stray timers must not keep the script alive.
  process.exit(failed ? 1 : 0);
}

main().catch((err) => {
  process.stderr.write(`bench:reliability: ${(err as Error).stack ?? err}\n`);
  process.exit(2);
});
