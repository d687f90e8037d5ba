// f16 tensor cores (issue 10): the row packer runs on any webgpu adapter (Mesa lavapipe here) and
// is checked bit for bit against numpy's float16 rounding (tools/reference/f16_rows_np.py); the
// f16 subgroup-matrix product needs Dawn's experimental feature on an NVIDIA GPU, so its fixture
// test runs only there (the GPU bench runs the same comparison on the H200: stage `f16`).
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { useF16BaseProducts } from './_f16-base';
import { type F16FixtureCase, oneLayerModel, rowProductFixture, unpackRows } from './_test-helpers';
import { f16MatMul, packRowsF16, supportsF16MatMul } from './_webgpu-f16';
import { hasWebgpu } from './_webgpu-probe';
import { DenseLinear } from './dense-linear';
import { LoraError } from './errors';
import { F16Linear, useF16Projections } from './f16-linear';
import { LoraLinear } from './lora-linear';

const webgpu = await hasWebgpu();
const fixture = rowProductFixture<F16FixtureCase>('f16_rows.json');

describe.skipIf(!webgpu)('f16 row packing on the webgpu backend', () => {
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  for (const c of fixture.cases) {
    it(`scales each row by a power of two and rounds to nearest-even f16, as numpy does (${c.name})`, async () => {
      await tf.setBackend('webgpu');
      const x = tf.tensor2d(c.x, [c.rows, c.k]);
      const packed = packRowsF16(x, 128);
      expect(packed.rowsPadded).toBe(128);
      expect(packed.kWords).toBe(Math.ceil(c.k / 32) * 16);
      const words = (await packed.words.data()) as Int32Array;
      const absmax = (await packed.absmax.data()) as Float32Array;
      expect(Array.from(absmax.subarray(0, c.rows))).toEqual(c.xAbsmax);
      const halves = unpackRows(words, { ...packed, cols: c.k }, Uint16Array);
      expect(halves.values).toEqual(c.xHalfBits);
      expect(halves.nonzeroPadding).toBe(0);
      tf.dispose([x, packed.words, packed.absmax]);
    });
  }

  it('refuses f16 layers without f16 subgroup matrices, naming the option that enables them', async () => {
    await tf.setBackend('webgpu');
    if (supportsF16MatMul()) return; // an NVIDIA machine started with f16TensorCores
    const layer = new DenseLinear('q_proj', tf.zeros([4, 64]) as tf.Tensor2D);
    expect(() => F16Linear.fromLinear(layer)).toThrow(LoraError);
    expect(() => useF16Projections(oneLayerModel(layer))).toThrow(
      /f16 subgroup matrices.*f16TensorCores: true/,
    );
    layer.dispose();
  });

  it('refuses f16 base products for training without them, and stays off', async () => {
    await tf.setBackend('webgpu');
    if (supportsF16MatMul()) return;
    expect(() => useF16BaseProducts(true)).toThrow(
      /useF16BaseProducts: expected the webgpu backend with f16 subgroup matrices/,
    );
    useF16BaseProducts(false);
  });

  // dropout 0 takes the fused path (the base product inside the LoRA layer's custom gradient),
  // dropout > 0 the unfused one (the base as its own op).
  for (const dropout of [0, 0.1]) {
    it.runIf(webgpu && tf.getBackend() === 'webgpu' && supportsF16MatMul())(
      `trains a LoRA layer (dropout ${dropout}) with f16 base products close to f32 (output and gradients)`,
      async () => {
        await tf.setBackend('webgpu');
        const base = new DenseLinear(
          'q_proj',
          tf.randomUniform([256, 512], -0.05, 0.05, 'float32', 1) as tf.Tensor2D,
        );
        const lora = new LoraLinear(base, { r: 8, alpha: 16, dropout });
        lora.training = true;
        lora.loraB.assign(tf.randomUniform([256, 8], -0.1, 0.1, 'float32', 2));
        const x = tf.randomUniform([128, 512], -1, 1, 'float32', 3);
        const run = () => {
          lora.restoreDropoutState(0); // the same masks in both runs
          return tf.variableGrads(
            () => tf.sum(tf.square(lora.apply(x))) as tf.Scalar,
            [lora.loraA as tf.Variable],
          );
        };
        const f32 = run();
        useF16BaseProducts(true);
        const f16 = run();
        useF16BaseProducts(false);
        const rel = (a: tf.Tensor, b: tf.Tensor) =>
          tf.norm(tf.sub(a, b)).dataSync()[0]! / tf.norm(b).dataSync()[0]!;
        expect(rel(f16.value, f32.value)).toBeLessThan(1e-3);
        const name = (lora.loraA as tf.Variable).name;
        expect(rel(f16.grads[name]!, f32.grads[name]!)).toBeLessThan(1e-3);
      },
    );
  }

  it.runIf(webgpu && tf.getBackend() === 'webgpu' && supportsF16MatMul())(
    'multiplies like the float64 product of the reference halves, on the f16 tensor cores',
    async () => {
      await tf.setBackend('webgpu');
      for (const c of fixture.cases) {
        const x = packRowsF16(tf.tensor2d(c.x, [c.rows, c.k]), 128);
        const w = packRowsF16(tf.tensor2d(c.w, [c.out, c.k]), 64);
        const got = (await f16MatMul(x, w).data()) as Float32Array;
        // f32 accumulation of exact f16 products: the recursive-summation bound K·2^-24·Σ|terms|
        // (the H200 measured 5.5e-6·Σ|terms| at K = 2000, a twentieth of it).
        for (let i = 0; i < c.rows * c.out; i++) {
          const bound = c.k * 2 ** -24 * Math.abs(c.absSum[i] as number) + 1e-30;
          expect(Math.abs((got[i] as number) - (c.output[i] as number))).toBeLessThanOrEqual(bound);
        }
      }
    },
  );
});
