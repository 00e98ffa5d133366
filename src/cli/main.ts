// The CLI's entry: parse argv against the option table, print the usage or find the command in the
// command table, build the admin API client, run the command, and turn its result or error into an
// exit status. Arguments are parsed with node:util parseArgs (commander 15 needs Node 22; this
// service runs on 20).
import { parseArgs } from 'node:util';
import { createAdminClient } from './api.js';
import { applyEnvFile } from '../env-file.js';
import { VERSION } from '../version.js';
import { checkArgs, findCommand, unknownCommand, usage } from './commands.js';
import { CliError, type Io } from './io.js';
import { OPTIONS, type Parsed } from './options.js';

/** Runs one command line; resolves to the exit status, or rejects (a CliError says what to fix). */
export async function run(argv: string[], io: Io): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new CliError(`${(err as Error).message}\n\n${usage()}`, 2);
  }
  const values = parsed.values;
  // `npm run cli` passes --dotenv=.env: the same tokens, PORT and HOST as `npm start` reads.
  const env: Record<string, string | undefined> = { ...io.env };
  if (values.dotenv) {
    try {
      applyEnvFile(values.dotenv, env);
    } catch (err) {
      throw new CliError((err as Error).message, 2);
    }
  }
  const [name, ...args] = parsed.positionals;
  if (values.version) {
    io.out(`autoheal-nexus ${VERSION}\n`);
    return 0;
  }
  if (values.help || name === undefined || name === 'help') {
    (name === undefined && !values.help ? io.err : io.out)(usage());
    return name === undefined && !values.help ? 2 : 0;
  }
  const command = findCommand(name);
  if (!command) throw new CliError(unknownCommand(name), 2);
  // The client first: a missing token or a bad URL is reported before a wrong argument count.
  const api = createAdminClient(values, env);
  checkArgs(command, args);
  return command.run({ api, io, values }, args);
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text;
}

/** The process: its argv and streams in, its exit status out. */
export function main(): void {
  const io: Io = {
    env: process.env,
    out: (s) => void process.stdout.write(s),
    err: (s) => void process.stderr.write(s),
    errIsTTY: Boolean(process.stderr.isTTY),
    readStdin: () => readAll(process.stdin),
  };
  run(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      if (err instanceof CliError) {
        process.stderr.write(`autoheal-nexus: ${err.message}\n`);
        process.exitCode = err.exitCode;
      } else {
        process.stderr.write(`autoheal-nexus: unexpected error: ${(err as Error).stack ?? err}\n`);
        process.exitCode = 1;
      }
    },
  );
}
