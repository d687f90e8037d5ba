/**
 * Stable error codes of `@qlora/cli`, each tied to one exit status (see {@link EXIT_CODES}).
 *
 * @example
 * const code: CliErrorCode = 'INPUT_INVALID';
 */
export type CliErrorCode =
  | 'USAGE'
  | 'CONFIG_INVALID'
  | 'INPUT_INVALID'
  | 'INPUT_MISSING'
  | 'RUNTIME'
  | 'NOT_AVAILABLE'
  | 'INTERRUPTED';

/**
 * Exit statuses of the `qlora` command. Scripts may rely on them.
 *
 * @example
 * if (status === EXIT_CODES.inputInvalid) console.error('fix the input file');
 */
export const EXIT_CODES = {
  ok: 0,
  /** Something failed while running (I/O, a library error, an unexpected bug). */
  runtime: 1,
  /** Bad arguments or an invalid experiment config. */
  usage: 2,
  /** An input file is missing, unreadable or not in the expected format. */
  inputInvalid: 3,
  /** The command is declared but not wired in this release (it needs the trainer). */
  notAvailable: 4,
  /** Interrupted (SIGINT / Ctrl-C), 128 + 2 as shells report it. */
  interrupted: 130,
} as const;

const EXIT_BY_CODE: Record<CliErrorCode, number> = {
  USAGE: EXIT_CODES.usage,
  CONFIG_INVALID: EXIT_CODES.usage,
  INPUT_INVALID: EXIT_CODES.inputInvalid,
  INPUT_MISSING: EXIT_CODES.inputInvalid,
  RUNTIME: EXIT_CODES.runtime,
  NOT_AVAILABLE: EXIT_CODES.notAvailable,
  INTERRUPTED: EXIT_CODES.interrupted,
};

/**
 * The error class `@qlora/cli` throws. The message reads `[@qlora/cli] <what failed>: expected
 * <x>, got <y>`; `hint` says what to do next; `exitCode` is the process exit status.
 *
 * @example
 * try { await runCompare({ base: 'a.json', ft: 'b.json' }, io); }
 * catch (e) { if (e instanceof CliError) e.exitCode; } // 3 when a.json is not a results file
 */
export class CliError extends Error {
  override readonly name: string = 'CliError';
  readonly code: CliErrorCode;
  readonly exitCode: number;
  readonly hint: string | undefined;

  constructor(
    code: CliErrorCode,
    message: string,
    options: { hint?: string; cause?: unknown } = {},
  ) {
    super(`[@qlora/cli] ${message}`, options.cause === undefined ? {} : { cause: options.cause });
    this.code = code;
    this.exitCode = EXIT_BY_CODE[code];
    this.hint = options.hint;
  }
}
