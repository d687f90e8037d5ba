import type * as tf from '@tensorflow/tfjs-core';
import { rowAbsmax } from './_webgpu-int8';
import {
  type PackedRows,
  PackRowsProgram,
  packRows,
  RAW_PRODUCT_ENTRY,
  type RowProductFamily,
  rawProductHeader,
  rowProduct,
  SUBGROUP_SIZE,
  subgroupMatrixUnsupportedReason,
} from './_webgpu-row-products';
import { LoraError } from './errors';

// f16 tensor cores on WebGPU: Dawn exposes `subgroup_matrix` f16 × f16 → f32 (M16 N16 K16 on
// NVIDIA) once the instance has the `vulkan_enable_f16_on_nvidia` toggle. Each row (token of the
// activations, output channel of the weight) is scaled by a power of two so that its largest
// magnitude lies in [2^14, 2^15), then rounded to f16: an exact scaling that keeps every value
// inside f16's range and all but those below ~2^-28 of the row's largest normal, so the loss is
// the rounding to 11 significant bits (TF32's precision). Products are summed in f32 by the tensor cores and the
// epilogue multiplies back by the two powers of two (exact).

const PACK_F16_KERNEL = 'QloraPackF16';
const F16_MATMUL_KERNEL = 'QloraF16MatMul';

/** Rows of activations are padded to this (the product's workgroup tile height). */
export const F16_ROW_TILE = 128;
/** Weight rows (output columns) are padded to this (the product's workgroup tile width). */
export const F16_COLUMN_TILE = 64;
/** K is padded to this many values (the product's K step through workgroup memory). */
const F16_K_TILE = 32;
const SUBGROUP_MATRIX_FEATURE = 'chromium-experimental-subgroup-matrix';

/**
 * A matrix scaled and rounded to f16 row by row: `words` packs 2 values per int32 word (column
 * 2w in the low half), `rowsPadded × kWords` words, padded rows and columns 0. `absmax[r]` is the
 * row's largest magnitude; the row was multiplied by 2^(14 − floor(log2 absmax)) before rounding.
 */
export type F16Rows = PackedRows;

/**
 * Why the active backend cannot run {@link f16MatMul}, or undefined when it can: it needs webgpu
 * on a device with `shader-f16`, `subgroups` and `chromium-experimental-subgroup-matrix`,
 * subgroups of 32, and an f16 × f16 → f32 M16 N16 K16 configuration (NVIDIA through Vulkan, with
 * Dawn's `vulkan_enable_f16_on_nvidia` toggle).
 */
function f16MatMulUnsupportedReason(): string | undefined {
  return subgroupMatrixUnsupportedReason(['shader-f16', SUBGROUP_MATRIX_FEATURE, 'subgroups'], {
    componentType: 'f16',
    resultComponentType: 'f32',
    M: 16,
    N: 16,
    K: 16,
  });
}

/** Throws a LoraError naming what is missing when the active backend cannot run {@link f16MatMul}. */
export function requireF16MatMul(what: string): void {
  const reason = f16MatMulUnsupportedReason();
  if (reason !== undefined) {
    throw new LoraError(
      'E_OPTIONS',
      `${what}: expected the webgpu backend with f16 subgroup matrices (f16 × f16 → f32, 16 × 16 × 16, subgroups of 32), got ${reason}. Hint: start it with initBackend('webgpu', { f16TensorCores: true }) on a GPU whose Dawn adapter offers them (NVIDIA through Vulkan).`,
    );
  }
}

/** Whether the active backend can run {@link f16MatMul} (see {@link f16MatMulUnsupportedReason}). */
export function supportsF16MatMul(): boolean {
  return f16MatMulUnsupportedReason() === undefined;
}

// The power of two 2^(floor(log2 absmax) − 14) of a row, from the exponent bits (exact; 1 for
// rows whose absmax is 0 or below 2^-112), and its inverse.
const WGSL_ROW_SCALE = `
fn qloraRowScale(absmax : f32) -> f32 {
  let e = (bitcast<u32>(absmax) >> 23u) & 0xffu;
  return select(1.0, bitcast<f32>((e - 14u) << 23u), e > 14u);
}
fn qloraInverseRowScale(absmax : f32) -> f32 {
  let e = (bitcast<u32>(absmax) >> 23u) & 0xffu;
  return select(1.0, bitcast<f32>((268u - e) << 23u), e > 14u);
}`;

// One thread per output word: 2 columns of a row, scaled and rounded to f16 by pack2x16float.
class PackF16Program extends PackRowsProgram {
  readonly shaderKey = 'qloraPackF16';

  getUserCode(): string {
    return `${WGSL_ROW_SCALE}
      fn main(index : i32) {
        if (index < uniforms.size) {
          let row = index / uniforms.kWords;
          let col = (index % uniforms.kWords) * 2;
          var pair = vec2<f32>(0.0, 0.0);
          if (row < uniforms.rows) {
            let inverse = qloraInverseRowScale(absmax[row]);
            if (col < uniforms.k) {
              pair.x = x[row * uniforms.k + col] * inverse;
            }
            if (col + 1 < uniforms.k) {
              pair.y = x[row * uniforms.k + col + 1] * inverse;
            }
          }
          result[index] = bitcast<i32>(pack2x16float(pair));
        }
      }
    `;
  }
}

// Halves of one K step per row in workgroup memory: 32 columns plus 8 of padding against bank
// conflicts.
const STRIDE = 40;

/**
 * The product: a workgroup of 4 subgroups computes a 128 × 64 tile of C; subgroup s owns the
 * 64 × 32 block at ((s / 2)·64, (s % 2)·32) as 4 × 2 accumulators of 16 × 16 (f32). Each K step
 * stages 32 f16 columns of the tile's A and B rows in workgroup memory. The epilogue goes through
 * workgroup memory (a store's pointer must be uniform) and multiplies by the rows' scales.
 */
export function f16MatMulSource(n: number, kWords: number): string {
  const body: string[] = [];
  for (let i = 0; i < 4; i++) {
    body.push(
      `let a${i} = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>>(&tileA, (subRow + ${16 * i}u) * ${STRIDE}u + kk, false, ${STRIDE}u);`,
    );
  }
  for (let j = 0; j < 2; j++) {
    body.push(
      `let b${j} = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>>(&tileB, (subCol + ${16 * j}u) * ${STRIDE}u + kk, true, ${STRIDE}u);`,
    );
  }
  const declarations: string[] = [];
  const epilogue: string[] = [];
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < 2; j++) {
      declarations.push(`var c${i}${j} = subgroup_matrix_result<f32, 16, 16>();`);
      body.push(`c${i}${j} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, c${i}${j});`);
      epilogue.push(`subgroupMatrixStore(&scratch[sub], ${16 * j}u, c${i}${j}, false, 32u);`);
    }
    epilogue.push(`workgroupBarrier();
  for (var e = lane; e < 512u; e += ${SUBGROUP_SIZE}u) {
    let row = rowBase + subRow + ${16 * i}u + e / 32u;
    let col = colBase + subCol + e % 32u;
    if (col < N) {
      result[row * N + col] = scratch[sub][e] * (qloraRowScale(ax[row]) * qloraRowScale(aw[col]));
    }
  }
  workgroupBarrier();`);
  }
  return `${rawProductHeader({ enables: ['f16'], x: 'xh', w: 'wh', word: 'u32', n, kWords })}var<workgroup> tileA : array<f16, ${128 * STRIDE}>;
var<workgroup> tileB : array<f16, ${64 * STRIDE}>;
var<workgroup> scratch : array<array<f32, 512>, 4>;
${WGSL_ROW_SCALE}
${RAW_PRODUCT_ENTRY}
  let colBase = group.x * 64u;
  let subRow = (sub / 2u) * 64u;
  let subCol = (sub % 2u) * 32u;
  ${declarations.join('\n  ')}
  for (var k = 0u; k < WORDS; k += 16u) {
    for (var i = 0u; i < 16u; i++) {
      let e = local + i * 128u;
      let pair = unpack2x16float(xh[(rowBase + e / 16u) * WORDS + k + e % 16u]);
      let at = (e / 16u) * ${STRIDE}u + (e % 16u) * 2u;
      tileA[at] = f16(pair.x);
      tileA[at + 1u] = f16(pair.y);
    }
    for (var i = 0u; i < 8u; i++) {
      let e = local + i * 128u;
      let pair = unpack2x16float(wh[(colBase + e / 16u) * WORDS + k + e % 16u]);
      let at = (e / 16u) * ${STRIDE}u + (e % 16u) * 2u;
      tileB[at] = f16(pair.x);
      tileB[at + 1u] = f16(pair.y);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 32u; kk += 16u) {
      ${body.join('\n      ')}
    }
    workgroupBarrier();
  }
  ${epilogue.join('\n  ')}
}
`;
}

const F16: RowProductFamily = {
  name: 'f16',
  packKernel: PACK_F16_KERNEL,
  productKernel: F16_MATMUL_KERNEL,
  valuesPerWord: 2,
  kTile: F16_K_TILE,
  xRowTile: F16_ROW_TILE,
  wRowTile: F16_COLUMN_TILE,
  packProgram: (words) => new PackF16Program(words),
  product: (_rowsPadded, n, kWords) => ({
    key: `qloraF16MatMul_${n}_${kWords}`,
    source: () => f16MatMulSource(n, kWords),
    tile: { rows: F16_ROW_TILE, columns: F16_COLUMN_TILE },
  }),
};

/**
 * Scales each row of `x` (`[rows, cols]`, f32) by a power of two (largest magnitude into
 * [2^14, 2^15)) and rounds it to f16, padding rows to a multiple of `rowMultiple` and columns
 * to a multiple of {@link F16_K_TILE}. webgpu only (no f16 extension needed for this step).
 */
export function packRowsF16(x: tf.Tensor2D, rowMultiple: number): F16Rows {
  return packRows(F16, x, rowMultiple, rowAbsmax);
}

/**
 * `x · wᵀ` on the f16 tensor cores from row-packed operands: `[x.rows, w.rows]` f32, each element
 * the f32 sum of the f16 products, times the two rows' scales. `x` must be padded to
 * {@link F16_ROW_TILE} rows, `w` to {@link F16_COLUMN_TILE}. Requires {@link supportsF16MatMul}.
 */
export function f16MatMul(x: F16Rows, w: F16Rows): tf.Tensor2D {
  return rowProduct(F16, x, w);
}
