/**
 * bitsandbytes' 8-bit "dynamic" quantization maps and its blockwise (de)quantization, the
 * arithmetic of the default pure-PyTorch backend (`backends/default/ops.py`).
 */

import { DYNAMIC_CODE } from '@qlora/nf4';

/** The 254 values of `create_dynamic_map(signed=False)` between 0 and 1 (torch 2.11 float32). */
const UNSIGNED_INTERIOR = [
  3.2500003e-7, 7.75e-7, 2.1249998e-6, 4.3749997e-6, 6.625e-6, 8.874999e-6, 1.5624999e-5,
  2.6875001e-5, 3.8125e-5, 4.9374998e-5, 6.0625003e-5, 7.1875e-5, 8.312499e-5, 9.4375e-5,
  0.000128125, 0.000184375, 0.00024062501, 0.00029687502, 0.00035312498, 0.00040937503,
  0.00046562502, 0.00052187504, 0.000578125, 0.000634375, 0.00069062505, 0.000746875, 0.0008031251,
  0.00085937505, 0.000915625, 0.00097187504, 0.001140625, 0.001421875, 0.001703125, 0.001984375,
  0.002265625, 0.0025468748, 0.002828125, 0.0031093748, 0.0033906251, 0.003671875, 0.003953125,
  0.0042343745, 0.004515625, 0.0047968747, 0.005078125, 0.005359375, 0.0056406246, 0.005921875,
  0.0062031248, 0.006484375, 0.0067656254, 0.0070468746, 0.007328125, 0.0076093744, 0.007890625,
  0.008171875, 0.008453124, 0.008734375, 0.009015624, 0.0092968745, 0.009578126, 0.009859375,
  0.010703126, 0.012109376, 0.013515624, 0.014921876, 0.016328124, 0.017734377, 0.019140625,
  0.020546874, 0.021953126, 0.023359375, 0.024765624, 0.026171876, 0.027578129, 0.028984373,
  0.030390626, 0.031796873, 0.033203125, 0.034609374, 0.036015626, 0.03742188, 0.038828123,
  0.040234376, 0.041640624, 0.043046873, 0.044453125, 0.045859374, 0.047265626, 0.04867187,
  0.050078124, 0.051484372, 0.052890625, 0.054296877, 0.05570313, 0.057109382, 0.058515627,
  0.059921872, 0.061328124, 0.06273438, 0.06414063, 0.06554688, 0.06695312, 0.068359375, 0.06976563,
  0.07117188, 0.072578125, 0.07398438, 0.07539063, 0.07679688, 0.07820313, 0.07960938, 0.081015624,
  0.08242188, 0.08382813, 0.085234374, 0.086640626, 0.08804687, 0.08945312, 0.090859376, 0.09226563,
  0.09367188, 0.095078126, 0.09648438, 0.09789063, 0.099296875, 0.103515625, 0.11054687, 0.11757813,
  0.12460937, 0.13164061, 0.13867188, 0.14570314, 0.15273437, 0.15976563, 0.16679686, 0.17382812,
  0.18085939, 0.18789062, 0.19492188, 0.20195311, 0.20898438, 0.21601564, 0.22304687, 0.23007813,
  0.23710936, 0.24414062, 0.25117186, 0.25820312, 0.26523438, 0.2722656, 0.27929688, 0.28632814,
  0.29335937, 0.3003906, 0.30742186, 0.31445312, 0.3214844, 0.32851562, 0.33554685, 0.3425781,
  0.34960938, 0.35664064, 0.36367187, 0.3707031, 0.37773436, 0.38476562, 0.3917969, 0.39882812,
  0.40585935, 0.4128906, 0.41992188, 0.42695314, 0.43398437, 0.4410156, 0.44804686, 0.45507812,
  0.4621094, 0.46914062, 0.47617185, 0.4832031, 0.49023438, 0.4972656, 0.5042969, 0.5113281,
  0.51835936, 0.5253906, 0.5324218, 0.53945315, 0.54648435, 0.5535157, 0.5605469, 0.56757814,
  0.5746094, 0.5816406, 0.5886719, 0.5957031, 0.6027344, 0.60976565, 0.61679685, 0.6238282,
  0.6308594, 0.63789064, 0.6449219, 0.6519531, 0.6589844, 0.6660156, 0.6730469, 0.68007815,
  0.68710935, 0.6941407, 0.7011719, 0.70820314, 0.7152344, 0.7222656, 0.7292969, 0.7363281,
  0.7433594, 0.75039065, 0.75742185, 0.7644532, 0.7714844, 0.7785156, 0.7855469, 0.7925781,
  0.7996094, 0.8066406, 0.8136718, 0.82070315, 0.82773435, 0.8347657, 0.8417969, 0.8488281,
  0.8558594, 0.8628906, 0.8699219, 0.8769531, 0.8839843, 0.89101565, 0.89804685, 0.9050782,
  0.9121094, 0.9191406, 0.9261719, 0.9332031, 0.9402344, 0.9472656, 0.9542968, 0.96132815,
  0.96835935, 0.9753907, 0.9824219, 0.9894531, 0.9964844,
];

/** torch's `absmax.clamp(min=1e-38)` in float32 (a subnormal). */
const MIN_ABSMAX = Math.fround(1e-38);

/** Values per absmax block of bitsandbytes' 8-bit blockwise optimizer state (since v0.44.0). */
export const OPTIMIZER_BLOCKSIZE = 256;

/**
 * bitsandbytes' signed dynamic map (`create_dynamic_map(signed=True)`): 256 sorted float32 values,
 * `code[127] = 0`, `code[255] = 1`, most negative −0.99296874. Used for Adam's first moment.
 *
 * @example
 * ```ts
 * const code = signedDynamicMap();
 * code[127]; // 0
 * code[255]; // 1
 * ```
 */
export function signedDynamicMap(): Float32Array {
  // The same table @qlora/nf4 uses for double quantization; a copy, so callers may not alter it.
  return new Float32Array(DYNAMIC_CODE);
}

/**
 * bitsandbytes' unsigned dynamic map (`create_dynamic_map(signed=False)`): 256 sorted float32
 * values from 0 to 1. Used for Adam's second moment.
 *
 * @example
 * ```ts
 * const code = unsignedDynamicMap();
 * code[0]; // 0
 * code[255]; // 1
 * ```
 */
export function unsignedDynamicMap(): Float32Array {
  const code = new Float32Array(256);
  code.set(UNSIGNED_INTERIOR, 1);
  code[255] = 1;
  return code;
}

/**
 * The 255 float32 midpoints `(code[i] + code[i+1]) / 2` that bitsandbytes' default backend
 * bucketizes against.
 */
function midpoints(code: Float32Array): Float32Array {
  const bounds = new Float32Array(255);
  for (let i = 0; i < 255; i++) {
    bounds[i] = Math.fround(Math.fround((code[i] as number) + (code[i + 1] as number)) / 2);
  }
  return bounds;
}

const boundsCache = new WeakMap<Float32Array, Float32Array>();

function boundsOf(code: Float32Array): Float32Array {
  let bounds = boundsCache.get(code);
  if (bounds === undefined) {
    bounds = midpoints(code);
    boundsCache.set(code, bounds);
  }
  return bounds;
}

/** `torch.bucketize(x, bounds, right=False)`: the first i with `x <= bounds[i]` (ties → lower code). */
function bucketize(x: number, bounds: Float32Array): number {
  let lo = 0;
  let hi = bounds.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((bounds[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Quantizes `values` blockwise to 8-bit codes of `code` exactly as bitsandbytes' default backend
 * (`quantize_blockwise`): per block of `blocksize`, `absmax = max|x|`; full blocks scale by
 * `x * (1 / max(absmax, 1e-38))`, the last partial block divides by `max(absmax, 1e-38)` (the
 * backend does it that way), clamp to [−1, 1], and pick the nearest code (midpoint ties → lower
 * index). Writes into `codes` and `absmax` (lengths `n` and `ceil(n / blocksize)`).
 *
 * @example
 * ```ts
 * const codes = new Uint8Array(3);
 * const absmax = new Float32Array(1);
 * quantizeBlockwise(new Float32Array([0.5, -1, 0]), signedDynamicMap(), 256, codes, absmax);
 * absmax[0]; // 1
 * codes[1]; // 0 (−0.99296874, the most negative code)
 * ```
 */
export function quantizeBlockwise(
  values: Float32Array,
  code: Float32Array,
  blocksize: number,
  codes: Uint8Array,
  absmax: Float32Array,
): void {
  const bounds = boundsOf(code);
  const n = values.length;
  const full = n - (n % blocksize);
  for (let start = 0, b = 0; start < n; start += blocksize, b++) {
    const end = Math.min(start + blocksize, n);
    let max = 0;
    for (let i = start; i < end; i++) {
      const a = Math.abs(values[i] as number);
      // NaN propagates through torch's max; keep it so the caller sees a poisoned block.
      if (a > max || Number.isNaN(a)) max = a;
    }
    absmax[b] = max;
    const clamped = Math.max(max, MIN_ABSMAX);
    if (start < full) {
      const inverse = Math.fround(1 / clamped);
      for (let i = start; i < end; i++) {
        const scaled = Math.min(1, Math.max(-1, Math.fround((values[i] as number) * inverse)));
        codes[i] = bucketize(scaled, bounds);
      }
    } else {
      const divisor = Math.fround(clamped);
      for (let i = start; i < end; i++) {
        const scaled = Math.min(1, Math.max(-1, Math.fround((values[i] as number) / divisor)));
        codes[i] = bucketize(scaled, bounds);
      }
    }
  }
}

/**
 * Dequantizes blockwise 8-bit codes: `code[q] * absmax[block]` in float32, as bitsandbytes'
 * `dequantize_blockwise`. Writes into `out`.
 *
 * @example
 * ```ts
 * const out = new Float32Array(2);
 * dequantizeBlockwise(new Uint8Array([127, 255]), new Float32Array([2]), signedDynamicMap(), 256, out);
 * out; // Float32Array [0, 2]
 * ```
 */
export function dequantizeBlockwise(
  codes: Uint8Array,
  absmax: Float32Array,
  code: Float32Array,
  blocksize: number,
  out: Float32Array,
): void {
  for (let i = 0; i < codes.length; i++) {
    out[i] = Math.fround(
      (code[codes[i] as number] as number) * (absmax[Math.floor(i / blocksize)] as number),
    );
  }
}
