import type { TensorEntry } from './dtypes';
import { SafetensorsError } from './errors';

/**
 * bfloat16 bit patterns → float32. Exact (bf16 is the top half of an f32): NaN payloads,
 * infinities, subnormals and signed zeros are all kept.
 *
 * @example
 * ```ts
 * bf16ToF32(new Uint16Array([0x3f80, 0xc000, 0x7f80])); // Float32Array [1, -2, Infinity]
 * ```
 */
export function bf16ToF32(
  bits: Uint16Array,
  out: Float32Array = new Float32Array(bits.length),
): Float32Array {
  checkLengths(bits.length, out.length);
  const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) outBits[i] = (bits[i] as number) << 16;
  return out;
}

/**
 * float32 → bfloat16 bit patterns, rounding to nearest even (as PyTorch's `.to(torch.bfloat16)`).
 * Overflow rounds to ±Infinity, subnormals round correctly, and NaN stays NaN (a quiet NaN with
 * the input's sign and top payload bits).
 *
 * @example
 * ```ts
 * f32ToBf16(new Float32Array([1, 1.00390625, 3.4e38])); // Uint16Array [0x3f80, 0x3f80, 0x7f80]
 * ```
 */
export function f32ToBf16(
  values: Float32Array,
  out: Uint16Array = new Uint16Array(values.length),
): Uint16Array {
  checkLengths(values.length, out.length);
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i] as number;
    if ((x & 0x7fffffff) > 0x7f800000) {
      out[i] = (x >>> 16) | 0x0040;
    } else {
      out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
    }
  }
  return out;
}

let f16Table: Uint32Array | undefined;

/** f32 bit patterns of all 65,536 f16 values: a 256 KB table beats per-element branching. */
function getF16Table(): Uint32Array {
  if (f16Table !== undefined) return f16Table;
  const table = new Uint32Array(65536);
  const scratch = new Float32Array(1);
  const scratchBits = new Uint32Array(scratch.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exponent = (h >>> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0x1f) {
      table[h] = sign | 0x7f800000 | (mantissa << 13);
    } else if (exponent === 0) {
      // subnormal (or zero): mantissa × 2^-24, exact in f32
      scratch[0] = mantissa * 2 ** -24;
      table[h] = sign | (scratchBits[0] as number);
    } else {
      table[h] = sign | ((exponent + 112) << 23) | (mantissa << 13);
    }
  }
  f16Table = table;
  return table;
}

/**
 * IEEE half-precision (f16) bit patterns → float32. Exact: subnormals, infinities, signed zeros
 * and NaN payloads are kept.
 *
 * @example
 * ```ts
 * f16ToF32(new Uint16Array([0x3c00, 0x7bff, 0x0001])); // Float32Array [1, 65504, 5.96e-8]
 * ```
 */
export function f16ToF32(
  bits: Uint16Array,
  out: Float32Array = new Float32Array(bits.length),
): Float32Array {
  checkLengths(bits.length, out.length);
  const table = getF16Table();
  const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) outBits[i] = table[bits[i] as number] as number;
  return out;
}

/**
 * float32 → IEEE half-precision (f16) bit patterns, rounding to nearest even (as PyTorch's
 * `.to(torch.float16)`): values from 65520 up become ±Infinity, values below 2^-14 become
 * correctly rounded subnormals (or ±0 at and below 2^-25), and NaN stays NaN (quiet, sign kept).
 *
 * @example
 * ```ts
 * f32ToF16(new Float32Array([1, 65520, 1e-8])); // Uint16Array [0x3c00, 0x7c00, 0x0000]
 * ```
 */
export function f32ToF16(
  values: Float32Array,
  out: Uint16Array = new Uint16Array(values.length),
): Uint16Array {
  checkLengths(values.length, out.length);
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i] as number;
    const sign = (x >>> 16) & 0x8000;
    const abs = x & 0x7fffffff;
    let h: number;
    if (abs >= 0x477ff000) {
      // ≥ 65520 rounds past 65504: infinity; NaN keeps its top payload bits and is made quiet.
      h = abs > 0x7f800000 ? 0x7e00 | ((abs >>> 13) & 0x3ff) : 0x7c00;
    } else if (abs >= 0x38800000) {
      // normal f16: rebias the exponent (127 → 15) and round the 13 dropped bits to even
      h = (abs - 0x38000000 + 0xfff + ((abs >>> 13) & 1)) >>> 13;
    } else {
      const exponent = abs >>> 23;
      if (exponent < 102) {
        h = 0; // below 2^-25: rounds to zero
      } else {
        // subnormal f16: value = significand × 2^(exponent − 150), in units of 2^-24
        const significand = (abs & 0x7fffff) | 0x800000;
        const shift = 126 - exponent;
        const kept = significand >>> shift;
        const rest = significand & ((1 << shift) - 1);
        const half = 1 << (shift - 1);
        h = rest > half || (rest === half && (kept & 1) === 1) ? kept + 1 : kept;
      }
    }
    out[i] = sign | h;
  }
  return out;
}

/** The 256 values of each decodable 8-bit float, built once on first use. */
const f8Tables = new Map<string, Float32Array>();

/**
 * Decodes all 256 patterns of an 8-bit float. `fn`: OCP E4M3 (no infinities, S.1111.111 is
 * NaN); `ieee`: E5M2 with infinities and NaNs; `fnuz`: no infinities, no negative zero, 0x80
 * is the only NaN (the AMD/Graphcore variants); E8M0 (an exponent only) is handled apart.
 */
function f8Table(
  dtype: 'F8_E4M3' | 'F8_E5M2' | 'F8_E4M3FNUZ' | 'F8_E5M2FNUZ' | 'F8_E8M0',
): Float32Array {
  const cached = f8Tables.get(dtype);
  if (cached !== undefined) return cached;
  const table = new Float32Array(256);
  if (dtype === 'F8_E8M0') {
    for (let b = 0; b < 256; b++) table[b] = b === 0xff ? Number.NaN : 2 ** (b - 127);
  } else {
    const [exponentBits, mantissaBits, bias, kind] = {
      F8_E4M3: [4, 3, 7, 'fn'],
      F8_E5M2: [5, 2, 15, 'ieee'],
      F8_E4M3FNUZ: [4, 3, 8, 'fnuz'],
      F8_E5M2FNUZ: [5, 2, 16, 'fnuz'],
    }[dtype] as [number, number, number, 'fn' | 'ieee' | 'fnuz'];
    const maxExponent = (1 << exponentBits) - 1;
    const maxMantissa = (1 << mantissaBits) - 1;
    for (let b = 0; b < 256; b++) {
      const sign = b & 0x80 ? -1 : 1;
      const exponent = (b >>> mantissaBits) & maxExponent;
      const mantissa = b & maxMantissa;
      let value: number;
      if (kind === 'fnuz' && b === 0x80) value = Number.NaN;
      else if (kind === 'ieee' && exponent === maxExponent) {
        value = mantissa === 0 ? Number.POSITIVE_INFINITY : Number.NaN;
      } else if (kind === 'fn' && exponent === maxExponent && mantissa === maxMantissa) {
        value = Number.NaN;
      } else if (exponent === 0) value = mantissa * 2 ** (1 - bias - mantissaBits);
      else value = (1 + mantissa / (1 << mantissaBits)) * 2 ** (exponent - bias);
      table[b] = sign * value;
    }
  }
  f8Tables.set(dtype, table);
  return table;
}

/**
 * Any real-valued tensor's elements as a new `Float32Array` (the tensor is not changed).
 * BF16/F16 decode exactly; F64, I32, U32, I64 and U64 round to the nearest float32; the 8-bit
 * floats decode as torch's `float8_e4m3fn`, `float8_e5m2`, `float8_e4m3fnuz`,
 * `float8_e5m2fnuz` and `float8_e8m0fnu` do. C64 (complex) and the sub-byte F4/F6 types throw
 * `UNSUPPORTED_DTYPE` (read their raw `data`).
 *
 * @example
 * ```ts
 * toFloat32({ dtype: 'BF16', shape: [2], data: new Uint16Array([0x3f80, 0x4040]) });
 * // Float32Array [1, 3]
 * ```
 */
export function toFloat32(tensor: TensorEntry): Float32Array {
  const { dtype, data } = tensor;
  switch (dtype) {
    case 'BF16':
      return bf16ToF32(data as Uint16Array);
    case 'F16':
      return f16ToF32(data as Uint16Array);
    case 'F8_E4M3':
    case 'F8_E5M2':
    case 'F8_E4M3FNUZ':
    case 'F8_E5M2FNUZ':
    case 'F8_E8M0': {
      const table = f8Table(dtype);
      const bytes = data as Uint8Array;
      const out = new Float32Array(bytes.length);
      for (let i = 0; i < bytes.length; i++) out[i] = table[bytes[i] as number] as number;
      return out;
    }
    case 'I64':
    case 'U64': {
      const big = data as BigInt64Array | BigUint64Array;
      const out = new Float32Array(big.length);
      for (let i = 0; i < big.length; i++) out[i] = Number(big[i]);
      return out;
    }
    case 'F32':
    case 'F64':
    case 'I32':
    case 'U32':
    case 'I16':
    case 'U16':
    case 'I8':
    case 'U8':
    case 'BOOL':
      return Float32Array.from(data as Float32Array);
    default:
      throw new SafetensorsError(
        'UNSUPPORTED_DTYPE',
        'to-float32-real',
        `Cannot convert ${dtype} to float32: expected a real dtype (float, 8-bit float or integer), got ${dtype}. ` +
          'Read its raw bytes from `data` instead.',
      );
  }
}

function checkLengths(input: number, output: number): void {
  if (input !== output) {
    throw new SafetensorsError(
      'INVALID_TENSOR',
      'conversion-lengths',
      `Output array has the wrong length: expected ${input} elements, got ${output}.`,
    );
  }
}
