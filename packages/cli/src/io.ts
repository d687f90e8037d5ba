/**
 * Where a command writes: anything with `write(text)`. `isTTY` and `columns` decide whether
 * progress bars are drawn (a real `process.stderr` satisfies this interface).
 *
 * @example
 * const out: CliOutput = { write: (text) => void chunks.push(text), isTTY: false };
 */
export interface CliOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/**
 * Everything a command may touch of its process, injected so commands run in-process in tests:
 * output streams, the working directory relative paths resolve against, and the environment.
 *
 * @example
 * await runCli(['compare', 'base.json', 'ft.json'], createNodeIo());
 */
export interface CliIo {
  stdout: CliOutput;
  stderr: CliOutput;
  cwd: string;
  env: Readonly<Record<string, string | undefined>>;
  /** Aborted on SIGINT; long commands check it between steps. */
  signal?: AbortSignal;
}

/**
 * The real process: `process.stdout`, `process.stderr`, `process.cwd()`, `process.env`.
 *
 * @example
 * const io = createNodeIo();
 * io.stdout.write('hello\n');
 */
export function createNodeIo(signal?: AbortSignal): CliIo {
  const io: CliIo = {
    stdout: process.stdout,
    stderr: process.stderr,
    cwd: process.cwd(),
    env: process.env,
  };
  if (signal !== undefined) io.signal = signal;
  return io;
}

/**
 * An in-memory `CliIo` for tests and embedding: collects stdout and stderr as strings.
 *
 * @example
 * const io = createBufferedIo({ cwd: '/tmp' });
 * await runCli(['--version'], io);
 * io.stdoutText(); // '0.0.0\n'
 */
export function createBufferedIo(
  options: { cwd?: string; env?: Record<string, string | undefined>; isTTY?: boolean } = {},
): CliIo & { stdoutText(): string; stderrText(): string } {
  const out: string[] = [];
  const err: string[] = [];
  const isTTY = options.isTTY ?? false;
  return {
    stdout: { write: (text: string) => out.push(text), isTTY, columns: 100 },
    stderr: { write: (text: string) => err.push(text), isTTY, columns: 100 },
    cwd: options.cwd ?? process.cwd(),
    env: options.env ?? {},
    stdoutText: () => out.join(''),
    stderrText: () => err.join(''),
  };
}
