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

/** One case of `test-fixtures/lora/int8_vectorwise.json` (tools/reference/int8_vectorwise_np.py). */
export interface Int8FixtureCase {
  name: string;
  rows: number;
  out: number;
  k: number;
  x: number[];
  w: number[];
  xCodes: number[];
  xAbsmax: number[];
  wCodes: number[];
  wAbsmax: number[];
  /** Exact int64 sums of the quantized product, `[rows, out]`. */
  sums: number[];
  /** f32(sum) · (absmax_x · absmax_w · f32(1/127²)) in float32. */
  output: number[];
}

/** bitsandbytes' int8 row quantizer replayed in numpy float32, with exact products. */
export function int8Fixture(): { cases: Int8FixtureCase[] } {
  return JSON.parse(readFileSync(fixturePath('lora', 'int8_vectorwise.json'), 'utf8'));
}

/** One case of `test-fixtures/lora/f16_rows.json` (tools/reference/f16_rows_np.py). */
export interface F16FixtureCase {
  name: string;
  rows: number;
  out: number;
  k: number;
  x: number[];
  w: number[];
  /** IEEE binary16 bits of each row scaled by 2^(14 − floor(log2 absmax)), nearest-even. */
  xHalfBits: number[];
  xAbsmax: number[];
  wHalfBits: number[];
  wAbsmax: number[];
  /** The f16 product (float64 sums) times the two rows' scales, `[rows, out]`. */
  output: number[];
  /** x · wᵀ in float64 on the f32 operands, and Σ|x|·|w| (the error scale). */
  exact: number[];
  absSum: number[];
}

/** The f16 row packing replayed in numpy, with float64 products. */
export function f16Fixture(): { cases: F16FixtureCase[] } {
  return JSON.parse(readFileSync(fixturePath('lora', 'f16_rows.json'), 'utf8'));
}
