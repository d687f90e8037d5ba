import {
  blockAbsmax,
  FP4_CODE,
  fromBnbTensors,
  NF4_CODE,
  type Quantized4bit,
  type QuantState,
  type TensorRecord,
  toBnbTensors,
} from '@qlora/nf4';
import * as tf from '@tensorflow/tfjs-core';
import { DEQUANTIZE_KERNEL, dequantizeOnCpu } from './_cpu-kernel';
import { registerWebgpuKernel } from './_webgpu-kernel';
import {
  type LoraEpilogue,
  nf4TiledMatMul,
  type RightLayout,
  useTiledKernels,
} from './_webgpu-matmul';
import { LoraError } from './errors';
import type { Linear } from './linear';

// Element p (0..7) of an int32 word sits in byte p >> 1 (little-endian word), high nibble for
// even p (bitsandbytes puts element 2j in bits 7..4 of byte j): nibble p is bits s..s+3 with
// these shifts. tfjs has no shift op, and some backends (wasm) divide int32 in float32, exact
// only below 2^24; integer `mod` and `sub` are exact there. So the nibble is extracted as
// (word mod 2^(s+4) − word mod 2^s) / 2^s, whose dividend nibble·2^s is exact in float32; the
// top nibble (s = 28) as (word − word mod 2^28) / 2^28 ∈ [−8, 7], then mod 16.
// Column order of the shifts is [4, 0, 12, 8, 20, 16, 28, 24]; the top one is handled apart.
const LOW_SHIFTS = [4, 0, 12, 8, 20, 16, 24];

// Backends whose int32 `mod`/`sub` are exact on full 32-bit words (wasm: tested; tensorflow runs
// TensorFlow's integer kernels, not tested here). cpu and webgpu decode 32-bit words with their
// own kernels.
// webgpu's binary ops and webgl's textures work in f32: on them tf ops see only 24 exact bits.
const EXACT_INT32_BACKENDS = new Set(['wasm', 'tensorflow']);
const WORD_KERNEL_BACKENDS = new Set(['cpu', 'webgpu']);

/**
 * Codes held per int32 element: 8 (0.5 byte per parameter, the checkpoint's bytes as words) or
 * 6 (24 bits, below 2^24 so every f32 op on them is exact: 0.667 byte per parameter).
 *
 * @example
 * ```ts
 * const layout: CodesPerWord = 6; // a backend whose integer ops run in f32 (webgl)
 * ```
 */
export type CodesPerWord = 6 | 8;

/**
 * Options of {@link Nf4Linear}.
 *
 * @example
 * ```ts
 * const proj = new Nf4Linear('q_proj', q, { codesPerWord: 6 });
 * ```
 */
export interface Nf4LinearOptions {
  /**
   * Default: 8 when the active backend decodes 32-bit words exactly (cpu, wasm, webgpu,
   * tensorflow), else 6.
   */
  codesPerWord?: CodesPerWord;
}

function defaultCodesPerWord(): CodesPerWord {
  const backend = tf.getBackend();
  return WORD_KERNEL_BACKENDS.has(backend) || EXACT_INT32_BACKENDS.has(backend) ? 8 : 6;
}

// 6 codes per element, code k (element 6i + k) in bits 4k..4k+3: all values below 2^24.
function packNibbles24(packed: Uint8Array, count: number): Int32Array {
  const out = new Int32Array(Math.ceil(count / 6));
  for (let e = 0; e < count; e++) {
    const byte = packed[e >> 1] as number;
    const code = e % 2 === 0 ? byte >> 4 : byte & 15;
    out[Math.floor(e / 6)] = (out[Math.floor(e / 6)] as number) + code * 2 ** (4 * (e % 6));
  }
  return out;
}

function unpackNibbles24(words: Int32Array, count: number, byteLength: number): Uint8Array {
  const packed = new Uint8Array(byteLength);
  for (let e = 0; e < count; e++) {
    const code = Math.floor((words[Math.floor(e / 6)] as number) / 2 ** (4 * (e % 6))) % 16;
    packed[e >> 1] = (packed[e >> 1] as number) | (e % 2 === 0 ? code << 4 : code);
  }
  return packed;
}

// Code tables on the backend, by `${backend}:${quantType}` (see Nf4Linear.deviceCodeTable).
const deviceTables = new Map<string, tf.Tensor1D>();

/**
 * A frozen 4-bit linear layer (bitsandbytes `Linear4bit` layout, no bias). The packed codes live
 * on the backend as int32 words (8 codes each, 0.5 byte per parameter; 6 codes, 0.667 byte, on
 * backends whose integer ops run in f32, see {@link Nf4LinearOptions}) next to the float32
 * absmax of each block (double-quantized absmax is reconstructed once, exactly as bitsandbytes
 * does). `apply` dequantizes inside a custom-gradient op: the f32 weight exists only while the
 * matmul runs, and the backward pass dequantizes again (`dx = dy · W`), so no f32 copy stays
 * alive between calls and no gradient reaches the codes. Dequantization is bit-exact with
 * `@qlora/nf4`'s `dequantize4bit` on every backend (tested on cpu, wasm and webgpu).
 *
 * @example
 * ```ts
 * const q = quantize4bit(weightF32, { shape: [out, inF], doubleQuant: true });
 * const proj = new Nf4Linear('model.layers.0.mlp.up_proj', q);
 * const y = proj.apply(x); // x: [..., inF] → [..., out]
 * ```
 */
export class Nf4Linear implements Linear {
  readonly name: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** The quantization state (absmax codes, nested state) kept for export; small. */
  readonly state: QuantState;
  /**
   * int32 `[ceil(n / 8)]`: the packed bytes, four per word, little-endian; or, with
   * `codesPerWord` 6, int32 `[ceil(2·ceil(n / 2) / 6)]` holding code k of each group of six in bits 4k..4k+3.
   */
  readonly packedWords: tf.Tensor1D;
  /** How many 4-bit codes each element of {@link Nf4Linear.packedWords} holds. */
  readonly codesPerWord: CodesPerWord;
  /** float32 `[nblocks]`: the absmax of each block (reconstructed when double-quantized). */
  readonly absmax: tf.Tensor1D;
  private readonly count: number;
  private readonly byteLength: number;

  constructor(name: string, quantized: Quantized4bit, options: Nf4LinearOptions = {}) {
    const { state, packed } = quantized;
    const shape = state.shape;
    if (shape.length !== 2) {
      throw new LoraError(
        'E_BASE_WEIGHT',
        `${name}: expected a 2-D [out, in] quantized weight, got shape [${shape.join(', ')}]`,
      );
    }
    const [outFeatures, inFeatures] = shape as [number, number];
    const count = outFeatures * inFeatures;
    if (packed.length !== Math.ceil(count / 2)) {
      throw new LoraError(
        'E_BASE_WEIGHT',
        `${name}: expected ${Math.ceil(count / 2)} packed bytes for [${outFeatures}, ${inFeatures}], got ${packed.length}`,
      );
    }
    this.name = name;
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    this.state = state;
    this.count = count;
    this.byteLength = packed.length;
    this.codesPerWord = options.codesPerWord ?? defaultCodesPerWord();
    if (this.codesPerWord === 8) {
      const padded = new Uint8Array(Math.ceil(packed.length / 4) * 4);
      padded.set(packed);
      this.packedWords = tf.tensor1d(new Int32Array(padded.buffer), 'int32');
    } else {
      // Both nibbles of every byte (an odd count's padding nibble too), so quantized() round-trips.
      this.packedWords = tf.tensor1d(packNibbles24(packed, packed.length * 2), 'int32');
    }
    this.absmax = tf.tensor1d(blockAbsmax(state), 'float32');
  }

  /**
   * The float32 `[out, in]` weight, `fround(code[c] · absmax[block])`, bit-exact with
   * `@qlora/nf4`'s `dequantize4bit`. The caller disposes it. With 8 codes per word, the cpu
   * backend runs `dequantize4bit` itself in a JS kernel, webgpu a WGSL program (exact u32 shifts),
   * wasm and tensorflow {@link Nf4Linear.dequantizeWithOps}; 6 codes per word use tf ops anywhere.
   *
   * @example
   * ```ts
   * const w = proj.dequantize(); // tf.Tensor2D [out, in]
   * w.dispose();
   * ```
   */
  dequantize(): tf.Tensor2D {
    if (this.codesPerWord === 6) return this.dequantizeWithOps();
    const shape: [number, number] = [this.outFeatures, this.inFeatures];
    const backend = tf.getBackend();
    if (backend === 'webgpu') {
      registerWebgpuKernel();
      return tf.tidy(() => {
        const table = this.deviceCodeTable();
        return tf
          .engine()
          .runKernel(DEQUANTIZE_KERNEL, { packed: this.packedWords, absmax: this.absmax, table }, {
            shape,
            blocksize: this.state.blocksize,
          } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
      });
    }
    const onCpu = dequantizeOnCpu(
      this.packedWords,
      this.absmax,
      shape,
      this.state.blocksize,
      this.state.quantType,
    );
    return onCpu ?? this.dequantizeWithOps();
  }

  /**
   * The backend-generic dequantization from tf ops (nibble extraction with integer mod/floorDiv,
   * gather, per-block multiply). With 8 codes per word it needs exact int32 `mod`/`sub` (cpu, wasm,
   * tensorflow; not webgpu or webgl, which compute them in f32); with 6 codes per word every
   * intermediate is below 2^24, so it is exact on any backend.
   *
   * @example
   * ```ts
   * const w = proj.dequantizeWithOps(); // tf.Tensor2D [out, in]
   * ```
   */
  dequantizeWithOps(): tf.Tensor2D {
    const backend = tf.getBackend();
    if (this.codesPerWord === 8 && backend !== 'cpu' && !EXACT_INT32_BACKENDS.has(backend)) {
      throw new LoraError(
        'E_BASE_WEIGHT',
        `${this.name}: expected a backend with exact int32 mod/sub for 8 codes per word (cpu, wasm, tensorflow), got ${backend}. Hint: use dequantize(), or build the layer with { codesPerWord: 6 } (the default when this backend is active at construction)`,
      );
    }
    return tf.tidy(() => {
      const { blocksize } = this.state;
      const blocks = this.absmax.shape[0];
      // The 16-entry table and the divisors are made per call (tiny), so the layer holds only
      // the packed words and absmax, all of which weights() reports.
      const table = tf.tensor1d(this.codeTable(), 'float32');
      const words = tf.expandDims(this.packedWords, 1);
      const pow = (shifts: number[], extra: number) =>
        tf.tensor2d(
          shifts.map((shift) => 2 ** (shift + extra)),
          [1, shifts.length],
          'int32',
        );
      let nibbles: tf.Tensor;
      if (this.codesPerWord === 6) {
        const shifts = [0, 4, 8, 12, 16, 20];
        nibbles = tf.floorDiv(tf.mod(words, pow(shifts, 4)), pow(shifts, 0));
      } else {
        const low = tf.floorDiv(
          tf.sub(tf.mod(words, pow(LOW_SHIFTS, 4)), tf.mod(words, pow(LOW_SHIFTS, 0))),
          pow(LOW_SHIFTS, 0),
        );
        const top28 = tf.scalar(2 ** 28, 'int32');
        const top = tf.mod(
          tf.floorDiv(tf.sub(words, tf.mod(words, top28)), top28),
          tf.scalar(16, 'int32'),
        );
        nibbles = tf.concat(
          [tf.slice(low, [0, 0], [-1, 6]), top, tf.slice(low, [0, 6], [-1, 1])],
          1,
        );
      }
      const codes = tf.slice(tf.reshape(nibbles, [-1]), 0, this.count);
      let values = tf.gather(table, codes);
      const full = blocks * blocksize;
      if (full !== this.count) values = tf.pad(values, [[0, full - this.count]]);
      const scaled = tf.mul(tf.reshape(values, [blocks, blocksize]), tf.expandDims(this.absmax, 1));
      const flat = full === this.count ? scaled : tf.slice(tf.reshape(scaled, [-1]), 0, this.count);
      return tf.reshape(flat, [this.outFeatures, this.inFeatures]) as tf.Tensor2D;
    });
  }

  /**
   * The 16-entry code table as a backend tensor, made once per backend and quantization type and
   * shared by every layer: a per-call upload cost more than the dequantization of a 2048² weight
   * on an H200 (measured: 185 GB/s with it, a tenth of copy bandwidth).
   */
  private deviceCodeTable(): tf.Tensor1D {
    const key = `${tf.getBackend()}:${this.state.quantType}`;
    const cached = deviceTables.get(key);
    if (cached !== undefined && !cached.isDisposed) return cached;
    const table = tf.keep(tf.tensor1d(this.codeTable(), 'float32'));
    deviceTables.set(key, table);
    return table;
  }

  private codeTable(): number[] {
    return Array.from(this.state.quantType === 'nf4' ? NF4_CODE : FP4_CODE);
  }

  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const leading = x.shape.slice(0, -1);
      const flat = tf.reshape(x, [-1, this.inFeatures]) as tf.Tensor2D;
      const y = this.matmul(flat);
      return tf.reshape(y, [...leading, this.outFeatures]);
    });
  }

  /** `x Wᵀ` with the dequantization inside a custom-gradient op. */
  private matmul(x: tf.Tensor2D): tf.Tensor {
    const [rows] = x.shape;
    if (
      this.codesPerWord === 8 &&
      this.state.blocksize % 8 === 0 &&
      useTiledKernels(rows, this.inFeatures, this.outFeatures, 'nk')
    ) {
      // webgpu: codes are decoded tile by tile inside the matmul, forward and backward; no f32
      // copy of W is ever made.
      const op = tf.customGrad(((input: tf.Tensor) => ({
        value: this.fusedMatMul(input as tf.Tensor2D, 'nk'),
        gradFunc: (dy: tf.Tensor) => this.fusedMatMul(dy as tf.Tensor2D, 'kn'),
      })) as Parameters<typeof tf.customGrad>[0]);
      return op(x);
    }
    const op = tf.customGrad(((input: tf.Tensor) => {
      const weight = this.dequantize();
      const value = tf.matMul(input as tf.Tensor2D, weight, false, true);
      weight.dispose();
      return {
        value,
        // Recompute W rather than keeping it alive from the forward pass.
        gradFunc: (dy: tf.Tensor) => {
          const w = this.dequantize();
          const dx = tf.matMul(dy as tf.Tensor2D, w);
          w.dispose();
          return dx;
        },
      };
    }) as Parameters<typeof tf.customGrad>[0]);
    return op(x);
  }

  private fusedMatMul(x: tf.Tensor2D, layout: RightLayout, lora?: LoraEpilogue): tf.Tensor2D {
    return tf.tidy(() => {
      const table = this.deviceCodeTable();
      return nf4TiledMatMul(
        x,
        this.packedWords,
        this.absmax,
        table,
        [this.outFeatures, this.inFeatures],
        this.state.blocksize,
        layout,
        lora,
      );
    });
  }

  /**
   * `x · Wᵀ` (`'nk'`) or `x · W` (`'kn'`) through the fused WGSL kernel, plus a LoRA term, when
   * that kernel serves this shape on the active backend; otherwise undefined. No gradient: for
   * LoraLinear's fused forward and backward.
   *
   * @internal
   */
  tiledProduct(x: tf.Tensor2D, layout: RightLayout, lora?: LoraEpilogue): tf.Tensor2D | undefined {
    return this.tiles(x.shape[0], layout) ? this.fusedMatMul(x, layout, lora) : undefined;
  }

  /** Whether {@link Nf4Linear.tiledProduct} serves `rows` rows in `layout`. @internal */
  tiles(rows: number, layout: RightLayout): boolean {
    const [k, n] =
      layout === 'nk' ? [this.inFeatures, this.outFeatures] : [this.outFeatures, this.inFeatures];
    return (
      this.codesPerWord === 8 &&
      this.state.blocksize % 8 === 0 &&
      useTiledKernels(rows, k, n, layout)
    );
  }

  /**
   * The backend tensors this layer holds: `weight` (packed int32 words) and `weight.absmax`.
   * Use {@link Nf4Linear.toBnbTensors} for a checkpoint.
   */
  weights(): Record<string, tf.Tensor> {
    return { weight: this.packedWords, 'weight.absmax': this.absmax };
  }

  /**
   * The packed bytes and quantization state, as `@qlora/nf4` represents them.
   *
   * @example
   * ```ts
   * const q = proj.quantized(); // { packed: Uint8Array, state: QuantState }
   * ```
   */
  quantized(): Quantized4bit {
    const words = this.packedWords.dataSync() as Int32Array;
    const packed =
      this.codesPerWord === 8
        ? new Uint8Array(words.buffer, words.byteOffset, this.byteLength).slice()
        : unpackNibbles24(words, this.byteLength * 2, this.byteLength);
    return { packed, state: this.state };
  }

  /**
   * The tensors bitsandbytes' `Linear4bit` writes for this weight (`<name>.weight`,
   * `.weight.absmax`, `.weight.quant_map`, nested keys, the JSON quant-state blob).
   *
   * @example
   * ```ts
   * Object.keys(proj.toBnbTensors()); // ['model.layers.0.mlp.up_proj.weight', …]
   * ```
   */
  toBnbTensors(): Record<string, TensorRecord> {
    return toBnbTensors(this.quantized(), this.name);
  }

  dispose(): void {
    this.packedWords.dispose();
    this.absmax.dispose();
  }
}

/**
 * Builds an {@link Nf4Linear} from a pre-quantized bitsandbytes checkpoint's tensors (keys as
 * `@qlora/nf4`'s `fromBnbTensors` reads them: `<prefix>.weight`, `<prefix>.weight.absmax`, …).
 *
 * @example
 * ```ts
 * const file = parseSafetensors(bytes);
 * const proj = nf4LinearFromBnbTensors(file.tensors, 'model.layers.0.self_attn.q_proj');
 * ```
 */
export function nf4LinearFromBnbTensors(
  tensors: Record<string, TensorRecord>,
  prefix: string,
): Nf4Linear {
  const name = prefix.endsWith('.') ? prefix.slice(0, -1) : prefix;
  return new Nf4Linear(name, fromBnbTensors(tensors, name));
}
