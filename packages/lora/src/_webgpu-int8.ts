import * as tf from '@tensorflow/tfjs-core';
import { type WebgpuBackendLike, WGSL_WORKGROUP_ROW, wgslTreeReduce } from './_webgpu-kernel';
import {
  int32Uniforms,
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

// W8A8 on WebGPU: rows are quantized to int8 with one absmax per row (per token for activations,
// per output channel for weights, as LLM.int8()'s vector-wise quantization without outliers), and
// the integer product runs on the tensor cores that Dawn exposes as `subgroup_matrix` i8 x i8 -> i32
// (M16 N16 K32 on NVIDIA). y[m, n] = acc[m, n] · (absmax_x[m] · absmax_w[n] / 127²).

/** Name of the int8 subgroup-matrix product (webgpu only). */
const INT8_MATMUL_KERNEL = 'QloraInt8MatMul';
const ROW_ABSMAX_KERNEL = 'QloraRowAbsmax';
const PACK_INT8_KERNEL = 'QloraPackInt8';

/** Rows of activations are padded to this (the product's workgroup tile height). */
export const INT8_ROW_TILE = 128;
/** K is padded to this many int8 values (the product's K step through workgroup memory). */
const INT8_K_TILE = 64;
const SUBGROUP_MATRIX_FEATURE = 'chromium-experimental-subgroup-matrix';

/**
 * A matrix quantized row by row to int8: `words` packs 4 codes per int32 word (little-endian,
 * column 4w + b in byte b), `rowsPadded × kWords` words; padded rows and columns hold 0.
 * `absmax[r]` is the row's largest magnitude (0 for padded rows); value ≈ code · absmax / 127.
 */
export type Int8Rows = PackedRows;

/**
 * Why the active backend cannot run {@link int8MatMul}, or undefined when it can: it needs webgpu
 * on a device created with the `subgroups` and `chromium-experimental-subgroup-matrix` features,
 * subgroups of 32, and an i8 × i8 → i32 M16 N16 K32 configuration (NVIDIA through Vulkan).
 */
export function int8MatMulUnsupportedReason(): string | undefined {
  return subgroupMatrixUnsupportedReason([SUBGROUP_MATRIX_FEATURE, 'subgroups'], {
    componentType: 'i8',
    resultComponentType: 'i32',
    M: 16,
    N: 16,
    K: 32,
  });
}

/** Whether the active backend can run {@link int8MatMul} (see {@link int8MatMulUnsupportedReason}). */
export function supportsInt8MatMul(): boolean {
  return int8MatMulUnsupportedReason() === undefined;
}

// One workgroup (64 threads) per row: the row's largest |x|; rows past `rows` get 0.
class RowAbsmaxProgram {
  readonly variableNames = ['x'];
  readonly uniforms = 'rows : i32, k : i32,';
  readonly size = true;
  readonly workgroupSize: [number, number, number] = [64, 1, 1];
  readonly outputShape: number[];
  readonly dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  readonly shaderKey = 'qloraRowAbsmax';

  constructor(rowsPadded: number) {
    this.outputShape = [rowsPadded];
    this.dispatch = [rowsPadded, 1, 1];
  }

  getUserCode(): string {
    return `
      var<workgroup> partial : array<f32, 64>;
      fn main(index : i32) {
        let row = ${WGSL_WORKGROUP_ROW};
        let lane = i32(localId.x);
        var m = 0.0;
        if (row < uniforms.rows) {
          for (var c = lane; c < uniforms.k; c += 64) {
            m = max(m, abs(x[row * uniforms.k + c]));
          }
        }
        partial[lane] = m;${wgslTreeReduce('partial', 64, (a, b) => `max(${a}, ${b})`)}
        if (lane == 0 && row < uniforms.size) {
          result[row] = partial[0];
        }
      }
    `;
  }
}

// One thread per output word: 4 codes round(x · 127 / absmax), clamped to ±127 (WGSL's round
// is half to even, as torch.round).
class PackInt8Program extends PackRowsProgram {
  readonly shaderKey = 'qloraPackInt8';

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let row = index / uniforms.kWords;
          let word = index % uniforms.kWords;
          var packed = 0u;
          if (row < uniforms.rows) {
            let a = absmax[row];
            let inverse = select(0.0, 127.0 / a, a > 0.0);
            for (var b = 0; b < 4; b++) {
              let col = word * 4 + b;
              if (col < uniforms.k) {
                let q = i32(clamp(round(x[row * uniforms.k + col] * inverse), -127.0, 127.0));
                packed = packed | ((bitcast<u32>(q) & 0xffu) << (u32(b) * 8u));
              }
            }
          }
          result[index] = bitcast<i32>(packed);
        }
      }
    `;
  }
}

// The product: a workgroup of 4 subgroups computes a 128 × (32·TN) tile of C; subgroup s owns the
// 64 × (16·TN) block at ((s / 2)·64, (s % 2)·16·TN) as 4 × TN accumulators of 16 × 16. Each K step
// stages 64 int8 columns of the tile's A rows and B rows in workgroup memory (rows padded to 80
// bytes against bank conflicts); the epilogue goes through workgroup memory, because a store's
// pointer must be uniform, and scales each i32 by absmax_x · absmax_w / 127².
export function int8MatMulSource(n: number, kWords: number, tn: number): string {
  const rowsB = 32 * tn;
  const body: string[] = [];
  for (let i = 0; i < 4; i++) {
    body.push(
      `let a${i} = subgroupMatrixLoad<subgroup_matrix_left<i8, 32, 16>>(&tileA, (subRow + ${16 * i}u) * 80u + kk, false, 80u);`,
    );
  }
  for (let j = 0; j < tn; j++) {
    body.push(
      `let b${j} = subgroupMatrixLoad<subgroup_matrix_right<i8, 16, 32>>(&tileB, (subCol + ${16 * j}u) * 80u + kk, true, 80u);`,
    );
  }
  const declarations: string[] = [];
  const epilogue: string[] = [];
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < tn; j++) {
      declarations.push(`var c${i}${j} = subgroup_matrix_result<i32, 16, 16>();`);
      body.push(`c${i}${j} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, c${i}${j});`);
      epilogue.push(
        `subgroupMatrixStore(&scratch[sub], ${16 * j}u, c${i}${j}, false, ${16 * tn}u);`,
      );
    }
    epilogue.push(`workgroupBarrier();
  for (var e = lane; e < ${256 * tn}u; e += ${SUBGROUP_SIZE}u) {
    let row = rowBase + subRow + ${16 * i}u + e / ${16 * tn}u;
    let col = colBase + subCol + e % ${16 * tn}u;
    if (col < N) {
      result[row * N + col] = f32(scratch[sub][e]) * (ax[row] * aw[col] * (1.0 / 16129.0));
    }
  }
  workgroupBarrier();`);
  }
  return `${rawProductHeader({ enables: [], x: 'xq', w: 'wq', word: 'i32', n, kWords })}var<workgroup> tileA : array<i32, ${128 * 20}>;
var<workgroup> tileB : array<i32, ${rowsB * 20}>;
var<workgroup> scratch : array<array<i32, ${256 * tn}>, 4>;
${RAW_PRODUCT_ENTRY}
  let colBase = group.x * ${rowsB}u;
  let subRow = (sub / 2u) * 64u;
  let subCol = (sub % 2u) * ${16 * tn}u;
  ${declarations.join('\n  ')}
  for (var k = 0u; k < WORDS; k += 16u) {
    for (var i = 0u; i < 16u; i++) {
      let e = local + i * 128u;
      tileA[(e / 16u) * 20u + e % 16u] = xq[(rowBase + e / 16u) * WORDS + k + e % 16u];
    }
    for (var i = 0u; i < ${(rowsB * 16) / 128}u; i++) {
      let e = local + i * 128u;
      tileB[(e / 16u) * 20u + e % 16u] = wq[(colBase + e / 16u) * WORDS + k + e % 16u];
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 64u; kk += 32u) {
      ${body.join('\n      ')}
    }
    workgroupBarrier();
  }
  ${epilogue.join('\n  ')}
}
`;
}

function registerOnce(): void {
  if (tf.getKernel(ROW_ABSMAX_KERNEL, 'webgpu') !== undefined) return;
  tf.registerKernel({
    kernelName: ROW_ABSMAX_KERNEL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x } = inputs as { x: tf.TensorInfo };
      const { rowsPadded } = attrs as unknown as { rowsPadded: number };
      const [rows, k] = x.shape as [number, number];
      return (backend as unknown as WebgpuBackendLike).runWebGPUProgram(
        new RowAbsmaxProgram(rowsPadded),
        [x],
        'float32',
        int32Uniforms(rows, k),
      );
    },
  });
}

/** Tile width in 32-column units: 4 (128 columns) when there are enough tiles to fill the GPU. */
function tileColumns(rowsPadded: number, n: number): number {
  const tiles = (rowsPadded / 128) * Math.ceil(n / 128);
  return tiles >= 256 ? 4 : 2;
}

const INT8: RowProductFamily = {
  name: 'int8',
  packKernel: PACK_INT8_KERNEL,
  productKernel: INT8_MATMUL_KERNEL,
  valuesPerWord: 4,
  kTile: INT8_K_TILE,
  xRowTile: INT8_ROW_TILE,
  wRowTile: 128,
  packProgram: (words) => new PackInt8Program(words),
  product: (rowsPadded, n, kWords) => {
    const tn = tileColumns(rowsPadded, n);
    return {
      key: `qloraInt8MatMul_${n}_${kWords}_${tn}`,
      source: () => int8MatMulSource(n, kWords, tn),
      tile: { rows: 128, columns: 32 * tn },
    };
  },
};

/** The largest |x| of each row of `x` (`[rows, cols]`), 0 for rows `rows..rowsPadded-1`. webgpu only. */
export function rowAbsmax(x: tf.Tensor2D, rowsPadded: number): tf.Tensor1D {
  registerOnce();
  return tf.engine().runKernel(ROW_ABSMAX_KERNEL, { x }, {
    rowsPadded,
  } as unknown as tf.NamedAttrMap) as tf.Tensor1D;
}

/**
 * Quantizes the rows of `x` (`[rows, cols]`, f32) to int8 with one absmax per row, padding rows
 * to a multiple of `rowMultiple` and columns to a multiple of {@link INT8_K_TILE}. webgpu only.
 */
export function quantizeRowsInt8(x: tf.Tensor2D, rowMultiple: number): Int8Rows {
  return packRows(INT8, x, rowMultiple, rowAbsmax);
}

/**
 * `x · wᵀ` from row-quantized operands on the int8 tensor cores: `[x.rows, w.rows]` f32, where
 * element (m, n) is `Σ_k xq[m,k]·wq[n,k]` (exact in i32) times `absmax_x[m]·absmax_w[n]/127²`.
 * `w` must be padded to 128 rows; `x` to {@link INT8_ROW_TILE}. Requires
 * {@link supportsInt8MatMul}.
 */
export function int8MatMul(x: Int8Rows, w: Int8Rows): tf.Tensor2D {
  return rowProduct(INT8, x, w);
}
