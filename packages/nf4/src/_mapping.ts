// Value → 4-bit code mapping as a bucket lookup table.
//
// Both bitsandbytes backends compute a float32 normalised value xn and compare it with float32
// thresholds (`xn > t`). We keep the exact double product p = x · inv instead of rounding it, and
// move each threshold t to a double T such that fround(p) > t ⇔ p > T. Then [-1, 1] is cut into
// 2·K equal buckets (K = 4096, far finer than the closest thresholds): a bucket holds at most
// one threshold, so a code costs one floor, two table reads and one compare.

import { float32Bits, nextDownFloat32, nextDownFloat64, nextUpFloat32 } from './_float';
import { FP4_CODE, NF4_CODE } from './codebooks';
import type { Arithmetic, QuantType } from './types';

export const BUCKETS_PER_UNIT = 4096;

export interface CodeTable {
  /** Bucket b covers p ∈ [(b - K) / K, (b - K + 1) / K); size 2K + 1 (the last holds p = 1). */
  readonly threshold: Float64Array;
  /** Rank (interval index, 0…15) at the start of each bucket; + 1 when p > threshold[b]. */
  readonly rank: Uint8Array;
  /** Code of each rank. */
  readonly codeOfRank: Uint8Array;
  /** Packed byte of two ranks: pairByte[(rank0 << 4) | rank1]. */
  readonly pairByte: Uint8Array;
  /**
   * True when the bucket index may be computed as `(p · K + K) | 0` (one rounding) instead of
   * `floor(p · K) + K`: the rounding can only move p up into the next bucket, which is harmless
   * unless a threshold sits just below a bucket boundary.
   */
  readonly truncatedIndexIsExact: boolean;
  /** Code of an input that is NaN after normalisation (CUDA: every compare false → 0). */
  readonly nanCode: number;
}

/** The double T with fround(p) > t ⇔ p > T, for a float32 threshold t. */
function exactThreshold(t: number): number {
  const up = nextUpFloat32(t);
  const mid = (t + up) / 2; // exact in double
  // A tie at \`mid\` rounds to the neighbour with an even mantissa.
  const upIsEven = (float32Bits(up) & 1) === 0;
  return upIsEven ? nextDownFloat64(mid) : mid;
}

/**
 * \`thresholds\` ascending float32 values; \`codes[i]\` is the code of xn in interval i, where
 * interval i holds the xn with \`xn > thresholds[i-1]\` and not \`xn > thresholds[i]\`.
 */
function buildTable(thresholds: number[], codes: number[], nanCode: number): CodeTable {
  const K = BUCKETS_PER_UNIT;
  const size = 2 * K + 1;
  const exact = thresholds.map(exactThreshold);
  const threshold = new Float64Array(size).fill(Number.POSITIVE_INFINITY);
  const rank = new Uint8Array(size);
  let truncatedIndexIsExact = true;
  for (let b = 0; b < size; b++) {
    const start = (b - K) / K;
    const end = (b - K + 1) / K;
    let count = 0;
    while (count < exact.length && (exact[count] as number) < start) count++;
    rank[b] = count;
    const inside = exact.filter((t) => t >= start && t < end);
    if (inside.length > 1) throw new Error('internal: two thresholds share a bucket');
    if (inside.length === 1) threshold[b] = inside[0] as number;
    if (exact.some((t) => t < start && t >= start - 1e-12)) truncatedIndexIsExact = false;
  }
  const codeOfRank = Uint8Array.from(codes);
  const pairByte = new Uint8Array(256);
  for (let r0 = 0; r0 < 16; r0++) {
    for (let r1 = 0; r1 < 16; r1++) {
      pairByte[(r0 << 4) | r1] = ((codeOfRank[r0] as number) << 4) | (codeOfRank[r1] as number);
    }
  }
  return { threshold, rank, codeOfRank, pairByte, truncatedIndexIsExact, nanCode };
}

function float32Midpoints(sorted: number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i + 1 < sorted.length; i++) {
    out.push(Math.fround(Math.fround((sorted[i] as number) + (sorted[i + 1] as number)) / 2));
  }
  return out;
}

// torch.argsort of FP4_CODE as bitsandbytes' default backend gets it (a stable order: +0 before -0).
const FP4_SORT_ORDER = [11, 10, 13, 12, 15, 14, 9, 0, 8, 1, 6, 7, 4, 5, 2, 3];

// CUDA `dQuantizeFP4` thresholds on |xn| (decimal literals in kernels.cu), largest first.
const CUDA_FP4_MAGNITUDE_THRESHOLDS = [
  0.8333333, 0.583333, 0.4166667, 0.29166667, 0.20833333, 0.0859375, 0.00260417,
];
// Magnitude codes (3 low bits) above each threshold, then below the last one.
const CUDA_FP4_MAGNITUDE_CODES = [0b011, 0b010, 0b101, 0b100, 0b111, 0b110, 0b001, 0b000];

function torchTable(quantType: QuantType): CodeTable {
  if (quantType === 'nf4') {
    const codes = Array.from({ length: 16 }, (_, i) => i);
    return buildTable(float32Midpoints(Array.from(NF4_CODE)), codes, 0);
  }
  const sorted = FP4_SORT_ORDER.map((i) => FP4_CODE[i] as number);
  return buildTable(float32Midpoints(sorted), FP4_SORT_ORDER, 0);
}

function cudaTable(quantType: QuantType): CodeTable {
  if (quantType === 'nf4') {
    // The 15 literals of dQuantizeNF4 equal the float32 midpoints of the table.
    const codes = Array.from({ length: 16 }, (_, i) => i);
    return buildTable(float32Midpoints(Array.from(NF4_CODE)), codes, 0);
  }
  // Negative side: |xn| > L ⇔ xn < -L, so xn = -L stays with the smaller magnitude: the
  // boundary in `xn > t` form is the float32 just below -L. The sign bit is set for xn < 0
  // after flush-to-zero: xn ≤ -2^-126.
  const lits = CUDA_FP4_MAGNITUDE_THRESHOLDS.map((v) => Math.fround(v));
  const thresholds = [
    ...lits.map((l) => nextDownFloat32(-l)),
    -(2 ** -126),
    ...lits.slice().reverse(),
  ];
  const codes = [
    ...CUDA_FP4_MAGNITUDE_CODES.map((c) => 0b1000 | c),
    ...CUDA_FP4_MAGNITUDE_CODES.slice().reverse(),
  ];
  return buildTable(thresholds, codes, 0);
}

const cache = new Map<string, CodeTable>();

export function codeTable(quantType: QuantType, arithmetic: Arithmetic): CodeTable {
  const key = `${quantType}/${arithmetic}`;
  let table = cache.get(key);
  if (!table) {
    table = arithmetic === 'torch' ? torchTable(quantType) : cudaTable(quantType);
    cache.set(key, table);
  }
  return table;
}

/** Code of one normalised value (p need not be rounded to float32; NaN → nanCode). */
export function codeOf(table: CodeTable, p: number): number {
  if (Number.isNaN(p)) return table.nanCode;
  const v = Math.min(1, Math.max(p, -1));
  const b = Math.floor(v * BUCKETS_PER_UNIT) + BUCKETS_PER_UNIT;
  const r = (table.rank[b] as number) + (v > (table.threshold[b] as number) ? 1 : 0);
  return table.codeOfRank[r] as number;
}
