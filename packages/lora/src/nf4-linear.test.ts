import { dequantize4bit, fromBnbTensors, quantize4bit, type TensorRecord } from '@qlora/nf4';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomFloats, readFixtureSafetensors, useCpu } from './_test-helpers';
import { LoraLinear } from './lora-linear';
import { Nf4Linear, nf4LinearFromBnbTensors } from './nf4-linear';

beforeAll(useCpu);

function bits(a: Float32Array): Int32Array {
  return new Int32Array(a.buffer, a.byteOffset, a.length);
}

describe('Nf4Linear dequantization', () => {
  const cases: [
    string,
    number,
    number,
    { blocksize: number; doubleQuant: boolean; quantType: 'nf4' | 'fp4' },
  ][] = [
    ['nf4 dq 64', 48, 64, { blocksize: 64, doubleQuant: true, quantType: 'nf4' }],
    ['nf4 64 partial block, odd n', 7, 13, { blocksize: 64, doubleQuant: false, quantType: 'nf4' }],
    ['nf4 dq 32, >256 blocks', 96, 100, { blocksize: 32, doubleQuant: true, quantType: 'nf4' }],
    ['fp4 128', 20, 30, { blocksize: 128, doubleQuant: false, quantType: 'fp4' }],
    ['nf4 dq 64, 1 column', 129, 1, { blocksize: 64, doubleQuant: true, quantType: 'nf4' }],
  ];
  for (const [title, out, inF, options] of cases) {
    it(`is bit-exact with @qlora/nf4 dequantize4bit (${title})`, () => {
      const source = randomFloats(out * inF, out * 31 + inF, 0.7);
      source[3] = 0; // a zero and a large value inside blocks
      source[5] = 3.5;
      const q = quantize4bit(source, { shape: [out, inF], ...options });
      const layer = new Nf4Linear('p', q);
      const w = layer.dequantize();
      const ours = w.dataSync() as Float32Array;
      expect(w.shape).toEqual([out, inF]);
      expect(bits(ours)).toEqual(bits(dequantize4bit(q)));
      // The backend-generic tf-op path (used off the cpu backend) gives the same bits.
      const generic = layer.dequantizeWithOps();
      expect(bits(generic.dataSync() as Float32Array)).toEqual(bits(dequantize4bit(q)));
      generic.dispose();
      w.dispose();
      layer.dispose();
      // 6 codes per element (the layout for backends whose integer ops run in f32).
      const layer6 = new Nf4Linear('p', q, { codesPerWord: 6 });
      expect(layer6.packedWords.shape).toEqual([Math.ceil((2 * Math.ceil((out * inF) / 2)) / 6)]);
      const w6 = layer6.dequantize();
      expect(bits(w6.dataSync() as Float32Array)).toEqual(bits(dequantize4bit(q)));
      expect(layer6.quantized().packed).toEqual(q.packed);
      w6.dispose();
      layer6.dispose();
    });
  }

  it('is bit-exact on random packed bytes (all 32 bits of each word), both layouts', () => {
    const q = quantize4bit(randomFloats(40 * 50, 21, 0.5), { shape: [40, 50], doubleQuant: true });
    const noise = randomFloats(q.packed.length, 22);
    const packed = Uint8Array.from(noise, (v) => Math.floor((v + 1) * 128) & 255);
    packed[0] = 0xff;
    packed[3] = 0xf7;
    const random = { packed, state: q.state };
    const expected = bits(dequantize4bit(random));
    for (const codesPerWord of [8, 6] as const) {
      const layer = new Nf4Linear('p', random, { codesPerWord });
      for (const w of [layer.dequantize(), layer.dequantizeWithOps()]) {
        expect(bits(w.dataSync() as Float32Array)).toEqual(expected);
        w.dispose();
      }
      expect(layer.quantized().packed).toEqual(packed);
      layer.dispose();
    }
  });

  it('reads bitsandbytes-written tensors (tiny-bnb) bit-exactly', () => {
    const tensors = readFixtureSafetensors('tiny-bnb', 'model.safetensors') as unknown as Record<
      string,
      TensorRecord
    >;
    for (const prefix of ['model.layers.0.self_attn.q_proj', 'model.layers.1.mlp.down_proj']) {
      const layer = nf4LinearFromBnbTensors(tensors, `${prefix}.`);
      expect(layer.name).toBe(prefix);
      const w = layer.dequantize();
      expect(bits(w.dataSync() as Float32Array)).toEqual(
        bits(dequantize4bit(fromBnbTensors(tensors, prefix))),
      );
      // Re-exporting gives bitsandbytes' bytes back.
      const again = layer.toBnbTensors();
      for (const [key, record] of Object.entries(again)) {
        expect(Array.from(record.data as Uint8Array), key).toEqual(
          Array.from((tensors[key] as TensorRecord).data as Uint8Array),
        );
      }
      w.dispose();
      layer.dispose();
    }
  });
});

describe('Nf4Linear forward and gradients', () => {
  it('keeps no f32 weight alive between calls and matches x·Wᵀ', () => {
    const q = quantize4bit(randomFloats(24 * 64, 5), { shape: [24, 64], doubleQuant: true });
    const layer = new Nf4Linear('p', q);
    const x = tf.tensor2d(randomFloats(3 * 64, 6), [3, 64]);
    const before = tf.memory();
    const y = layer.apply(x);
    const after = tf.memory();
    expect(after.numTensors - before.numTensors).toBe(1); // only y
    expect(after.numBytes - before.numBytes).toBe(3 * 24 * 4);
    const w = tf.tensor2d(dequantize4bit(q), [24, 64]);
    const expected = tf.matMul(x, w, false, true);
    expect(Array.from(y.dataSync())).toEqual(Array.from(expected.dataSync()));
    // The gradient pass also leaves nothing behind but its result.
    const n0 = tf.memory().numTensors;
    const dx = tf.grad((input: tf.Tensor) => tf.sum(layer.apply(input)))(x);
    expect(tf.memory().numTensors - n0).toBe(1);
    tf.dispose([x, y, w, expected, dx]);
    layer.dispose();
  });

  it('LoRA gradients through the NF4 custom op match float64 central differences', () => {
    // Small sizes; the reference is a float64 re-implementation of the same function on the
    // dequantized weight, differentiated by central differences (h = 1e-3; the loss is linear in
    // each single entry of A, B and x, so the difference quotient is exact up to rounding).
    const [out, inF, r, rows] = [6, 64, 3, 4];
    const q = quantize4bit(randomFloats(out * inF, 11), { shape: [out, inF], doubleQuant: true });
    const w = dequantize4bit(q);
    const lora = new LoraLinear(new Nf4Linear('p', q), { r, alpha: 6, init: false, seed: 4 });
    const a = Float64Array.from(lora.loraA.dataSync());
    const b = Float64Array.from(lora.loraB.dataSync());
    const xData = Float64Array.from(randomFloats(rows * inF, 12));
    const weights = Float64Array.from(randomFloats(rows * out, 13)); // loss = Σ y ∘ R
    const s = lora.scaling;
    const loss64 = (xs: Float64Array, as: Float64Array, bs: Float64Array): number => {
      let total = 0;
      for (let i = 0; i < rows; i++) {
        const down = new Float64Array(r);
        for (let k = 0; k < r; k++) {
          let sum = 0;
          for (let j = 0; j < inF; j++)
            sum += (xs[i * inF + j] as number) * (as[k * inF + j] as number);
          down[k] = sum;
        }
        for (let o = 0; o < out; o++) {
          let y = 0;
          for (let j = 0; j < inF; j++)
            y += (xs[i * inF + j] as number) * (w[o * inF + j] as number);
          let up = 0;
          for (let k = 0; k < r; k++) up += (down[k] as number) * (bs[o * r + k] as number);
          total += (y + s * up) * (weights[i * out + o] as number);
        }
      }
      return total;
    };
    const central = (which: Float64Array, index: number, args: () => number): number => {
      const h = 1e-3;
      const keep = which[index] as number;
      which[index] = keep + h;
      const plus = args();
      which[index] = keep - h;
      const minus = args();
      which[index] = keep;
      return (plus - minus) / (2 * h);
    };
    const f = () => loss64(xData, a, b);
    const x = tf.tensor2d(Float32Array.from(xData), [rows, inF]);
    const r32 = tf.tensor2d(Float32Array.from(weights), [rows, out]);
    const { grads } = tf.variableGrads(
      () => tf.sum(tf.mul(lora.apply(x), r32)) as tf.Scalar,
      [lora.loraA, lora.loraB],
    );
    const dx = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(lora.apply(input), r32)))(x);
    const check = (tensor: tf.Tensor, target: Float64Array): number => {
      const got = tensor.dataSync();
      let worst = 0;
      let scale = 0;
      for (let i = 0; i < target.length; i++) {
        const fd = central(target, i, f);
        worst = Math.max(worst, Math.abs((got[i] as number) - fd));
        scale = Math.max(scale, Math.abs(fd));
      }
      return worst / scale;
    };
    const relA = check(grads[lora.loraA.name] as tf.Tensor, a);
    const relB = check(grads[lora.loraB.name] as tf.Tensor, b);
    const relX = check(dx, xData);
    expect(relA).toBeLessThan(1e-4);
    expect(relB).toBeLessThan(1e-4);
    expect(relX).toBeLessThan(1e-4);
    // Only A and B get gradients; the codes are closed over, not inputs.
    expect(Object.keys(grads).sort()).toEqual([lora.loraA.name, lora.loraB.name].sort());
    const base = lora.base as Nf4Linear;
    expect(base.packedWords).not.toBeInstanceOf(tf.Variable);
    expect(base.absmax).not.toBeInstanceOf(tf.Variable);
    tf.dispose([x, r32, dx, ...Object.values(grads)]);
    lora.dispose();
  });
});
