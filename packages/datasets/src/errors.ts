/**
 * The error class `@qlora/datasets` throws. Messages read
 * `[@qlora/datasets] <what failed>: expected <x>, got <y>`.
 */
export class DatasetsError extends Error {
  override readonly name: string = 'DatasetsError';
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(`[@qlora/datasets] ${message}`, options);
    this.code = code;
  }
}
