// The W8A8 arithmetic of _webgpu-int8.ts in JavaScript, for the GPU bench's checks at scale:
// per-row absmax, codes round-half-even(x · fround(127 / absmax)) clamped to ±127 (bitsandbytes'
// int8_vectorwise_quant), an exact integer dot product, and the epilogue's f32 roundings. It is
// itself held to the numpy replay of bitsandbytes (test-fixtures/lora/int8_vectorwise.json) in
// int8-linear.test.ts.

/** Round half to even, as WGSL's round() and torch.round. */
function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const diff = value - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** Row-wise int8 codes and absmax of a row-major `[rows, cols]` matrix. */
export function quantizeRowsReference(
  values: Float32Array,
  rows: number,
  cols: number,
): { codes: Int8Array; absmax: Float32Array } {
  const codes = new Int8Array(rows * cols);
  const absmax = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let max = 0;
    for (let c = 0; c < cols; c++) max = Math.max(max, Math.abs(values[r * cols + c] as number));
    absmax[r] = max;
    const inverse = max > 0 ? Math.fround(127 / max) : 0;
    for (let c = 0; c < cols; c++) {
      const scaled = Math.fround((values[r * cols + c] as number) * inverse);
      codes[r * cols + c] = Math.max(-127, Math.min(127, roundHalfEven(scaled)));
    }
  }
  return { codes, absmax };
}

const INVERSE_127_SQUARED = Math.fround(1 / 16129);

/**
 * The kernel's output element: `f32(acc) · (absmax_x · absmax_w · f32(1/127²))`, each product
 * rounded to f32 as the GPU does.
 */
export function int8ProductReference(
  x: { codes: Int8Array; absmax: Float32Array },
  w: { codes: Int8Array; absmax: Float32Array },
  k: number,
  row: number,
  col: number,
): number {
  let acc = 0;
  for (let i = 0; i < k; i++) {
    acc += (x.codes[row * k + i] as number) * (w.codes[col * k + i] as number);
  }
  const scale = Math.fround(
    Math.fround((x.absmax[row] as number) * (w.absmax[col] as number)) * INVERSE_127_SQUARED,
  );
  return Math.fround(Math.fround(acc) * scale);
}
