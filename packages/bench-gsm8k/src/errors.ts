/**
 * The error class `@qlora/bench-gsm8k` throws. Messages read
 * `[@qlora/bench-gsm8k] <what failed>: expected <x>, got <y>`.
 */
export class BenchGsm8kError extends Error {
  override readonly name: string = 'BenchGsm8kError';
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(`[@qlora/bench-gsm8k] ${message}`, options);
    this.code = code;
  }
}
