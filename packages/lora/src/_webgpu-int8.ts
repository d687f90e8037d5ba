import * as tf from '@tensorflow/tfjs-core';
import { type WebgpuBackendLike, WGSL_WORKGROUP_ROW, wgslTreeReduce } from './_webgpu-kernel';

// W8A8 on WebGPU: rows are quantized to int8 with one absmax per row (per token for activations,
// per output channel for weights, as LLM.int8()'s vector-wise quantization without outliers), and
// the integer product runs on the tensor cores that Dawn exposes as `subgroup_matrix` i8 x i8 -> i32
// (M16 N16 K32 on NVIDIA). y[m, n] = acc[m, n] · (absmax_x[m] · absmax_w[n] / 127²).

/** Name of the int8 subgroup-matrix product (webgpu only). */
export const INT8_MATMUL_KERNEL = 'QloraInt8MatMul';
const ROW_ABSMAX_KERNEL = 'QloraRowAbsmax';
const PACK_INT8_KERNEL = 'QloraPackInt8';

/** Rows of activations are padded to this (the product's workgroup tile height). */
export const INT8_ROW_TILE = 128;
/** K is padded to this many int8 values (the product's K step through workgroup memory). */
export const INT8_K_TILE = 64;
const SUBGROUP_SIZE = 32;
const SUBGROUP_MATRIX_FEATURE = 'chromium-experimental-subgroup-matrix';

/**
 * A matrix quantized row by row to int8: `codes` packs 4 values per int32 word (little-endian,
 * column 4w + b in byte b), `rowsPadded × kWords` words; padded rows and columns hold 0.
 * `absmax[r]` is the row's largest magnitude (0 for padded rows); value ≈ code · absmax / 127.
 */
export interface Int8Rows {
  readonly codes: tf.Tensor1D;
  readonly absmax: tf.Tensor1D;
  readonly rows: number;
  readonly cols: number;
  readonly rowsPadded: number;
  readonly kWords: number;
}

export function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}

interface SubgroupMatrixConfigLike {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}
export interface WebgpuDeviceLike {
  features: { has(name: string): boolean };
  /** GPUDevice.adapterInfo (tfjs keeps only the vendor and architecture). */
  adapterInfo?: {
    subgroupMaxSize?: number;
    subgroupMatrixConfigs?: Iterable<SubgroupMatrixConfigLike>;
  };
  createShaderModule(descriptor: { code: string; label?: string }): unknown;
}

export function webgpuDevice(): WebgpuDeviceLike | undefined {
  if (tf.getBackend() !== 'webgpu') return undefined;
  return (tf.backend() as unknown as { device?: WebgpuDeviceLike }).device;
}

/**
 * Why the active backend cannot run {@link int8MatMul}, or undefined when it can: it needs webgpu
 * on a device created with the `subgroups` and `chromium-experimental-subgroup-matrix` features,
 * subgroups of 32, and an i8 × i8 → i32 M16 N16 K32 configuration (NVIDIA through Vulkan).
 */
export function int8MatMulUnsupportedReason(): string | undefined {
  const backend = tf.getBackend();
  const device = webgpuDevice();
  if (device === undefined) return `the active backend is '${backend}', not webgpu`;
  const missing = [SUBGROUP_MATRIX_FEATURE, 'subgroups'].filter((f) => !device.features.has(f));
  if (missing.length > 0) return `the webgpu device lacks ${missing.join(' and ')}`;
  const info = device.adapterInfo;
  if (info?.subgroupMaxSize !== undefined && info.subgroupMaxSize !== SUBGROUP_SIZE) {
    return `its subgroups hold up to ${info.subgroupMaxSize} invocations, not ${SUBGROUP_SIZE}`;
  }
  // Dawn exposes the feature only with at least one configuration, but its device.adapterInfo
  // lists none (seen on the H200): then the feature stands for the configuration, and a missing
  // one fails at pipeline creation, inside the caller's error scope.
  const configs = [...(info?.subgroupMatrixConfigs ?? [])];
  if (configs.length === 0) return undefined;
  const found = configs.some(
    (config) =>
      config.componentType === 'i8' &&
      config.resultComponentType === 'i32' &&
      config.M === 16 &&
      config.N === 16 &&
      config.K === 32,
  );
  if (found) return undefined;
  const offered = configs
    .map((c) => `${c.componentType}→${c.resultComponentType} ${c.M}×${c.N}×${c.K}`)
    .join(', ');
  return `no i8→i32 16×16×32 subgroup-matrix configuration (offered: ${offered || 'none'})`;
}

/** Whether the active backend can run {@link int8MatMul} (see {@link int8MatMulUnsupportedReason}). */
export function supportsInt8MatMul(): boolean {
  return int8MatMulUnsupportedReason() === undefined;
}

// Raw WGSL programs. tfjs builds every shader as its prelude + a program's code and enters it
// through `_start`, which hands main() the built-in ids through var<private> copies. Subgroup-
// matrix stores need a pointer and offset the uniformity analysis proves uniform (a private copy
// never is), and `enable` must come before every declaration. So the program gives tfjs a marker
// line, and a hook on the device's createShaderModule swaps in the complete source, whose entry
// point is `_start` with tfjs's bindings (0 the output, then the inputs, then the uniforms).
const RAW_MARKER = '// @qlora/raw-wgsl ';
const rawSources = new Map<string, string>();
const hookedDevices = new WeakSet<object>();

/** Registers a complete WGSL source under `key` (once) and returns the user code that names it. */
export function rawWgslProgramCode(key: string, source: () => string): string {
  if (!rawSources.has(key)) rawSources.set(key, source());
  return `${RAW_MARKER}${key}\n      fn main() {}\n`;
}

/** Wraps the device's createShaderModule once so raw programs compile from their own source. */
export function installRawShaderHook(device: WebgpuDeviceLike): void {
  if (hookedDevices.has(device)) return;
  const create = device.createShaderModule.bind(device);
  device.createShaderModule = (descriptor) => {
    const at = descriptor.code.indexOf(RAW_MARKER);
    if (at < 0) return create(descriptor);
    const key =
      descriptor.code
        .slice(at + RAW_MARKER.length)
        .split('\n', 1)[0]
        ?.trim() ?? '';
    const code = rawSources.get(key);
    if (code === undefined) {
      throw new Error(`[@qlora/lora] raw WGSL program: expected a registered source, got '${key}'`);
    }
    return create({ ...descriptor, code });
  };
  hookedDevices.add(device);
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
class PackInt8Program {
  readonly variableNames = ['x', 'absmax'];
  readonly uniforms = 'rows : i32, k : i32, kWords : i32,';
  readonly size = true;
  readonly workgroupSize: [number, number, number] = [128, 1, 1];
  readonly outputShape: number[];
  readonly dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  readonly shaderKey = 'qloraPackInt8';

  constructor(words: number) {
    this.outputShape = [words];
    this.dispatch = [Math.ceil(words / 128), 1, 1];
  }

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
  return `enable subgroups;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium_experimental.subgroup_matrix_uniformity);
struct Uniforms { NAN : f32 };
@group(0) @binding(0) var<storage, read_write> result : array<f32>;
@group(0) @binding(1) var<storage, read> xq : array<i32>;
@group(0) @binding(2) var<storage, read> wq : array<i32>;
@group(0) @binding(3) var<storage, read> ax : array<f32>;
@group(0) @binding(4) var<storage, read> aw : array<f32>;
@group(0) @binding(5) var<uniform> uniforms : Uniforms;
const N = ${n}u;
const WORDS = ${kWords}u;
var<workgroup> tileA : array<i32, ${128 * 20}>;
var<workgroup> tileB : array<i32, ${rowsB * 20}>;
var<workgroup> scratch : array<array<i32, ${256 * tn}>, 4>;
@compute @workgroup_size(128)
fn _start(@builtin(workgroup_id) group : vec3<u32>,
          @builtin(local_invocation_index) local : u32,
          @builtin(subgroup_id) sub : u32,
          @builtin(subgroup_invocation_id) lane : u32) {
  _ = uniforms.NAN;
  let rowBase = group.y * 128u;
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

class Int8MatMulProgram {
  readonly variableNames = ['xq', 'wq', 'ax', 'aw'];
  readonly workgroupSize: [number, number, number] = [128, 1, 1];
  readonly outputShape: number[];
  readonly dispatchLayout = { x: [0, 1] };
  dispatch: [number, number, number];
  /** tfjs appends the input ranks and dtypes to this before it compiles. */
  shaderKey: string;
  private readonly rawKey: string;

  constructor(rowsPadded: number, n: number, kWords: number, tn: number) {
    this.outputShape = [rowsPadded, n];
    this.dispatch = [Math.ceil(n / (32 * tn)), rowsPadded / 128, 1];
    this.rawKey = `qloraInt8MatMul_${n}_${kWords}_${tn}`;
    this.shaderKey = this.rawKey;
    this.source = () => int8MatMulSource(n, kWords, tn);
  }

  private readonly source: () => string;

  getUserCode(): string {
    return rawWgslProgramCode(this.rawKey, this.source);
  }
}

// One entry per scalar: tfjs aligns a multi-value entry as a vector, the struct fields are scalars.
export function int32Uniforms(...values: number[]): { type: 'int32'; data: number[] }[] {
  return values.map((value) => ({ type: 'int32', data: [value] }));
}

function registerOnce(): void {
  if (tf.getKernel(INT8_MATMUL_KERNEL, 'webgpu') !== undefined) return;
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
  tf.registerKernel({
    kernelName: PACK_INT8_KERNEL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, absmax } = inputs as { x: tf.TensorInfo; absmax: tf.TensorInfo };
      const { kWords } = attrs as unknown as { kWords: number };
      const [rows, k] = x.shape as [number, number];
      const rowsPadded = absmax.shape[0] as number;
      return (backend as unknown as WebgpuBackendLike).runWebGPUProgram(
        new PackInt8Program(rowsPadded * kWords),
        [x, absmax],
        'int32',
        int32Uniforms(rows, k, kWords),
      );
    },
  });
  tf.registerKernel({
    kernelName: INT8_MATMUL_KERNEL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { xq, wq, ax, aw } = inputs as Record<string, tf.TensorInfo>;
      const { n, kWords, tn } = attrs as unknown as { n: number; kWords: number; tn: number };
      const device = (backend as unknown as { device?: WebgpuDeviceLike }).device;
      if (device !== undefined) installRawShaderHook(device);
      const rowsPadded = (ax as tf.TensorInfo).shape[0] as number;
      return (backend as unknown as WebgpuBackendLike).runWebGPUProgram(
        new Int8MatMulProgram(rowsPadded, n, kWords, tn),
        [xq, wq, ax, aw] as tf.TensorInfo[],
        'float32',
        [],
      );
    },
  });
}

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
  registerOnce();
  const [rows, cols] = x.shape;
  const rowsPadded = roundUp(Math.max(rows, 1), rowMultiple);
  const kWords = roundUp(cols, INT8_K_TILE) / 4;
  const absmax = rowAbsmax(x, rowsPadded);
  const codes = tf.engine().runKernel(PACK_INT8_KERNEL, { x, absmax }, {
    kWords,
  } as unknown as tf.NamedAttrMap) as tf.Tensor1D;
  return { codes, absmax, rows, cols, rowsPadded, kWords };
}

/** Tile width in 32-column units: 4 (128 columns) when there are enough tiles to fill the GPU. */
function tileColumns(rowsPadded: number, n: number): number {
  const tiles = (rowsPadded / 128) * Math.ceil(n / 128);
  return tiles >= 256 ? 4 : 2;
}

/**
 * `x · wᵀ` from row-quantized operands on the int8 tensor cores: `[x.rows, w.rows]` f32, where
 * element (m, n) is `Σ_k xq[m,k]·wq[n,k]` (exact in i32) times `absmax_x[m]·absmax_w[n]/127²`.
 * `w` must be padded to 128 rows; `x` to {@link INT8_ROW_TILE}. Requires
 * {@link supportsInt8MatMul}.
 */
export function int8MatMul(x: Int8Rows, w: Int8Rows): tf.Tensor2D {
  registerOnce();
  if (x.kWords !== w.kWords || x.cols !== w.cols) {
    throw new Error(
      `[@qlora/lora] int8 product: expected operands with the same K, got ${x.cols} (${x.kWords} words) and ${w.cols} (${w.kWords} words)`,
    );
  }
  if (x.rowsPadded % INT8_ROW_TILE !== 0 || w.rowsPadded % 128 !== 0) {
    throw new Error(
      `[@qlora/lora] int8 product: expected rows padded to ${INT8_ROW_TILE} and 128, got ${x.rowsPadded} and ${w.rowsPadded}`,
    );
  }
  const n = w.rows;
  const out = tf
    .engine()
    .runKernel(INT8_MATMUL_KERNEL, { xq: x.codes, wq: w.codes, ax: x.absmax, aw: w.absmax }, {
      n,
      kWords: x.kWords,
      tn: tileColumns(x.rowsPadded, n),
    } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
  if (x.rowsPadded === x.rows) return out;
  const rows = tf.slice(out, [0, 0], [x.rows, n]) as tf.Tensor2D;
  out.dispose();
  return rows;
}
