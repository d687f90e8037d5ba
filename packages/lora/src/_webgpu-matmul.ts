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

function writeOutput(lora: boolean): string {
  const lines: string[] = [];
  // The LoRA term joins the first K range only (the ranges are summed afterwards).
  const term = (col: string) =>
    lora ? ` + select(vec4<f32>(0.0), uniforms.loraScale * loraTerm(row, ${col}), split == 0)` : '';
  for (let r = 0; r < 8; r++) {
    const row = r < 4 ? `rowBase + ty * 4 + ${r}` : `rowBase + 64 + ty * 4 + ${r - 4}`;
    lines.push(`
        {
          let row = ${row};
          if (row < dimM) {
            if (colLo < dimN) { result[(split + row * dimN + colLo) / 4] = acc${r}0${term('colLo')}; }
            if (colHi < dimN) { result[(split + row * dimN + colHi) / 4] = acc${r}1${term('colHi')}; }
          }
        }`);
  }
  return lines.join('');
}

// The low-rank term of 4 consecutive output columns: Σ_j U[row, j] · V(col + c, j), V being LoRA's
// B `[N, r]` under an 'nk' product (the forward) or A `[r, N]` under a 'kn' one (dx).
function loraTermFunction(layout: RightLayout): string {
  const v = (c: number) =>
    layout === 'nk' ? `loraV[(col + ${c}) * rank + j]` : `loraV[j * uniforms.dimN + col + ${c}]`;
  return `
      fn loraTerm(row : i32, col : i32) -> vec4<f32> {
        let rank = uniforms.loraRank;
        var sum = vec4<f32>(0.0);
        for (var j = 0; j < rank; j++) {
          let u = loraU[row * rank + j];
          sum = fma(vec4<f32>(u), vec4<f32>(${v(0)}, ${v(1)}, ${v(2)}, ${v(3)}), sum);
        }
        return sum;
      }`;
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
  readonly uniforms =
    'dimM : i32, dimN : i32, dimK : i32, blocksize : i32, kSplit : i32, loraRank : i32, loraScale : f32,';
  readonly workgroupSize: [number, number, number] = [THREADS, THREADS, 1];
  readonly outputShape: number[];
  readonly dispatchLayout = { x: [1], y: [0] };
  dispatch: [number, number, number];
  shaderKey: string;
  private readonly layout: RightLayout;
  private readonly nf4: boolean;
  private readonly lora: boolean;

  constructor(m: number, n: number, layout: RightLayout, nf4: boolean, splits = 1, lora = false) {
    this.outputShape = splits > 1 ? [splits, m, n] : [m, n];
    this.layout = layout;
    this.nf4 = nf4;
    this.lora = lora;
    this.variableNames = [
      ...(nf4 ? ['A', 'B', 'absmax', 'table'] : ['A', 'B']),
      ...(lora ? ['loraU', 'loraV'] : []),
    ];
    this.variableComponents = [...(nf4 ? [4, 1, 1, 1] : [4, 4]), ...(lora ? [1, 1] : [])];
    this.dispatch = [Math.ceil(n / TILE), Math.ceil(m / TILE), splits];
    this.shaderKey = `qloraTiledMatMul_${layout}_${nf4 ? 'q4' : 'f32'}${splits > 1 ? '_splitK' : ''}${lora ? '_lora' : ''}`;
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
      ${this.lora ? loraTermFunction(layout) : ''}

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
        ${writeOutput(this.lora)}
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

/**
 * A low-rank term added to a tiled product: `+ scale · U · Vᵀ` with U `[M, r]` and V LoRA's B
 * `[N, r]` under an `'nk'` product, or `+ scale · U · V` with V LoRA's A `[r, N]` under `'kn'`.
 */
export interface LoraEpilogue {
  u: tf.Tensor2D;
  v: tf.Tensor2D;
  scale: number;
}

// The uniforms every TiledMatMulProgram declares, in order (tfjs aligns each scalar entry itself).
function programUniforms(
  m: number,
  n: number,
  k: number,
  blocksize: number,
  splits: number,
  lora: { rank: number; scale: number } | undefined,
): { type: 'int32' | 'float32'; data: number[] }[] {
  const int = (value: number) => ({ type: 'int32' as const, data: [value] });
  return [
    int(m),
    int(n),
    int(k),
    int(blocksize),
    int(kPerSplit(k, splits)),
    int(lora?.rank ?? 0),
    { type: 'float32', data: [lora?.scale ?? 0] },
  ];
}

interface KernelAttrs {
  layout: RightLayout;
  splits: number;
  /** NF4 only: output columns and blocksize. */
  n?: number;
  blocksize?: number;
  /** With a LoRA epilogue: its rank and scale (inputs loraU, loraV). */
  loraRank?: number;
  loraScale?: number;
}

function registerOnce(): void {
  if (tf.getKernel(TILED_MATMUL_KERNEL, 'webgpu') !== undefined) return;
  const run = (nf4: boolean): tf.KernelFunc => {
    return ({ inputs, backend, attrs }) => {
      const named = inputs as Record<string, tf.TensorInfo>;
      const {
        layout,
        splits,
        n: nf4N,
        blocksize,
        loraRank,
        loraScale,
      } = attrs as unknown as KernelAttrs;
      const a = named.a as tf.TensorInfo;
      const b = (nf4 ? named.packed : named.b) as tf.TensorInfo;
      const [m, k] = a.shape as [number, number];
      const n = nf4
        ? (nf4N as number)
        : layout === 'nk'
          ? (b.shape[0] as number)
          : (b.shape[1] as number);
      const lora = loraRank === undefined ? undefined : { rank: loraRank, scale: loraScale ?? 1 };
      const bound = [
        a,
        b,
        ...(nf4 ? [named.absmax, named.table] : []),
        ...(lora ? [named.loraU, named.loraV] : []),
      ] as tf.TensorInfo[];
      return (backend as unknown as WebgpuBackendLike).runWebGPUProgram(
        new TiledMatMulProgram(m, n, layout, nf4, splits, lora !== undefined),
        bound,
        'float32',
        programUniforms(m, n, k, nf4 ? (blocksize as number) : 1, splits, lora),
      );
    };
  };
  tf.registerKernel({
    kernelName: TILED_MATMUL_KERNEL,
    backendName: 'webgpu',
    kernelFunc: run(false),
  });
  tf.registerKernel({
    kernelName: NF4_MATMUL_KERNEL,
    backendName: 'webgpu',
    kernelFunc: run(true),
  });
}

function checkEpilogue(lora: LoraEpilogue, m: number, n: number, layout: RightLayout): void {
  const [uRows, rank] = lora.u.shape;
  const vShape = layout === 'nk' ? [n, rank] : [rank, n];
  if (uRows !== m || lora.v.shape[0] !== vShape[0] || lora.v.shape[1] !== vShape[1]) {
    throw new Error(
      `[@qlora/lora] LoRA epilogue: expected U [${m}, r] and V [${vShape.join(', ')}], got U [${lora.u.shape.join(', ')}] and V [${lora.v.shape.join(', ')}]`,
    );
  }
}

function epilogueAttrs(lora: LoraEpilogue | undefined): Partial<KernelAttrs> {
  return lora === undefined ? {} : { loraRank: lora.u.shape[1], loraScale: lora.scale };
}

/**
 * `a · b` (layout `'kn'`, b `[K, N]`) or `a · bᵀ` (layout `'nk'`, b `[N, K]`) with the tiled WGSL
 * kernel, plus a LoRA term when `lora` is given. No gradient; webgpu backend only; K and N
 * multiples of 8 (see {@link tiledShapeSupported}).
 */
export function tiledMatMul(
  a: tf.Tensor2D,
  b: tf.Tensor2D,
  layout: RightLayout,
  lora?: LoraEpilogue,
): tf.Tensor2D {
  registerOnce();
  const [m, k] = a.shape;
  const n = layout === 'nk' ? b.shape[0] : b.shape[1];
  if (lora) checkEpilogue(lora, m, n, layout);
  const splits = splitCount(m, n, k);
  const inputs: tf.NamedTensorMap = lora ? { a, b, loraU: lora.u, loraV: lora.v } : { a, b };
  return sumSplits(
    tf.engine().runKernel(TILED_MATMUL_KERNEL, inputs, {
      layout,
      splits,
      ...epilogueAttrs(lora),
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
 * `[M, N]`) without materializing W: codes are decoded into workgroup memory tile by tile. A
 * LoRA term is added when `lora` is given (see {@link LoraEpilogue}).
 */
export function nf4TiledMatMul(
  x: tf.Tensor2D,
  packed: tf.Tensor1D,
  absmax: tf.Tensor1D,
  table: tf.Tensor1D,
  weightShape: [number, number],
  blocksize: number,
  layout: RightLayout,
  lora?: LoraEpilogue,
): tf.Tensor2D {
  registerOnce();
  const n = layout === 'nk' ? weightShape[0] : weightShape[1];
  if (lora) checkEpilogue(lora, x.shape[0], n, layout);
  const splits = splitCount(x.shape[0], n, x.shape[1]);
  const inputs = { a: x, packed, absmax, table, ...(lora ? { loraU: lora.u, loraV: lora.v } : {}) };
  return sumSplits(
    tf.engine().runKernel(NF4_MATMUL_KERNEL, inputs, {
      layout,
      n,
      blocksize,
      splits,
      ...epilogueAttrs(lora),
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

/**
 * Whether the fused WGSL kernels run on the active backend: webgpu, and not switched off with
 * {@link useFusedWebgpuKernels}. `@qlora/trainer`'s fused norm, rotary and SwiGLU programs follow
 * the same switch, so `useFusedWebgpuKernels(false)` measures tfjs's generic path as a whole.
 *
 * @example
 * ```ts
 * if (fusedWebgpuKernelsActive()) runFusedProgram(); else runTfjsOps();
 * ```
 */
export function fusedWebgpuKernelsActive(): boolean {
  return enabled && tf.getBackend() === 'webgpu';
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
