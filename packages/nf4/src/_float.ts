// Bit-level float helpers: float32 neighbours, and exact float32 <-> bfloat16/float16 conversion.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);

export function float32Bits(x: number): number {
  f32[0] = x;
  return u32[0] as number;
}

export function float32FromBits(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0] as number;
}

/** The next float32 toward +Infinity (x must be a finite float32). */
export function nextUpFloat32(x: number): number {
  if (x === 0) return float32FromBits(1);
  const bits = float32Bits(x);
  return float32FromBits(x > 0 ? bits + 1 : bits - 1);
}

/** The next float32 toward -Infinity (x must be a finite float32). */
export function nextDownFloat32(x: number): number {
  return -nextUpFloat32(-x);
}

/** The next double toward -Infinity (x finite, nonzero). */
export function nextDownFloat64(x: number): number {
  f64[0] = x;
  const bits = u64[0] as bigint;
  u64[0] = x > 0 ? bits - 1n : bits + 1n;
  return f64[0] as number;
}

/** bfloat16 bits → float32 value (exact). */
export function bfloat16ToNumber(bits: number): number {
  u32[0] = bits << 16;
  return f32[0] as number;
}

/** float32 value → bfloat16 bits, round to nearest even (NaN stays a quiet NaN). */
export function numberToBfloat16(x: number): number {
  f32[0] = x;
  const bits = u32[0] as number;
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float16 bits → float32 value (exact). */
export function float16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

/** float32 value → float16 bits, round to nearest even, overflow to ±Infinity (as torch). */
export function numberToFloat16(x: number): number {
  f32[0] = x;
  const bits = u32[0] as number;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const unbiased = exponent - 127;
  if (unbiased > 15) return sign | 0x7c00;
  if (unbiased >= -14) {
    // Normal half: keep 10 mantissa bits, round the 13 dropped bits to nearest even.
    let half = ((unbiased + 15) << 10) | (mantissa >>> 13);
    const rest = mantissa & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half += 1; // may carry into Infinity
    return sign | half;
  }
  // Subnormal half (or zero): value = m · 2^-24 with m rounded to nearest even.
  const magnitude = Math.abs(x) * 2 ** 24; // exact: scaling by a power of two
  let m = Math.floor(magnitude);
  const frac = magnitude - m;
  if (frac > 0.5 || (frac === 0.5 && m & 1)) m += 1;
  return sign | m; // m = 1024 rounds up into the smallest normal, which is the right encoding
}
