// W8A8 (issue 10): the row quantizer runs on any webgpu adapter (Mesa lavapipe here) and is
// checked against the JavaScript reference; the int8 subgroup-matrix product needs Dawn's
// experimental feature on an NVIDIA GPU, so its parity test runs only there (the GPU bench runs
// the same comparison on the H200: tools/gpu/gpu-bench.ts, stage `int8`).
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type Int8FixtureCase,
  oneLayerModel,
  rowProductFixture,
  unpackRows,
} from './_test-helpers';
import { int8MatMul, quantizeRowsInt8, supportsInt8MatMul } from './_webgpu-int8';
import { hasWebgpu } from './_webgpu-probe';
import { installRawShaderHook, rawWgslProgramCode } from './_webgpu-row-products';
import { DenseLinear } from './dense-linear';
import { LoraError } from './errors';
import { Int8Linear, useInt8Projections } from './int8-linear';

const webgpu = await hasWebgpu();

const fixture = rowProductFixture<Int8FixtureCase>('int8_vectorwise.json');

describe.skipIf(!webgpu)('int8 row quantization on the webgpu backend', () => {
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  for (const c of fixture.cases) {
    it(`quantizes rows as bitsandbytes' int8_vectorwise_quant does, zero-padded (${c.name})`, async () => {
      await tf.setBackend('webgpu');
      const x = tf.tensor2d(c.x, [c.rows, c.k]);
      const q = quantizeRowsInt8(x, 128);
      expect(q.rowsPadded).toBe(128);
      expect(q.kWords).toBe(Math.ceil(c.k / 64) * 16);
      const words = (await q.words.data()) as Int32Array;
      const absmax = (await q.absmax.data()) as Float32Array;
      const codes = unpackRows(words, { ...q, cols: c.k }, Int8Array);
      expect(codes.values).toEqual(c.xCodes);
      expect(codes.nonzeroPadding).toBe(0);
      expect(Array.from(absmax.subarray(0, c.rows))).toEqual(c.xAbsmax);
      expect(Array.from(absmax.subarray(c.rows)).every((v) => v === 0)).toBe(true);
      tf.dispose([x, q.words, q.absmax]);
    });
  }

  it('gives an all-zero row absmax 0 and codes 0 (bitsandbytes leaves it undefined)', async () => {
    await tf.setBackend('webgpu');
    const x = tf.tensor2d([0, 0, 0, 0, 1, -2, 0.5, 2], [2, 4]);
    const q = quantizeRowsInt8(x, 128);
    const words = (await q.words.data()) as Int32Array;
    expect(unpackRows(words, { ...q, cols: 4 }, Int8Array).values).toEqual([
      0, 0, 0, 0, 64, -127, 32, 127,
    ]);
    expect(Array.from(((await q.absmax.data()) as Float32Array).subarray(0, 2))).toEqual([0, 2]);
    tf.dispose([x, q.words, q.absmax]);
  });

  it('refuses W8A8 layers without int8 subgroup matrices, naming the option that enables them', async () => {
    await tf.setBackend('webgpu');
    if (supportsInt8MatMul()) return; // an NVIDIA machine started with int8TensorCores
    const layer = new DenseLinear('q_proj', tf.zeros([4, 64]) as tf.Tensor2D);
    expect(() => Int8Linear.fromLinear(layer)).toThrow(LoraError);
    expect(() => useInt8Projections(oneLayerModel(layer))).toThrow(/int8TensorCores: true/);
    layer.dispose();
  });

  it.runIf(supportsInt8MatMulLater())(
    'multiplies like the exact integer product of the reference codes, on the int8 tensor cores',
    async () => {
      await tf.setBackend('webgpu');
      for (const c of fixture.cases) {
        const x = quantizeRowsInt8(tf.tensor2d(c.x, [c.rows, c.k]), 128);
        const w = quantizeRowsInt8(tf.tensor2d(c.w, [c.out, c.k]), 128);
        expect(Array.from((await int8MatMul(x, w).data()) as Float32Array)).toEqual(c.output);
      }
    },
  );
});

function supportsInt8MatMulLater(): boolean {
  // Evaluated at collection time, before any test switched backends: webgpu must be current.
  return webgpu && tf.getBackend() === 'webgpu' && supportsInt8MatMul();
}

describe('raw WGSL programs (the int8 product enters tfjs this way)', () => {
  it('swap the marked source for the registered one and leave other shaders alone', () => {
    const compiled: string[] = [];
    const device = {
      features: new Set<string>(),
      createShaderModule: (descriptor: { code: string }) => compiled.push(descriptor.code),
    };
    installRawShaderHook(device);
    installRawShaderHook(device); // once per device
    const userCode = rawWgslProgramCode('test_raw_key', () => 'enable f16;\nfn _start() {}');
    device.createShaderModule({ code: `struct Prelude { a : f32 };\n${userCode}` });
    device.createShaderModule({ code: 'fn plain() {}' });
    expect(compiled).toEqual(['enable f16;\nfn _start() {}', 'fn plain() {}']);
    expect(() =>
      device.createShaderModule({ code: '// @qlora/raw-wgsl never_registered\n' }),
    ).toThrow("raw WGSL program: expected a registered source, got 'never_registered'");
  });
});
