// Int8Linear's emulated arithmetic (any backend) against the JavaScript W8A8 reference: the same
// codes and the same f32 epilogue, so equal bit for bit while the integer sums stay below 2^24.
import '@tensorflow/tfjs-backend-cpu';
import { quantize4bit } from '@qlora/nf4';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { int8ProductReference, quantizeRowsReference } from './_int8-reference';
import { type Int8FixtureCase, randomFloats, rowProductFixture } from './_test-helpers';
import { DenseLinear } from './dense-linear';
import { LoraError } from './errors';
import { Int8Linear, useInt8Projections } from './int8-linear';
import { LoraLinear } from './lora-linear';
import { Nf4Linear } from './nf4-linear';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('Int8Linear, emulated arithmetic', () => {
  for (const c of rowProductFixture<Int8FixtureCase>('int8_vectorwise.json').cases) {
    it(`gives bitsandbytes' codes and the exact products' scaled outputs (${c.name})`, async () => {
      const dense = new DenseLinear('q_proj', tf.tensor2d(c.w, [c.out, c.k]));
      const layer = Int8Linear.fromLinear(dense, { arithmetic: 'emulated' });
      expect(layer.arithmetic).toBe('emulated');
      const weights = layer.weights();
      // + 0: the emulated codes are f32, and tf.round gives −0 for small negative values.
      const codes = await (weights['weight.int8'] as tf.Tensor).data();
      expect(Array.from(codes, (v) => v + 0)).toEqual(c.wCodes);
      expect(Array.from(await (weights['weight.absmax'] as tf.Tensor).data())).toEqual(c.wAbsmax);
      // As [1, rows, k]: leading dimensions are kept.
      const y = layer.apply(tf.tensor3d(c.x, [1, c.rows, c.k]));
      expect(y.shape).toEqual([1, c.rows, c.out]);
      expect(Array.from(await y.data(), (v) => v + 0)).toEqual(c.output.map((v) => v + 0));
      layer.dispose();
      dense.dispose();
    });

    it(`the GPU bench's JavaScript reference agrees with it (${c.name})`, () => {
      const x = quantizeRowsReference(Float32Array.from(c.x), c.rows, c.k);
      const w = quantizeRowsReference(Float32Array.from(c.w), c.out, c.k);
      expect(Array.from(x.codes)).toEqual(c.xCodes);
      expect(Array.from(w.absmax)).toEqual(c.wAbsmax);
      const products = [];
      for (let r = 0; r < c.rows; r++) {
        for (let o = 0; o < c.out; o++) products.push(int8ProductReference(x, w, c.k, r, o));
      }
      expect(products).toEqual(c.output);
    });
  }

  it('quantizes an NF4 weight from its dequantized values', async () => {
    const [out, inF] = [16, 64];
    const q = quantize4bit(randomFloats(out * inF, 3, 0.2), { shape: [out, inF] });
    const nf4 = new Nf4Linear('up_proj', q);
    const w = (await nf4.dequantize().data()) as Float32Array;
    const layer = Int8Linear.fromLinear(nf4, { arithmetic: 'emulated' });
    const x = randomFloats(2 * inF, 4);
    const y = (await layer.apply(tf.tensor2d(x, [2, inF])).data()) as Float32Array;
    const xr = quantizeRowsReference(x, 2, inF);
    const wr = quantizeRowsReference(w, out, inF);
    expect(y[out + 5]).toBe(int8ProductReference(xr, wr, inF, 1, 5));
    layer.dispose();
  });

  it('refuses an adapter layer and converts a model without one, freeing each source', () => {
    const base = new DenseLinear('v_proj', tf.ones([8, 64]) as tf.Tensor2D);
    const lora = new LoraLinear(base, { r: 2, alpha: 2 });
    expect(() => Int8Linear.fromLinear(lora, { arithmetic: 'emulated' })).toThrow(LoraError);
    lora.dispose();
    const layers = [
      new DenseLinear('q_proj', tf.ones([8, 64]) as tf.Tensor2D),
      new DenseLinear('k_proj', tf.ones([4, 64]) as tf.Tensor2D),
    ];
    const model = {
      mapProjections(fn: (l: DenseLinear | Int8Linear, i: number, f: string) => unknown) {
        layers.forEach((l, i) => {
          layers[i] = fn(l, 0, l.name) as DenseLinear;
        });
      },
    };
    const sources = [...layers];
    expect(useInt8Projections(model as never, { arithmetic: 'emulated' })).toEqual({
      converted: 2,
      parameters: 768,
    });
    expect(layers.every((l) => (l as unknown) instanceof Int8Linear)).toBe(true);
    expect(sources.every((l) => l.weight.isDisposed)).toBe(true);
    for (const l of layers) l.dispose();
  });
});
