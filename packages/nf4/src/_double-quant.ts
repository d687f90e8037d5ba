// Double quantization of the absmax vector, as bitsandbytes' default backend does it:
// offset = torch float32 mean, then 8-bit blockwise quantization (blocks of 256) of
// absmax - offset with the signed dynamic map, `bucketize` over float32 midpoints.

import { torchMeanFloat32 } from './_torch-mean';
import { DYNAMIC_CODE } from './codebooks';
import { Nf4Error } from './errors';
import type { NestedQuantState } from './types';

export const NESTED_BLOCKSIZE = 256;
/** torch's `clamp(min=1e-38)` bound, as float32. */
export const MIN_ABSMAX = Math.fround(1e-38);

let dynamicBounds: Float32Array | undefined;

function midpoints(code: Float32Array): Float32Array {
  const out = new Float32Array(code.length - 1);
  for (let i = 0; i < out.length; i++) {
    out[i] = Math.fround((code[i] as number) + (code[i + 1] as number)) / 2;
  }
  return out;
}

/** bucketize(xn, bounds, right=False): the number of bounds strictly below xn. */
function bucketize(xn: number, bounds: Float32Array): number {
  let lo = 0;
  let hi = bounds.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((bounds[mid] as number) < xn) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Quantizes the float32 absmax vector; returns the uint8 codes and the nested state. */
export function quantizeAbsmax(absmax: Float32Array): {
  codes: Uint8Array;
  nested: NestedQuantState;
} {
  const offset = torchMeanFloat32(absmax);
  if (!Number.isFinite(offset)) {
    throw new Nf4Error(
      'NON_FINITE',
      `double quantization: expected a finite float32 mean of the block absmax values, got ${offset}. ` +
        'The absmax values are too large to sum in float32; quantize without doubleQuant.',
    );
  }
  const n = absmax.length;
  const centered = new Float32Array(n);
  for (let i = 0; i < n; i++) centered[i] = (absmax[i] as number) - offset;
  dynamicBounds ??= midpoints(DYNAMIC_CODE);
  const bounds = dynamicBounds;
  const blocks = Math.ceil(n / NESTED_BLOCKSIZE);
  const nestedAbsmax = new Float32Array(blocks);
  const codes = new Uint8Array(n);
  for (let b = 0; b < blocks; b++) {
    const start = b * NESTED_BLOCKSIZE;
    const end = Math.min(n, start + NESTED_BLOCKSIZE);
    let m = 0;
    for (let i = start; i < end; i++) m = Math.max(m, Math.abs(centered[i] as number));
    const clamped = Math.max(m, MIN_ABSMAX);
    const full = end - start === NESTED_BLOCKSIZE;
    // Full blocks multiply by the float32 reciprocal and keep the unclamped absmax; the partial
    // last block divides and stores the clamped one (backends/default/ops.py).
    nestedAbsmax[b] = full ? m : clamped;
    const inv = Math.fround(1 / clamped);
    for (let i = start; i < end; i++) {
      const c = centered[i] as number;
      let xn = full ? Math.fround(c * inv) : Math.fround(c / clamped);
      xn = Math.min(1, Math.max(xn, -1));
      codes[i] = bucketize(xn, bounds);
    }
  }
  return {
    codes,
    nested: {
      offset,
      absmax: nestedAbsmax,
      code: DYNAMIC_CODE.slice(),
      blocksize: NESTED_BLOCKSIZE,
      dtype: 'float32',
    },
  };
}

/**
 * absmax[b] = fround(fround(code[q[b]] · nestedAbsmax[b / blocksize]) + offset): the two float32
 * roundings of bitsandbytes' `dequantize_blockwise(...) + offset`.
 */
export function reconstructAbsmax(codes: Uint8Array, nested: NestedQuantState): Float32Array {
  const out = new Float32Array(codes.length);
  const { code, absmax, blocksize, offset } = nested;
  for (let start = 0, b = 0; start < codes.length; start += blocksize, b++) {
    const a = absmax[b] as number;
    const end = Math.min(codes.length, start + blocksize);
    for (let i = start; i < end; i++) {
      // Storing into the Float32Array performs the second rounding.
      out[i] = Math.fround((code[codes[i] as number] as number) * a) + offset;
    }
  }
  return out;
}
