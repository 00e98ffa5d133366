// What every part of the CLI shares: the process's streams and environment behind one small port (so
// commands can be run without a process), and the one error kind a user can act on.

export interface Io {
  readonly env: Readonly<Record<string, string | undefined>>;
  out(text: string): void;
  err(text: string): void;
  readonly errIsTTY: boolean;
  readStdin(): Promise<string>;
}

/** A failure the user can act on: printed as one line, with its exit status. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}
