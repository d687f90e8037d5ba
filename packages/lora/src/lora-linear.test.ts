import { readFileSync } from 'node:fs';
import { fixturePath } from '@qlora/test-utils';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { f32, randomFloats, readFixtureSafetensors, relativeError, useCpu } from './_test-helpers';
import { DenseLinear } from './dense-linear';
import { LoraLinear, loraScaling } from './lora-linear';

beforeAll(useCpu);

interface LayerCase {
  r: number;
  lora_alpha: number;
  use_rslora: boolean;
  scaling: number;
  in: number;
  out: number;
  max_abs_A_at_init: number;
  kaiming_bound: number;
  B_zero_at_init: boolean;
}
const meta = JSON.parse(readFileSync(fixturePath('lora', 'layer.json'), 'utf8')) as Record<
  string,
  LayerCase
>;
const tensors = readFixtureSafetensors('layer.safetensors');

function peftLayer(name: string): { lora: LoraLinear; x: tf.Tensor; c: LayerCase } {
  const c = meta[name] as LayerCase;
  const base = new DenseLinear('proj', tf.tensor2d(f32(tensors[`${name}.weight`]), [c.out, c.in]));
  const lora = new LoraLinear(base, { r: c.r, alpha: c.lora_alpha, useRslora: c.use_rslora });
  lora.loraA.assign(tf.tensor2d(f32(tensors[`${name}.lora_A`]), [c.r, c.in]));
  lora.loraB.assign(tf.tensor2d(f32(tensors[`${name}.lora_B`]), [c.out, c.r]));
  const x = tf.tensor3d(f32(tensors[`${name}.x`]), [3, 5, c.in]);
  return { lora, x, c };
}

describe('LoraLinear against PEFT 0.21 (layer.safetensors, tools/reference/peft_ref.py)', () => {
  for (const name of ['plain', 'rslora']) {
    it(`${name}: forward equals PEFT's LoraLayer output and merge equals merge_and_unload`, () => {
      const { lora, x, c } = peftLayer(name);
      expect(lora.scaling).toBeCloseTo(c.scaling, 12);
      const y = lora.apply(x);
      expect(y.shape).toEqual([3, 5, c.out]);
      const rel = relativeError(y.dataSync(), f32(tensors[`${name}.y`]));
      expect(rel).toBeLessThan(1e-5);
      expect(lora.merge()).toBeNull();
      const merged = lora.weights().weight as tf.Tensor;
      expect(relativeError(merged.dataSync(), f32(tensors[`${name}.merged`]))).toBeLessThan(1e-6);
      // Merged forward is the same function.
      expect(relativeError(lora.apply(x).dataSync(), f32(tensors[`${name}.y`]))).toBeLessThan(1e-5);
      lora.unmerge();
      expect(
        relativeError(
          (lora.weights().weight as tf.Tensor).dataSync(),
          f32(tensors[`${name}.weight`]),
        ),
      ).toBeLessThan(1e-6);
      tf.dispose([x, y]);
      lora.dispose();
    });
  }
});

describe('LoraLinear initialisation and dropout', () => {
  const base = () =>
    new DenseLinear('model.layers.3.mlp.down_proj', tf.zeros([40, 256]) as tf.Tensor2D);

  it('kaiming-uniform A within ±1/√in, B zero, seeded and reproducible', () => {
    const one = new LoraLinear(base(), { r: 16, alpha: 16, seed: 3407 });
    const two = new LoraLinear(base(), { r: 16, alpha: 16, seed: 3407 });
    const other = new LoraLinear(base(), { r: 16, alpha: 16, seed: 1 });
    const a = one.loraA.dataSync() as Float32Array;
    const bound = 1 / Math.sqrt(256);
    expect(Math.max(...Array.from(a, Math.abs))).toBeLessThanOrEqual(bound);
    // PEFT's own A at init also stays inside the bound (max |A| recorded by the script).
    expect((meta.plain as LayerCase).max_abs_A_at_init).toBeLessThanOrEqual(
      (meta.plain as LayerCase).kaiming_bound,
    );
    // Uniform: variance bound²/3, mean 0 (4096 samples: loose bounds).
    const mean = a.reduce((s, v) => s + v, 0) / a.length;
    const variance = a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length;
    expect(Math.abs(mean)).toBeLessThan(0.05 * bound);
    expect(variance / ((bound * bound) / 3)).toBeGreaterThan(0.93);
    expect(variance / ((bound * bound) / 3)).toBeLessThan(1.07);
    expect(Array.from(one.loraB.dataSync()).every((v) => v === 0)).toBe(true);
    expect(Array.from(two.loraA.dataSync())).toEqual(Array.from(a));
    expect(Array.from(other.loraA.dataSync())).not.toEqual(Array.from(a));
    for (const l of [one, two, other]) l.dispose();
  });

  it("'gaussian' draws A ~ N(0, 1/r²)", () => {
    const l = new LoraLinear(base(), { r: 8, alpha: 8, init: 'gaussian', seed: 9 });
    const a = l.loraA.dataSync() as Float32Array;
    const mean = a.reduce((s, v) => s + v, 0) / a.length;
    const std = Math.sqrt(a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length);
    expect(std / (1 / 8)).toBeGreaterThan(0.95);
    expect(std / (1 / 8)).toBeLessThan(1.05);
    l.dispose();
  });

  it('scaling is alpha/r, or alpha/√r with rsLoRA', () => {
    expect(loraScaling(16, 32)).toBe(2);
    expect(loraScaling(16, 32, true)).toBe(8);
  });

  it('applies seeded dropout only in training mode, a new mask each call', () => {
    const l = new LoraLinear(base(), { r: 4, alpha: 4, dropout: 0.5, init: false, seed: 2 });
    const x = tf.tensor2d(randomFloats(6 * 256, 3), [6, 256]);
    const evalA = l.apply(x).dataSync();
    const evalB = l.apply(x).dataSync();
    expect(Array.from(evalA)).toEqual(Array.from(evalB));
    l.training = true;
    const trainA = l.apply(x).dataSync();
    const trainB = l.apply(x).dataSync();
    expect(Array.from(trainA)).not.toEqual(Array.from(evalA));
    expect(Array.from(trainA)).not.toEqual(Array.from(trainB));
    const replay = new LoraLinear(base(), { r: 4, alpha: 4, dropout: 0.5, init: false, seed: 2 });
    replay.training = true;
    expect(Array.from(replay.apply(x).dataSync())).toEqual(Array.from(trainA));
    tf.dispose(x);
    l.dispose();
    replay.dispose();
  });

  it('dropoutState/restoreDropoutState replay the same masks', () => {
    const l = new LoraLinear(base(), { r: 4, alpha: 4, dropout: 0.5, init: false, seed: 2 });
    const x = tf.tensor2d(randomFloats(6 * 256, 3), [6, 256]);
    l.training = true;
    expect(l.dropoutState()).toBe(0);
    const first = Array.from(l.apply(x).dataSync());
    const second = Array.from(l.apply(x).dataSync());
    expect(l.dropoutState()).toBe(2);
    l.restoreDropoutState(1);
    expect(Array.from(l.apply(x).dataSync())).toEqual(second);
    l.restoreDropoutState(0);
    expect(Array.from(l.apply(x).dataSync())).toEqual(first);
    expect(() => l.restoreDropoutState(-1)).toThrow(/expected a non-negative integer/);
    expect(() => l.restoreDropoutState(1.5)).toThrow(/expected a non-negative integer/);
    tf.dispose(x);
    l.dispose();
  });

  it('rejects invalid options with LoraError', () => {
    expect(() => new LoraLinear(base(), { r: 0, alpha: 1 })).toThrow(
      /r: expected a positive integer, got 0/,
    );
    expect(() => new LoraLinear(base(), { r: 2, alpha: 1, dropout: 1 })).toThrow(
      /dropout: expected 0 ≤ p < 1/,
    );
  });
});
