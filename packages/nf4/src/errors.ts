/**
 * Stable machine-readable codes for {@link Nf4Error}.
 *
 * @example
 * ```ts
 * if (error instanceof Nf4Error && error.code === 'INVALID_CHECKPOINT') skipLayer();
 * ```
 */
export type Nf4ErrorCode =
  | 'INVALID_BLOCKSIZE'
  | 'INVALID_SHAPE'
  | 'INVALID_INPUT'
  | 'INVALID_PACKED'
  | 'INVALID_QUANT_TYPE'
  | 'NON_FINITE'
  | 'INVALID_CHECKPOINT';

/**
 * The one error class `@qlora/nf4` throws. Messages read
 * `[@qlora/nf4] <what failed>: expected <x>, got <y>`, then a hint where one helps.
 *
 * @example
 * ```ts
 * try {
 *   quantize4bit(new Float32Array(8), { blocksize: 48 });
 * } catch (error) {
 *   if (error instanceof Nf4Error) error.code; // 'INVALID_BLOCKSIZE'
 * }
 * ```
 */
export class Nf4Error extends Error {
  override readonly name = 'Nf4Error';
  readonly code: Nf4ErrorCode;

  constructor(code: Nf4ErrorCode, message: string, options?: { cause?: unknown }) {
    super(`[@qlora/nf4] ${message}`, options);
    this.code = code;
  }
}
