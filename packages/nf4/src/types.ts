/** Public types of `@qlora/nf4`. */

/**
 * The two 4-bit data types bitsandbytes' `quantize_4bit` accepts.
 *
 * @example
 * ```ts
 * const t: QuantType = 'nf4';
 * ```
 */
export type QuantType = 'nf4' | 'fp4';

/**
 * Floating-point dtypes of the original weight, named as torch names them (minus `torch.`).
 *
 * @example
 * ```ts
 * const d: FloatDtype = 'bfloat16';
 * ```
 */
export type FloatDtype = 'float32' | 'bfloat16' | 'float16';

/**
 * Which bitsandbytes backend's arithmetic to reproduce.
 * - `'torch'` (default): the pure-PyTorch default backend (`backends/default/ops.py`, what runs on
 *   CPU): float32 reciprocal-multiply for full blocks, division for the partial last block, absmax
 *   clamped to ≥ 1e-38, `bucketize` over the float32 midpoints of the codebook. Verified bit for
 *   bit against bitsandbytes.
 * - `'cuda'`: the CUDA kernels as read from `csrc/kernels.cu`: reciprocal-multiply everywhere,
 *   the FP4 decimal thresholds, an all-zero block yields NaN → code 0, results below 2^-126 flush
 *   to zero. Not verified against a CUDA run (CUDA's `rcp.approx` cannot be reproduced exactly: a
 *   value within about one ulp of a threshold can land on the other code).
 *
 * @example
 * ```ts
 * quantize4bit(x, { arithmetic: 'cuda' });
 * ```
 */
export type Arithmetic = 'torch' | 'cuda';

/**
 * Second-level state of double quantization (bitsandbytes `QuantState.state2` plus `offset`).
 *
 * @example
 * ```ts
 * quantize4bit(x, { doubleQuant: true }).state.nested?.blocksize; // 256
 * ```
 */
export interface NestedQuantState {
  /** float32 mean of the first-level absmax, subtracted before 8-bit quantization. */
  readonly offset: number;
  /** float32 absmax of each group of `blocksize` first-level absmax values. */
  readonly absmax: Float32Array;
  /** The 256-entry 8-bit code used (bitsandbytes' signed dynamic map). */
  readonly code: Float32Array;
  /** Absmax values per nested block: 256 in bitsandbytes. */
  readonly blocksize: number;
  /** Always `'float32'`. */
  readonly dtype: 'float32';
}

/**
 * Everything needed to dequantize packed 4-bit codes (bitsandbytes `QuantState`).
 *
 * @example
 * ```ts
 * const { state } = quantize4bit(new Float32Array(128), { shape: [2, 64] });
 * state.absmax.length; // 2 blocks
 * ```
 */
export interface QuantState {
  readonly quantType: QuantType;
  /** Elements per block (32 … 4096). */
  readonly blocksize: number;
  /** Original tensor shape; blocks run over the flat row-major vector. */
  readonly shape: readonly number[];
  /** Original dtype; `dequantize4bit` returns this by default. */
  readonly dtype: FloatDtype;
  /** The 16-entry codebook (`NF4_CODE` or `FP4_CODE`), stored as `quant_map`. */
  readonly code: Float32Array;
  /** float32 absmax per block, or with double quantization the uint8 codes of `absmax - offset`. */
  readonly absmax: Float32Array | Uint8Array;
  /** Present exactly when double quantization was used. */
  readonly nested?: NestedQuantState;
}

/**
 * A quantized tensor: two 4-bit codes per byte (even element in the high nibble) and its state.
 *
 * @example
 * ```ts
 * const q: Quantized4bit = quantize4bit(new Float32Array([1, -1, 0, 0.5]));
 * q.packed; // Uint8Array [0xf0, 0x7c]
 * ```
 */
export interface Quantized4bit {
  /** `ceil(n / 2)` bytes. */
  readonly packed: Uint8Array;
  readonly state: QuantState;
}

/**
 * Options of `quantize4bit`.
 *
 * @example
 * ```ts
 * quantize4bit(bits, { dtype: 'bfloat16', shape: [4096, 4096], blocksize: 64, doubleQuant: true });
 * ```
 */
export interface Quantize4bitOptions {
  /** Tensor shape; its product must equal the input length. Default `[input.length]`. */
  shape?: readonly number[];
  /** 32, 64, 128, 256, 512, 1024, 2048 or 4096. Default 64. */
  blocksize?: number;
  /** Default `'nf4'`. */
  quantType?: QuantType;
  /** Quantize the absmax values again (8 bit, blocks of 256). Default false. */
  doubleQuant?: boolean;
  /**
   * dtype of the input: `'float32'` for a `Float32Array` (the default), `'bfloat16'` or `'float16'`
   * for a `Uint16Array` of bit patterns (required then).
   */
  dtype?: FloatDtype;
  /** Backend arithmetic to reproduce. Default `'torch'`. */
  arithmetic?: Arithmetic;
}

/**
 * Options of `dequantize4bit`.
 *
 * @example
 * ```ts
 * dequantize4bit(q, { dtype: 'bfloat16' }); // Uint16Array
 * ```
 */
export interface Dequantize4bitOptions<D extends FloatDtype = FloatDtype> {
  /**
   * Output dtype. Default `'float32'`. `'bfloat16'`/`'float16'` return a `Uint16Array` of bit
   * patterns, rounded to nearest even from the float32 value (as torch's `.to(dtype)`).
   */
  dtype?: D;
}

/**
 * safetensors dtype names.
 *
 * @example
 * ```ts
 * const d: TensorDtype = 'F32';
 * ```
 */
export type TensorDtype =
  | 'BOOL'
  | 'U8'
  | 'I8'
  | 'U16'
  | 'I16'
  | 'F16'
  | 'BF16'
  | 'U32'
  | 'I32'
  | 'F32'
  | 'U64'
  | 'I64'
  | 'F64';

/**
 * Any typed array a tensor record may carry.
 *
 * @example
 * ```ts
 * const data: TensorData = new Float32Array(16);
 * ```
 */
export type TensorData =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/**
 * A plain tensor record, shaped like a safetensors entry: `data.length` equals the product of
 * `shape` (for F16/BF16 `data` is a `Uint16Array` of bit patterns).
 *
 * @example
 * ```ts
 * const r: TensorRecord = { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) };
 * ```
 */
export interface TensorRecord {
  dtype: TensorDtype;
  shape: number[];
  data: TensorData;
}

/**
 * Errors of a reconstruction compared with its source (see `quantizationError`).
 *
 * @example
 * ```ts
 * quantizationError(x, quantize4bit(x)).rmse;
 * ```
 */
export interface QuantizationError {
  /** max |x - x̂|. */
  maxAbs: number;
  /** mean |x - x̂|. */
  meanAbs: number;
  /** sqrt(mean((x - x̂)²)). */
  rmse: number;
  /** ‖x - x̂‖₂ / ‖x‖₂ (0 when x is all zeros). */
  relative: number;
}
