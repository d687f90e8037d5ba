import * as tf from '@tensorflow/tfjs-core';
import type { WebgpuBackendLike } from './_webgpu-kernel';

/** Name of the tiled f32 matmul kernel (webgpu only). */
export const TILED_MATMUL_KERNEL = 'QloraTiledMatMul';
/** Name of the fused NF4/FP4 dequantize-and-multiply kernel (webgpu only). */
export const NF4_MATMUL_KERNEL = 'QloraNf4MatMul';

/**
 * Where the right operand's element (k, n) lives: `'nk'` stores B as `[N, K]` (the weight of a
 * linear layer, `y = x · Wᵀ`), `'kn'` as `[K, N]` (`dx = dy · W`).
 */
export type RightLayout = 'nk' | 'kn';

// One workgroup computes a 128 × 128 tile of C with 256 threads, 8 × 8 outputs each, walking K
// in steps of 16 through workgroup memory (2 × 16 × 128 f32 = 16 KiB, WebGPU's default limit).
// A thread's rows are 4 at ty·4 and 4 at 64 + ty·4 (columns likewise with tx), so the 16 threads
// of a row read 16 consecutive vec4 of the shared tile: no bank conflicts on the hot loop.
const TILE = 128;
const TILE_K = 16;
const THREADS = 16; // per dimension
const VEC_PER_ROW = TILE / 4; // vec4 per k-row of a shared tile

/** Dimension rules of the tiled kernels; callers fall back to `tf.matMul` when they fail. */
export function tiledShapeSupported(k: number, n: number, layout: RightLayout): boolean {
  // Every 8-value load of a row must lie inside that row: K (rows of A and 'nk' B) and N ('kn'
  // B, and the vec4 output) are multiples of 8.
  return k % 8 === 0 && n % 8 === 0 && k > 0 && n > 0 && (layout === 'nk' || layout === 'kn');
}

function accumulate(): string {
  // acc{r}{h}: row r (0..7; rows 4..7 are the lower half-tile), column half h (0, 1).
  const lines: string[] = [];
  const lanes = ['x', 'y', 'z', 'w'];
  for (let r = 0; r < 8; r++) {
    const a = `${r < 4 ? 'aLo' : 'aHi'}.${lanes[r % 4]}`;
    lines.push(`acc${r}0 = fma(vec4<f32>(${a}), bLo, acc${r}0);`);
    lines.push(`acc${r}1 = fma(vec4<f32>(${a}), bHi, acc${r}1);`);
  }
  return lines.join('\n          ');
}

function declareAccumulators(): string {
  const lines: string[] = [];
  for (let r = 0; r < 8; r++) {
    for (let h = 0; h < 2; h++) lines.push(`var acc${r}${h} = vec4<f32>(0.0);`);
  }
  return lines.join('\n        ');
}

function writeOutput(): string {
  const lines: string[] = [];
  for (let r = 0; r < 8; r++) {
    const row = r < 4 ? `rowBase + ty * 4 + ${r}` : `rowBase + 64 + ty * 4 + ${r - 4}`;
    lines.push(`
        {
          let row = ${row};
          if (row < dimM) {
            if (colLo < dimN) { result[(split + row * dimN + colLo) / 4] = acc${r}0; }
            if (colHi < dimN) { result[(split + row * dimN + colHi) / 4] = acc${r}1; }
          }
        }`);
  }
  return lines.join('');
}

// Stores 8 consecutive k of one row (m or n) into a transposed shared tile [k][row].
function storeTransposed(tile: string, v0: string, v1: string): string {
  const lanes = ['x', 'y', 'z', 'w'];
  const lines: string[] = [];
  for (let i = 0; i < 8; i++) {
    const v = i < 4 ? v0 : v1;
    lines.push(
      `${tile}[(loadK + ${i}) * ${VEC_PER_ROW} + loadRow / 4][loadRow % 4] = ${v}.${lanes[i % 4]};`,
    );
  }
  return lines.join('\n            ');
}

// The 8 values of one packed word, `table[code] · scale` (one f32 product, as in @qlora/nf4):
// nibble p (0..7) sits in byte p >> 1, the high nibble for even p (bitsandbytes' order).
const DECODE_WORD = `
      fn decodeWord(word : u32, scale : f32) -> array<vec4<f32>, 2> {
        var out : array<vec4<f32>, 2>;
        for (var p = 0u; p < 8u; p++) {
          let shift = (p >> 1u) * 8u + select(0u, 4u, (p & 1u) == 0u);
          out[p / 4u][p % 4u] = table[(word >> shift) & 15u] * scale;
        }
        return out;
      }`;

// Global → registers for the tile starting at k = kTile (zeros outside the matrices).
function loadTiles(layout: RightLayout, nf4: boolean, kTile: string): string {
  const a = `
          {
            let m = rowBase + loadRow;
            let k = ${kTile} + loadK;
            ra0 = vec4<f32>(0.0);
            ra1 = vec4<f32>(0.0);
            if (m < dimM && k < kEnd) {
              let base = (m * dimK + k) / 4;
              ra0 = A[base];
              ra1 = A[base + 1];
            }
          }`;
  // 'nk': B row n = colBase + loadRow, k … k+7; 'kn': B row k = kTile + tid / 16, columns
  // colBase + (tid % 16) · 8 … +7.
  const coords =
    layout === 'nk'
      ? `let n = colBase + loadRow;
            let k = ${kTile} + loadK;
            let flat = n * dimK + k;`
      : `let k = ${kTile} + tid / 16;
            let n = colBase + (tid % 16) * 8;
            let flat = k * dimN + n;`;
  const fetch = nf4
    ? `rw = 0u;
            rs = 0.0;
            if (n < dimN && k < kEnd) {
              rw = bitcast<u32>(B[flat / 8]);
              rs = absmax[flat / uniforms.blocksize];
            }`
    : `rb0 = vec4<f32>(0.0);
            rb1 = vec4<f32>(0.0);
            if (n < dimN && k < kEnd) {
              rb0 = B[flat / 4];
              rb1 = B[flat / 4 + 1];
            }`;
  return `${a}
          {
            ${coords}
            ${fetch}
          }`;
}

// Registers → workgroup memory (NF4 words decoded here).
function storeTiles(layout: RightLayout, nf4: boolean): string {
  const decoded = nf4 ? 'let v = decodeWord(rw, rs);' : '';
  const [b0, b1] = nf4 ? ['v[0]', 'v[1]'] : ['rb0', 'rb1'];
  const b =
    layout === 'nk'
      ? storeTransposed('tileB', b0, b1)
      : `tileB[(tid / 16) * ${VEC_PER_ROW} + (tid % 16) * 2] = ${b0};
            tileB[(tid / 16) * ${VEC_PER_ROW} + (tid % 16) * 2 + 1] = ${b1};`;
  return `
          ${storeTransposed('tileA', 'ra0', 'ra1')}
          {
            ${decoded}
            ${b}
          }`;
}

/**
 * A tfjs-backend-webgpu program computing `C[M, N] = A[M, K] · B` with B either f32 or packed
 * 4-bit codes (`int32` words, 8 codes each, bitsandbytes' byte order) scaled per block by absmax.
 */
export class TiledMatMulProgram {
  readonly variableNames: string[];
  readonly variableComponents: number[];
  readonly outputComponent = 4;
  readonly uniforms = 'dimM : i32, dimN : i32, dimK : i32, blocksize : i32, kSplit : i32,';
  readonly workgroupSize: [number, number, number] = [THREADS, THREADS, 1];
  readonly outputShape: number[];
  readonly dispatchLayout = { x: [1], y: [0] };
  dispatch: [number, number, number];
  shaderKey: string;
  private readonly layout: RightLayout;
  private readonly nf4: boolean;

  constructor(m: number, n: number, layout: RightLayout, nf4: boolean, splits = 1) {
    this.outputShape = splits > 1 ? [splits, m, n] : [m, n];
    this.layout = layout;
    this.nf4 = nf4;
    this.variableNames = nf4 ? ['A', 'B', 'absmax', 'table'] : ['A', 'B'];
    this.variableComponents = nf4 ? [4, 1, 1, 1] : [4, 4];
    this.dispatch = [Math.ceil(n / TILE), Math.ceil(m / TILE), splits];
    this.shaderKey = `qloraTiledMatMul_${layout}_${nf4 ? 'q4' : 'f32'}${splits > 1 ? '_splitK' : ''}`;
  }

  getUserCode(): string {
    const { layout, nf4 } = this;
    const registers = nf4
      ? 'var rw = 0u;\n        var rs = 0.0;'
      : 'var rb0 = vec4<f32>(0.0);\n        var rb1 = vec4<f32>(0.0);';
    // The next K-tile is loaded into registers while the current one is multiplied.
    // The trip count is uniform (kSplit / TILE_K, as WGSL requires around barriers); tiles past
    // kEnd load zeros.
    const body = `${loadTiles(layout, nf4, 'kBegin')}
        for (var t = 0; t < uniforms.kSplit / ${TILE_K}; t++) {
          let kTile = kBegin + t * ${TILE_K};
          ${storeTiles(layout, nf4)}
          workgroupBarrier();
          ${loadTiles(layout, nf4, `(kTile + ${TILE_K})`)}
          ${multiplyTile()}
          workgroupBarrier();
        }`;
    return `
      var<workgroup> tileA : array<vec4<f32>, ${TILE_K * VEC_PER_ROW}>;
      var<workgroup> tileB : array<vec4<f32>, ${TILE_K * VEC_PER_ROW}>;
      ${nf4 ? DECODE_WORD : ''}

      fn main() {
        let dimM = uniforms.dimM;
        let dimN = uniforms.dimN;
        let dimK = uniforms.dimK;
        // Split K: workgroup z sums k in [z·kSplit, (z+1)·kSplit) into its own [M, N] slice.
        let kBegin = i32(workgroupId.z) * uniforms.kSplit;
        let kEnd = min(dimK, kBegin + uniforms.kSplit);
        let split = i32(workgroupId.z) * dimM * dimN;
        let tx = i32(localId.x);
        let ty = i32(localId.y);
        let tid = ty * ${THREADS} + tx;
        let rowBase = i32(workgroupId.y) * ${TILE};
        let colBase = i32(workgroupId.x) * ${TILE};
        // Loads of the row-major [rows, K] tiles: row tid / 2 of the tile, k offset 0 or 8.
        let loadRow = tid / 2;
        let loadK = (tid % 2) * 8;
        var ra0 = vec4<f32>(0.0);
        var ra1 = vec4<f32>(0.0);
        ${registers}
        ${declareAccumulators()}
        ${body}
        let colLo = colBase + tx * 4;
        let colHi = colBase + 64 + tx * 4;
        ${writeOutput()}
      }
    `;
  }
}

function multiplyTile(): string {
  return `for (var kk = 0; kk < ${TILE_K}; kk++) {
            let aLo = tileA[kk * ${VEC_PER_ROW} + ty];
            let aHi = tileA[kk * ${VEC_PER_ROW} + 16 + ty];
            let bLo = tileB[kk * ${VEC_PER_ROW} + tx];
            let bHi = tileB[kk * ${VEC_PER_ROW} + 16 + tx];
            ${accumulate()}
          }`;
}

// Split K when the [M, N] tiles alone cannot fill the GPU (an H200 holds two of these workgroups
// on each of its 132 SMs) and K is long: the vocabulary head's dx = dlogits · W has M = 523 rows
// per loss chunk, N = 2048 and K = 128,256, which is 80 tiles. Each split keeps ≥ 2048 of K.
const TARGET_WORKGROUPS = 256;
const MIN_SPLIT_K = 2048;
const MAX_SPLITS = 8;

/** How many K ranges a `[m, k] · [k, n]` product is cut into (1: no split). */
export function splitCount(m: number, n: number, k: number): number {
  const tiles = Math.ceil(m / TILE) * Math.ceil(n / TILE);
  const wanted = Math.floor(TARGET_WORKGROUPS / tiles);
  return Math.max(1, Math.min(wanted, MAX_SPLITS, Math.floor(k / MIN_SPLIT_K)));
}

/** K per split, a whole number of K-tiles. */
function kPerSplit(k: number, splits: number): number {
  return Math.ceil(k / splits / TILE_K) * TILE_K;
}

// One entry per scalar: tfjs aligns an entry of 4 values as a vec4, the struct fields are i32s.
function scalarUniforms(...values: number[]): { type: 'int32'; data: number[] }[] {
  return values.map((value) => ({ type: 'int32', data: [value] }));
}

function registerOnce(): void {
  if (tf.getKernel(TILED_MATMUL_KERNEL, 'webgpu') !== undefined) return;
  tf.registerKernel({
    kernelName: TILED_MATMUL_KERNEL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const { layout, splits } = attrs as unknown as { layout: RightLayout; splits: number };
      const [m, k] = a.shape as [number, number];
      const n = layout === 'nk' ? (b.shape[0] as number) : (b.shape[1] as number);
      return (backend as unknown as WebgpuBackendLike).runWebGPUProgram(
        new TiledMatMulProgram(m, n, layout, false, splits),
        [a, b],
        'float32',
        scalarUniforms(m, n, k, 1, kPerSplit(k, splits)),
      );
    },
  });
  tf.registerKernel({
    kernelName: NF4_MATMUL_KERNEL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { a, packed, absmax, table } = inputs as Record<string, tf.TensorInfo>;
      const { layout, n, blocksize, splits } = attrs as unknown as {
        layout: RightLayout;
        n: number;
        blocksize: number;
        splits: number;
      };
      const [m, k] = (a as tf.TensorInfo).shape as [number, number];
      return (backend as unknown as WebgpuBackendLike).runWebGPUProgram(
        new TiledMatMulProgram(m, n, layout, true, splits),
        [a, packed, absmax, table] as tf.TensorInfo[],
        'float32',
        scalarUniforms(m, n, k, blocksize, kPerSplit(k, splits)),
      );
    },
  });
}

/**
 * `a · b` (layout `'kn'`, b `[K, N]`) or `a · bᵀ` (layout `'nk'`, b `[N, K]`) with the tiled WGSL
 * kernel. No gradient; webgpu backend only; K and N multiples of 8 (see
 * {@link tiledShapeSupported}).
 */
export function tiledMatMul(a: tf.Tensor2D, b: tf.Tensor2D, layout: RightLayout): tf.Tensor2D {
  registerOnce();
  const [m, k] = a.shape;
  const splits = splitCount(m, layout === 'nk' ? b.shape[0] : b.shape[1], k);
  return sumSplits(
    tf.engine().runKernel(TILED_MATMUL_KERNEL, { a, b }, {
      layout,
      splits,
    } as unknown as tf.NamedAttrMap) as tf.Tensor,
  );
}

/** `[splits, M, N]` partial products → `[M, N]` (a no-op without a split). */
function sumSplits(out: tf.Tensor): tf.Tensor2D {
  if (out.rank === 2) return out as tf.Tensor2D;
  const summed = tf.sum(out, 0) as tf.Tensor2D;
  out.dispose();
  return summed;
}

/**
 * `x · dequant(W)ᵀ` (`'nk'`, W `[N, K]` → `[M, N]`) or `x · dequant(W)` (`'kn'`, W `[K, N]` →
 * `[M, N]`) without materializing W: codes are decoded into workgroup memory tile by tile.
 */
export function nf4TiledMatMul(
  x: tf.Tensor2D,
  packed: tf.Tensor1D,
  absmax: tf.Tensor1D,
  table: tf.Tensor1D,
  weightShape: [number, number],
  blocksize: number,
  layout: RightLayout,
): tf.Tensor2D {
  registerOnce();
  const n = layout === 'nk' ? weightShape[0] : weightShape[1];
  const splits = splitCount(x.shape[0], n, x.shape[1]);
  return sumSplits(
    tf.engine().runKernel(NF4_MATMUL_KERNEL, { a: x, packed, absmax, table }, {
      layout,
      n,
      blocksize,
      splits,
    } as unknown as tf.NamedAttrMap) as tf.Tensor,
  );
}

let enabled = true;

/**
 * Turns the tiled and fused WGSL matmul kernels of {@link DenseLinear} and {@link Nf4Linear} on
 * the webgpu backend on or off (on by default). Off, they run tfjs's generic `matMul` (after a
 * separate dequantization for NF4), which benchmarks use as the reference in the same run.
 *
 * @example
 * ```ts
 * useFusedWebgpuKernels(false); // measure tfjs's own kernels
 * ```
 */
export function useFusedWebgpuKernels(on: boolean): void {
  enabled = on;
}

// Below this many rows (tokens) the 128-row tiles are mostly empty and tfjs's small-output
// programs win (decode steps of generation).
const MIN_ROWS = 64;

/** Whether a `[rows, k] · [k, n]` product on the active backend goes through the tiled kernels. */
export function useTiledKernels(rows: number, k: number, n: number, layout: RightLayout): boolean {
  return (
    enabled && rows >= MIN_ROWS && tf.getBackend() === 'webgpu' && tiledShapeSupported(k, n, layout)
  );
}
