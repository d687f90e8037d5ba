/**
 * The error class `@qlora/bench-mmlu` throws. Messages read
 * `[@qlora/bench-mmlu] <what failed>: expected <x>, got <y>`.
 */
export class BenchMmluError extends Error {
  override readonly name: string = 'BenchMmluError';
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(`[@qlora/bench-mmlu] ${message}`, options);
    this.code = code;
  }
}
