import * as tf from '@tensorflow/tfjs-core';
import type { WebgpuBackendLike } from './_webgpu-kernel';

// The plumbing that the tensor-core products (int8 in _webgpu-int8.ts, f16 in _webgpu-f16.ts)
// share: both pack each row of an operand into 32-bit words with one absmax per row, and multiply
// two packed operands in a raw WGSL program (see rawWgslProgramCode) that tfjs dispatches.

/**
 * A matrix packed row by row for a tensor-core product: `words` holds `rowsPadded × kWords`
 * int32 words (several values each), padded rows and columns 0; `absmax[r]` is the row's largest
 * magnitude (0 for padded rows).
 */
export interface PackedRows {
  readonly words: tf.Tensor1D;
  readonly absmax: tf.Tensor1D;
  readonly rows: number;
  readonly cols: number;
  readonly rowsPadded: number;
  readonly kWords: number;
}

function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}

export interface SubgroupMatrixConfigLike {
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

function webgpuDevice(): WebgpuDeviceLike | undefined {
  if (tf.getBackend() !== 'webgpu') return undefined;
  return (tf.backend() as unknown as { device?: WebgpuDeviceLike }).device;
}

export const SUBGROUP_SIZE = 32;

/**
 * Why the active backend cannot run a subgroup-matrix product with `config`, or undefined when it
 * can: webgpu, every feature in `features`, subgroups of 32, and the configuration offered.
 */
export function subgroupMatrixUnsupportedReason(
  features: readonly string[],
  config: SubgroupMatrixConfigLike,
  device: WebgpuDeviceLike | undefined = webgpuDevice(),
): string | undefined {
  if (device === undefined) return `the active backend is '${tf.getBackend()}', not webgpu`;
  const missing = features.filter((f) => !device.features.has(f));
  if (missing.length > 0) return `the webgpu device lacks ${missing.join(', ')}`;
  const info = device.adapterInfo;
  if (info?.subgroupMaxSize !== undefined && info.subgroupMaxSize !== SUBGROUP_SIZE) {
    return `its subgroups hold up to ${info.subgroupMaxSize} invocations, not ${SUBGROUP_SIZE}`;
  }
  // Dawn exposes the feature only with at least one configuration, but its device.adapterInfo
  // lists none (seen on the H200): then the feature stands for the configuration, and a missing
  // one fails at pipeline creation, inside the caller's error scope.
  const configs = [...(info?.subgroupMatrixConfigs ?? [])];
  if (configs.length === 0) return undefined;
  const describe = (c: SubgroupMatrixConfigLike) =>
    `${c.componentType}→${c.resultComponentType} ${c.M}×${c.N}×${c.K}`;
  if (configs.some((c) => describe(c) === describe(config))) return undefined;
  return `no ${describe(config)} subgroup-matrix configuration (offered: ${configs.map(describe).join(', ')})`;
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

/**
 * The start of a raw product's source: the enables, tfjs's bindings (0 the f32 result, 1–2 the
 * packed operands named `x` and `w` with element type `word`, 3–4 their row absmax, 5 tfjs's
 * uniforms), and the constants `N` (output columns) and `WORDS` (words per row).
 */
export function rawProductHeader(options: {
  enables: readonly string[];
  x: string;
  w: string;
  word: 'i32' | 'u32';
  n: number;
  kWords: number;
}): string {
  const { x, w, word } = options;
  return `${options.enables.map((name) => `enable ${name};\n`).join('')}enable subgroups;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium_experimental.subgroup_matrix_uniformity);
struct Uniforms { NAN : f32 };
@group(0) @binding(0) var<storage, read_write> result : array<f32>;
@group(0) @binding(1) var<storage, read> ${x} : array<${word}>;
@group(0) @binding(2) var<storage, read> ${w} : array<${word}>;
@group(0) @binding(3) var<storage, read> ax : array<f32>;
@group(0) @binding(4) var<storage, read> aw : array<f32>;
@group(0) @binding(5) var<uniform> uniforms : Uniforms;
const N = ${options.n}u;
const WORDS = ${options.kWords}u;
`;
}

/**
 * The entry point of a raw product (4 subgroups of 32): the workgroup id, the invocation's index
 * in the workgroup, its subgroup and its lane, and `rowBase`, the tile's first output row.
 */
export const RAW_PRODUCT_ENTRY = `@compute @workgroup_size(128)
fn _start(@builtin(workgroup_id) group : vec3<u32>,
          @builtin(local_invocation_index) local : u32,
          @builtin(subgroup_id) sub : u32,
          @builtin(subgroup_invocation_id) lane : u32) {
  _ = uniforms.NAN;
  let rowBase = group.y * 128u;`;

/**
 * A product of two packed operands as a raw WGSL program: inputs `x words, w words, x absmax,
 * w absmax` (tfjs binds them 1–4 in this order), output `[rowsPadded, n]` f32, one workgroup of
 * 128 per `rowTile × columnTile` tile of the output.
 */
class RawProductProgram {
  readonly variableNames = ['xWords', 'wWords', 'ax', 'aw'];
  readonly workgroupSize: [number, number, number] = [128, 1, 1];
  readonly outputShape: number[];
  readonly dispatchLayout = { x: [0, 1] };
  dispatch: [number, number, number];
  /** tfjs appends the input ranks and dtypes to this before it compiles. */
  shaderKey: string;
  private readonly rawKey: string;
  private readonly source: () => string;

  constructor(
    rawKey: string,
    source: () => string,
    rowsPadded: number,
    n: number,
    tile: { rows: number; columns: number },
  ) {
    this.outputShape = [rowsPadded, n];
    this.dispatch = [Math.ceil(n / tile.columns), rowsPadded / tile.rows, 1];
    this.rawKey = rawKey;
    this.shaderKey = rawKey;
    this.source = source;
  }

  getUserCode(): string {
    return rawWgslProgramCode(this.rawKey, this.source);
  }
}

// One entry per scalar: tfjs aligns a multi-value entry as a vector, the struct fields are scalars.
export function int32Uniforms(...values: number[]): { type: 'int32'; data: number[] }[] {
  return values.map((value) => ({ type: 'int32', data: [value] }));
}

/**
 * The packing half of a family: one thread per output word of `rowsPadded × kWords`, reading
 * `x` (`[rows, k]`) and its row absmax, with the uniforms `rows, k, kWords` (and `size`).
 */
export abstract class PackRowsProgram {
  readonly variableNames = ['x', 'absmax'];
  readonly uniforms = 'rows : i32, k : i32, kWords : i32,';
  readonly size = true;
  readonly workgroupSize: [number, number, number] = [128, 1, 1];
  readonly outputShape: number[];
  readonly dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  abstract readonly shaderKey: string;

  constructor(words: number) {
    this.outputShape = [words];
    this.dispatch = [Math.ceil(words / 128), 1, 1];
  }

  abstract getUserCode(): string;
}

/** A tfjs program as runWebGPUProgram takes it. */
type WebgpuProgram = Parameters<WebgpuBackendLike['runWebGPUProgram']>[0];

/**
 * One family of tensor-core products: how rows are packed (`valuesPerWord` values per word, K
 * padded to `kTile`, by `packProgram`), and the raw product for `n` output columns.
 */
export interface RowProductFamily {
  readonly name: string;
  readonly packKernel: string;
  readonly productKernel: string;
  readonly valuesPerWord: number;
  readonly kTile: number;
  /** Row multiple of x and of w that the product's tiles need. */
  readonly xRowTile: number;
  readonly wRowTile: number;
  packProgram(words: number): WebgpuProgram;
  /** The raw source's key, its source, and the output tile of one workgroup. */
  product(
    rowsPadded: number,
    n: number,
    kWords: number,
  ): { key: string; source: () => string; tile: { rows: number; columns: number } };
}

const registered = new Set<string>();

// Registers the family's pack and product kernels with tfjs once. The pack program gets the
// uniforms `rows, k, kWords`.
function register(family: RowProductFamily): void {
  if (registered.has(family.name)) return;
  registered.add(family.name);
  tf.registerKernel({
    kernelName: family.packKernel,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, absmax } = inputs as { x: tf.TensorInfo; absmax: tf.TensorInfo };
      const { kWords } = attrs as unknown as { kWords: number };
      const [rows, k] = x.shape as [number, number];
      const rowsPadded = absmax.shape[0] as number;
      return (backend as unknown as WebgpuBackendLike).runWebGPUProgram(
        family.packProgram(rowsPadded * kWords),
        [x, absmax],
        'int32',
        int32Uniforms(rows, k, kWords),
      );
    },
  });
  tf.registerKernel({
    kernelName: family.productKernel,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { xWords, wWords, ax, aw } = inputs as Record<string, tf.TensorInfo>;
      const { n, kWords } = attrs as unknown as { n: number; kWords: number };
      const device = (backend as unknown as { device?: WebgpuDeviceLike }).device;
      if (device !== undefined) installRawShaderHook(device);
      const rowsPadded = (ax as tf.TensorInfo).shape[0] as number;
      const { key, source, tile } = family.product(rowsPadded, n, kWords);
      return (backend as unknown as WebgpuBackendLike).runWebGPUProgram(
        new RawProductProgram(key, source, rowsPadded, n, tile),
        [xWords, wWords, ax, aw] as tf.TensorInfo[],
        'float32',
        [],
      );
    },
  });
}

/**
 * Packs the rows of `x` (`[rows, cols]`, f32) for `family`: one absmax per row (`rowAbsmax`),
 * then the family's packing, rows padded to a multiple of `rowMultiple`, K to its `kTile`.
 */
export function packRows(
  family: RowProductFamily,
  x: tf.Tensor2D,
  rowMultiple: number,
  rowAbsmax: (x: tf.Tensor2D, rowsPadded: number) => tf.Tensor1D,
): PackedRows {
  register(family);
  const [rows, cols] = x.shape;
  const rowsPadded = roundUp(Math.max(rows, 1), rowMultiple);
  const kWords = roundUp(cols, family.kTile) / family.valuesPerWord;
  const absmax = rowAbsmax(x, rowsPadded);
  const words = tf.engine().runKernel(family.packKernel, { x, absmax }, {
    kWords,
  } as unknown as tf.NamedAttrMap) as tf.Tensor1D;
  return { words, absmax, rows, cols, rowsPadded, kWords };
}

/** `x · wᵀ` of two operands packed for `family`: `[x.rows, w.rows]` f32. */
export function rowProduct(family: RowProductFamily, x: PackedRows, w: PackedRows): tf.Tensor2D {
  register(family);
  if (x.kWords !== w.kWords || x.cols !== w.cols) {
    throw new Error(
      `[@qlora/lora] ${family.name} product: expected operands with the same K, got ${x.cols} (${x.kWords} words) and ${w.cols} (${w.kWords} words)`,
    );
  }
  if (x.rowsPadded % family.xRowTile !== 0 || w.rowsPadded % family.wRowTile !== 0) {
    throw new Error(
      `[@qlora/lora] ${family.name} product: expected rows padded to ${family.xRowTile} and ${family.wRowTile}, got ${x.rowsPadded} and ${w.rowsPadded}`,
    );
  }
  const n = w.rows;
  const out = tf
    .engine()
    .runKernel(
      family.productKernel,
      { xWords: x.words, wWords: w.words, ax: x.absmax, aw: w.absmax },
      { n, kWords: x.kWords } as unknown as tf.NamedAttrMap,
    ) as tf.Tensor2D;
  if (x.rowsPadded === x.rows) return out;
  const rows = tf.slice(out, [0, 0], [x.rows, n]) as tf.Tensor2D;
  out.dispose();
  return rows;
}
