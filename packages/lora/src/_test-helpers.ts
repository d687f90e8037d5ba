import { readFileSync } from 'node:fs';
import { parseSafetensors, type TensorEntry, toFloat32 } from '@qlora/safetensors';
import { fixturePath } from '@qlora/test-utils';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as tf from '@tensorflow/tfjs-core';
import { DenseLinear } from './dense-linear';
import type { Linear, LoraTargetModel } from './linear';

export async function useCpu(): Promise<void> {
  await tf.setBackend('cpu');
  await tf.ready();
}

export function readFixtureSafetensors(...parts: string[]): Record<string, TensorEntry> {
  const bytes = readFileSync(fixturePath('lora', ...parts));
  return parseSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).tensors;
}

export function f32(entry: TensorEntry | undefined): Float32Array {
  if (entry === undefined) throw new Error('missing fixture tensor');
  return toFloat32(entry);
}

export { relativeError } from '@qlora/test-utils';

/** Deterministic pseudo-random floats in [-scale, scale) (not a reference, just inputs). */
export function randomFloats(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

/** A stand-in model: layers of named projections, as the trainer's LlamaModel exposes them. */
export class ToyModel implements LoraTargetModel {
  layers: Record<string, Linear>[] = [];
  extra = new Map<string, tf.Tensor>();

  constructor(shapes: Record<string, [number, number]>, numLayers: number, seed = 1) {
    for (let i = 0; i < numLayers; i++) {
      const layer: Record<string, Linear> = {};
      for (const [field, [out, inF]] of Object.entries(shapes)) {
        const name = `model.layers.${i}.${field}`;
        const w = tf.tensor2d(randomFloats(out * inF, seed++, 1 / Math.sqrt(inF)), [out, inF]);
        layer[field] = new DenseLinear(name, w);
      }
      this.layers.push(layer);
    }
    this.extra.set('model.norm.weight', tf.ones([8]));
  }

  mapProjections(fn: (linear: Linear, layer: number, field: string) => Linear): void {
    this.layers.forEach((layer, i) => {
      for (const field of Object.keys(layer)) layer[field] = fn(layer[field] as Linear, i, field);
    });
  }

  namedWeights(): Map<string, tf.Tensor> {
    const out = new Map(this.extra);
    for (const layer of this.layers) {
      for (const linear of Object.values(layer)) {
        for (const [suffix, t] of Object.entries(linear.weights()))
          out.set(`${linear.name}.${suffix}`, t);
      }
    }
    return out;
  }

  /** Sum of every projection applied to x (widened by repetition to its input size). */
  forward(x: tf.Tensor2D): tf.Tensor {
    return tf.tidy(() => {
      let total: tf.Tensor = tf.scalar(0);
      for (const layer of this.layers) {
        for (const linear of Object.values(layer)) {
          const width = x.shape[1];
          const reps = Math.ceil(linear.inFeatures / width);
          const input = tf.slice(tf.tile(x, [1, reps]), [0, 0], [-1, linear.inFeatures]);
          total = tf.add(total, tf.sum(linear.apply(input)));
        }
      }
      return total;
    });
  }

  dispose(): void {
    for (const layer of this.layers) for (const l of Object.values(layer)) l.dispose();
    for (const t of this.extra.values()) t.dispose();
  }
}

export const TOY_SHAPES: Record<string, [number, number]> = {
  'self_attn.q_proj': [16, 16],
  'self_attn.k_proj': [8, 16],
  'self_attn.v_proj': [8, 16],
  'self_attn.o_proj': [16, 16],
  'mlp.gate_proj': [24, 16],
  'mlp.up_proj': [24, 16],
  'mlp.down_proj': [16, 24],
};

/** The fields the two row-product fixtures share (x `[rows, k]`, w `[out, k]`, output `[rows, out]`). */
export interface RowProductFixtureCase {
  name: string;
  rows: number;
  out: number;
  k: number;
  x: number[];
  w: number[];
  xAbsmax: number[];
  wAbsmax: number[];
  output: number[];
}

/** `test-fixtures/lora/int8_vectorwise.json` (tools/reference/int8_vectorwise_np.py). */
export interface Int8FixtureCase extends RowProductFixtureCase {
  xCodes: number[];
  wCodes: number[];
  /** Exact int64 sums of the quantized product, `[rows, out]`; `output` is f32(sum) · (absmax_x ·
   * absmax_w · f32(1/127²)) in float32. */
  sums: number[];
}

/** `test-fixtures/lora/f16_rows.json` (tools/reference/f16_rows_np.py). */
export interface F16FixtureCase extends RowProductFixtureCase {
  /** IEEE binary16 bits of each row scaled by 2^(14 − floor(log2 absmax)), nearest-even. */
  xHalfBits: number[];
  wHalfBits: number[];
  /** x · wᵀ in float64 on the f32 operands; `output` is the f16 product (float64 sums) times the
   * two rows' scales. */
  exact: number[];
  /** Σ|x|·|w| per output, the scale of summation error. */
  absSum: number[];
}

/**
 * A row-product fixture made by a numpy script: bitsandbytes' int8 row quantizer replayed in
 * float32 with exact products (`int8_vectorwise.json`), or the f16 row packing with float64
 * products (`f16_rows.json`).
 */
export function rowProductFixture<Case extends RowProductFixtureCase>(
  file: 'int8_vectorwise.json' | 'f16_rows.json',
): { cases: Case[] } {
  return JSON.parse(readFileSync(fixturePath('lora', file), 'utf8'));
}

/**
 * The values of the first `rows × cols` of packed rows (`kWords` int32 words per row, read as
 * `View` elements), and how many values of the padding (columns past `cols`, rows past `rows`,
 * up to `rowsPadded`) are not 0.
 */
export function unpackRows(
  words: Int32Array,
  shape: { rows: number; cols: number; rowsPadded: number; kWords: number },
  View: Int8ArrayConstructor | Uint16ArrayConstructor,
): { values: number[]; nonzeroPadding: number } {
  const all = new View(
    words.buffer as ArrayBuffer,
    words.byteOffset,
    words.byteLength / View.BYTES_PER_ELEMENT,
  );
  const rowLength = all.length / shape.rowsPadded;
  const values: number[] = [];
  let nonzeroPadding = 0;
  for (let r = 0; r < shape.rowsPadded; r++) {
    for (let c = 0; c < rowLength; c++) {
      const value = all[r * rowLength + c] as number;
      if (r < shape.rows && c < shape.cols) values.push(value);
      else if (value !== 0) nonzeroPadding++;
    }
  }
  return { values, nonzeroPadding };
}

/** A model of one projection, for the `use…Projections` conversions. */
export function oneLayerModel(layer: Linear): LoraTargetModel {
  return {
    mapProjections: (fn: (l: Linear, i: number, f: string) => Linear) => {
      fn(layer, 0, layer.name);
    },
  } as unknown as LoraTargetModel;
}
