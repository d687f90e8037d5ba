/**
 * Stable machine-readable codes for {@link SafetensorsError}.
 *
 * @example
 * ```ts
 * const code: SafetensorsErrorCode = 'INVALID_OFFSETS';
 * ```
 */
export type SafetensorsErrorCode =
  /** The bytes are shorter than the 8-byte header length. */
  | 'HEADER_TOO_SMALL'
  /** The header length is over 100,000,000 bytes (the Rust crate's bound). */
  | 'HEADER_TOO_LARGE'
  /** The header length runs past the end of the file. */
  | 'INVALID_HEADER_LENGTH'
  /** The header is not valid UTF-8. */
  | 'INVALID_HEADER_UTF8'
  /** The header is not JSON, not an object, nests too deep, or repeats a key. */
  | 'INVALID_HEADER_JSON'
  /** `__metadata__` is not an object of string values. */
  | 'INVALID_METADATA'
  /** A tensor entry lacks `dtype`/`shape`/`data_offsets` or has the wrong types. */
  | 'INVALID_TENSOR_INFO'
  /** `data_offsets` are not contiguous from 0, overlap, or run backwards. */
  | 'INVALID_OFFSETS'
  /** shape × dtype size does not equal the tensor's byte range, or overflows u64. */
  | 'SIZE_MISMATCH'
  /** The tensors do not cover the byte buffer exactly up to the end of the file. */
  | 'INCOMPLETE_BUFFER'
  /** A tensor given to the writer is malformed (dtype, shape, data length, name). */
  | 'INVALID_TENSOR'
  /** A name asked for is not in the file. */
  | 'TENSOR_NOT_FOUND'
  /** A dtype cannot be converted to float32. */
  | 'UNSUPPORTED_DTYPE'
  /** `model.safetensors.index.json` is malformed or disagrees with its shards. */
  | 'INVALID_INDEX'
  /** A file operation failed (missing file, closed handle, short read). */
  | 'IO';

/**
 * The one error class `@qlora/safetensors` throws. Messages read
 * `[@qlora/safetensors] <what failed>: expected <x>, got <y>`, then a hint.
 *
 * @example
 * ```ts
 * try {
 *   parseSafetensors(new Uint8Array(3));
 * } catch (error) {
 *   if (error instanceof SafetensorsError) console.log(error.code, error.rule);
 *   // HEADER_TOO_SMALL header-length-present
 * }
 * ```
 */
export class SafetensorsError extends Error {
  override readonly name: string = 'SafetensorsError';
  /** Stable code, safe to branch on. */
  readonly code: SafetensorsErrorCode;
  /** The format rule that was broken, in kebab-case (e.g. `offsets-contiguous`). */
  readonly rule: string;
  /** The tensor the rule was broken for, when there is one. */
  readonly tensor: string | undefined;

  constructor(
    code: SafetensorsErrorCode,
    rule: string,
    message: string,
    options?: { cause?: unknown; tensor?: string },
  ) {
    super(`[@qlora/safetensors] ${message}`, options);
    this.code = code;
    this.rule = rule;
    this.tensor = options?.tensor;
  }
}
