/**
 * The error class `@qlora/bench-core` throws. Messages read
 * `[@qlora/bench-core] <what failed>: expected <x>, got <y>`.
 */
export class BenchCoreError extends Error {
  override readonly name: string = 'BenchCoreError';
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(`[@qlora/bench-core] ${message}`, options);
    this.code = code;
  }
}
