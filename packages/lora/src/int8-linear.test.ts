// Int8Linear's emulated arithmetic (any backend) against the JavaScript W8A8 reference: the same
// codes and the same f32 epilogue, so equal bit for bit while the integer sums stay below 2^24.
import '@tensorflow/tfjs-backend-cpu';
import { quantize4bit } from '@qlora/nf4';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { int8ProductReference, quantizeRowsReference } from './_int8-reference';
import { randomFloats } from './_test-helpers';
import { DenseLinear } from './dense-linear';
import { LoraError } from './errors';
import { Int8Linear, useInt8Projections } from './int8-linear';
import { LoraLinear } from './lora-linear';
import { Nf4Linear } from './nf4-linear';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('Int8Linear, emulated arithmetic', () => {
  it('equals the W8A8 reference bit for bit on a dense weight (3-D input)', async () => {
    const [out, inF, rows] = [24, 64, 10];
    const w = randomFloats(out * inF, 1, 0.3);
    const x = randomFloats(rows * inF, 2, 2);
    x.fill(0, 0, inF); // an all-zero row: absmax 0, output 0
    const dense = new DenseLinear('q_proj', tf.tensor2d(w, [out, inF]));
    const layer = Int8Linear.fromLinear(dense, { arithmetic: 'emulated' });
    expect(layer.arithmetic).toBe('emulated');
    const y = (await layer.apply(tf.tensor3d(x, [2, rows / 2, inF])).data()) as Float32Array;
    const xr = quantizeRowsReference(x, rows, inF);
    const wr = quantizeRowsReference(w, out, inF);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < out; c++) {
        expect(y[r * out + c]).toBe(int8ProductReference(xr, wr, inF, r, c));
      }
    }
    layer.dispose();
    dense.dispose();
  });

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
