/**
 * Every dtype string the safetensors format defines (huggingface/safetensors `Dtype`, 0.8).
 * Listed in the crate's enum order, which is also its write order (reversed): larger alignment
 * first.
 *
 * @example
 * ```ts
 * SAFETENSORS_DTYPES.includes('BF16'); // true
 * ```
 */
export const SAFETENSORS_DTYPES = [
  'BOOL',
  'F4',
  'F6_E2M3',
  'F6_E3M2',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'F8_E8M0',
  'F8_E4M3FNUZ',
  'F8_E5M2FNUZ',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'C64',
  'F64',
  'I64',
  'U64',
] as const;

/**
 * A safetensors dtype string, e.g. `'BF16'`.
 *
 * @example
 * ```ts
 * const dtype: SafetensorsDtype = 'F32';
 * ```
 */
export type SafetensorsDtype = (typeof SAFETENSORS_DTYPES)[number];

/**
 * The typed array each dtype is read into. F16 and BF16 stay as their raw 16-bit patterns
 * (`Uint16Array`; convert with `f16ToF32` / `bf16ToF32` / `toFloat32`), C64 is interleaved
 * (re, im) float32 pairs, BOOL and every 8-bit float are raw bytes, and the sub-byte F4/F6 types
 * are their packed bytes.
 *
 * @example
 * ```ts
 * const data: DtypeArray<'BF16'> = new Uint16Array([0x3f80]); // 1.0 in bf16
 * ```
 */
export type DtypeArray<D extends SafetensorsDtype = SafetensorsDtype> = {
  BOOL: Uint8Array;
  F4: Uint8Array;
  F6_E2M3: Uint8Array;
  F6_E3M2: Uint8Array;
  U8: Uint8Array;
  I8: Int8Array;
  F8_E5M2: Uint8Array;
  F8_E4M3: Uint8Array;
  F8_E8M0: Uint8Array;
  F8_E4M3FNUZ: Uint8Array;
  F8_E5M2FNUZ: Uint8Array;
  I16: Int16Array;
  U16: Uint16Array;
  F16: Uint16Array;
  BF16: Uint16Array;
  I32: Int32Array;
  U32: Uint32Array;
  F32: Float32Array;
  C64: Float32Array;
  F64: Float64Array;
  I64: BigInt64Array;
  U64: BigUint64Array;
}[D];

/**
 * One tensor: its dtype, its shape (row-major, `[]` for a scalar) and its elements.
 * The reader fills `data` with the typed array of {@link DtypeArray}; the writer accepts any
 * `ArrayBufferView` whose byte length is `product(shape) × dtype size` (so raw `Uint8Array`
 * bytes work for every dtype).
 *
 * @example
 * ```ts
 * const entry: TensorEntry<'F32'> = { dtype: 'F32', shape: [2, 2], data: new Float32Array(4) };
 * ```
 */
export interface TensorEntry<D extends SafetensorsDtype = SafetensorsDtype> {
  dtype: D;
  shape: number[];
  data: DtypeArray<D>;
}

/**
 * What the writer takes for one tensor: like {@link TensorEntry}, but `data` may be any view
 * of the right byte length (a `Uint8Array` of raw little-endian bytes works for every dtype).
 *
 * @example
 * ```ts
 * const input: TensorInput = { dtype: 'BF16', shape: [2], data: new Uint8Array([0x80, 0x3f, 0, 0]) };
 * ```
 */
export interface TensorInput {
  dtype: SafetensorsDtype;
  shape: readonly number[];
  data: ArrayBufferView;
}

/**
 * Where one tensor lives in a file, as the header says: dtype, shape and `[begin, end)` byte
 * offsets relative to the start of the byte buffer (file offset `8 + headerLength`).
 *
 * @example
 * ```ts
 * const info: TensorInfo = { dtype: 'F32', shape: [2], dataOffsets: [0, 8] };
 * ```
 */
export interface TensorInfo {
  dtype: SafetensorsDtype;
  shape: number[];
  dataOffsets: [number, number];
}

/** Bits per element, as the crate's `Dtype::bitsize`. */
export const DTYPE_BITS: Readonly<Record<SafetensorsDtype, number>> = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
};

/** Position in the crate's enum; the writer orders tensors by this, descending. */
export const DTYPE_RANK: Readonly<Record<SafetensorsDtype, number>> = Object.fromEntries(
  SAFETENSORS_DTYPES.map((dtype, index) => [dtype, index]),
) as Record<SafetensorsDtype, number>;

const DTYPE_SET: ReadonlySet<string> = new Set(SAFETENSORS_DTYPES);

/** Narrows a string to a known dtype. */
export function isSafetensorsDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && DTYPE_SET.has(value);
}
