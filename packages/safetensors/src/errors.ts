/**
 * The error class `@qlora/safetensors` throws. Messages read
 * `[@qlora/safetensors] <what failed>: expected <x>, got <y>`.
 */
export class SafetensorsError extends Error {
  override readonly name: string = 'SafetensorsError';
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(`[@qlora/safetensors] ${message}`, options);
    this.code = code;
  }
}
