/**
 * The 4-bit codebooks and the signed 8-bit dynamic map, exactly as bitsandbytes builds them.
 * Index = code. Values are float32 (every literal below is exactly representable).
 */

/**
 * NF4 (NormalFloat4) codebook: index = 4-bit code, value = normalised level in [-1, 1].
 * Sorted ascending, 7 negative levels, one 0, 8 positive levels (bitsandbytes `get_4bit_type('nf4')`).
 *
 * @example
 * ```ts
 * import { NF4_CODE } from '@qlora/nf4';
 * NF4_CODE[15]; // 1
 * NF4_CODE[7]; // 0
 * ```
 */
export const NF4_CODE: Float32Array = new Float32Array([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
  0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
  0.7229568362236023, 1.0,
]);

/**
 * bitsandbytes FP4 codebook (sign bit 3, then 2 exponent bits and 1 mantissa bit, divided by 12),
 * in code order, so NOT sorted. Index 8 is -0. This is not the OCP E2M1 format.
 *
 * @example
 * ```ts
 * import { FP4_CODE } from '@qlora/nf4';
 * FP4_CODE[0b0011]; // 1
 * FP4_CODE[0b1101]; // -0.5
 * ```
 */
export const FP4_CODE: Float32Array = new Float32Array(
  [0, 0.0625, 8, 12, 4, 6, 2, 3, 0, -0.0625, -8, -12, -4, -6, -2, -3].map((v) =>
    // float32 division by 12, as torch does it (double rounding is harmless for division).
    Math.fround(v / 12),
  ),
);

// Positive half of bitsandbytes' signed dynamic map (`create_dynamic_map(signed=True)`), as
// torch 2.11 computes it in float32. Hardcoded: a float32 linspace in JS would differ in 42 entries.
const DYNAMIC_POSITIVE = [
  5.5000004e-7, 3.2500002e-6, 7.75e-6, 2.1249998e-5, 4.375e-5, 6.625e-5, 8.875e-5, 0.00015625001,
  0.00026875004, 0.00038125002, 0.00049375003, 0.0006062501, 0.00071875006, 0.00083125,
  0.0009437501, 0.0012812499, 0.00184375, 0.00240625, 0.00296875, 0.0035312497, 0.00409375,
  0.0046562497, 0.0052187503, 0.00578125, 0.00634375, 0.00690625, 0.00746875, 0.00803125,
  0.00859375, 0.009156249, 0.00971875, 0.01140625, 0.01421875, 0.01703125, 0.019843752, 0.02265625,
  0.02546875, 0.028281251, 0.03109375, 0.03390625, 0.036718752, 0.03953125, 0.042343747, 0.04515625,
  0.04796875, 0.05078125, 0.05359375, 0.05640625, 0.059218753, 0.06203125, 0.06484375, 0.067656256,
  0.070468746, 0.07328125, 0.07609375, 0.07890625, 0.08171876, 0.08453125, 0.08734375, 0.09015625,
  0.092968754, 0.09578126, 0.09859375, 0.107031256, 0.12109375, 0.13515624, 0.14921875, 0.16328125,
  0.17734376, 0.19140625, 0.20546874, 0.21953125, 0.23359375, 0.24765624, 0.26171875, 0.27578127,
  0.28984374, 0.30390626, 0.31796873, 0.33203125, 0.34609374, 0.36015624, 0.37421876, 0.38828123,
  0.40234375, 0.41640624, 0.43046874, 0.44453126, 0.45859373, 0.47265625, 0.4867187, 0.50078124,
  0.5148437, 0.5289062, 0.54296875, 0.5570313, 0.5710938, 0.58515626, 0.5992187, 0.61328125,
  0.6273438, 0.6414063, 0.65546876, 0.6695312, 0.68359375, 0.6976563, 0.7117188, 0.72578126,
  0.7398437, 0.75390625, 0.7679688, 0.78203124, 0.79609376, 0.8101562, 0.82421875, 0.8382813,
  0.85234374, 0.86640626, 0.8804687, 0.89453125, 0.9085938, 0.92265624, 0.93671876, 0.9507812,
  0.96484375, 0.9789063, 0.99296874,
];

function buildDynamicMap(): Float32Array {
  const code = new Float32Array(256);
  for (let k = 0; k < 127; k++) {
    const p = DYNAMIC_POSITIVE[k] as number;
    code[126 - k] = -p;
    code[128 + k] = p;
  }
  code[127] = 0;
  code[255] = 1;
  return code;
}

/**
 * bitsandbytes' signed 8-bit dynamic map (256 sorted float32 values, 0 at index 127, +1 at 255,
 * most negative -0.99296874): the code double quantization uses for the absmax values.
 *
 * @example
 * ```ts
 * import { DYNAMIC_CODE } from '@qlora/nf4';
 * DYNAMIC_CODE.length; // 256
 * DYNAMIC_CODE[127]; // 0
 * ```
 */
export const DYNAMIC_CODE: Float32Array = buildDynamicMap();
