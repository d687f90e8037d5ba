/**
 * The error class `@qlora/trainer` throws. Messages read
 * `[@qlora/trainer] <what failed>: expected <x>, got <y>`.
 */
export class TrainerError extends Error {
  override readonly name: string = 'TrainerError';
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(`[@qlora/trainer] ${message}`, options);
    this.code = code;
  }
}
