/**
 * The error class `@qlora/bench-hellaswag` throws. Messages read
 * `[@qlora/bench-hellaswag] <what failed>: expected <x>, got <y>`.
 */
export class BenchHellaswagError extends Error {
  override readonly name: string = 'BenchHellaswagError';
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(`[@qlora/bench-hellaswag] ${message}`, options);
    this.code = code;
  }
}
