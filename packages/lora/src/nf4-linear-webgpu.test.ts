// Nf4Linear on the webgpu backend (Dawn through the `webgpu` package; Mesa lavapipe runs it on
// the CPU): its f32 binary ops broke the tf-op nibble extraction above 2^24, so dequantization is
// checked bit for bit against @qlora/nf4 on words that use all 32 bits. Skipped without an adapter.
import { dequantize4bit, type Quantized4bit, quantize4bit } from '@qlora/nf4';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { randomFloats, relativeError } from './_test-helpers';
import { hasWebgpu } from './_webgpu-probe';
import { LoraLinear } from './lora-linear';
import { type CodesPerWord, Nf4Linear } from './nf4-linear';

const webgpu = await hasWebgpu();

function bits(a: Float32Array): Int32Array {
  return new Int32Array(a.buffer, a.byteOffset, a.length);
}

/** A quantized weight whose packed bytes are replaced by uniform random bytes (all 32 bits). */
function randomCodes(out: number, inF: number, seed: number, options: object): Quantized4bit {
  const q = quantize4bit(randomFloats(out * inF, seed, 0.5), { shape: [out, inF], ...options });
  const noise = randomFloats(q.packed.length, seed + 1);
  const packed = Uint8Array.from(noise, (v) => Math.floor((v + 1) * 128) & 255);
  packed[0] = 0xff; // the word holding element 0 gets its sign bit and all high nibbles set
  packed[3] = 0xf7;
  return { packed, state: q.state };
}

const cases: [string, number, number, object][] = [
  ['nf4 dq 64', 48, 64, { blocksize: 64, doubleQuant: true, quantType: 'nf4' }],
  ['nf4 partial block, odd n', 7, 13, { blocksize: 64, doubleQuant: false, quantType: 'nf4' }],
  ['nf4 dq 32, >256 blocks', 96, 100, { blocksize: 32, doubleQuant: true, quantType: 'nf4' }],
  ['fp4 128', 20, 30, { blocksize: 128, doubleQuant: false, quantType: 'fp4' }],
];

describe.skipIf(!webgpu)('Nf4Linear on the webgpu backend', () => {
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  for (const codesPerWord of [8, 6] as CodesPerWord[]) {
    for (const [title, out, inF, options] of cases) {
      it(`dequantizes bit-exactly with @qlora/nf4, random 32-bit words (${title}, ${codesPerWord} codes/word)`, async () => {
        await tf.setBackend('webgpu');
        const q = randomCodes(out, inF, out * 7 + inF, options);
        const layer = new Nf4Linear('p', q, { codesPerWord });
        const w = layer.dequantize();
        expect(w.shape).toEqual([out, inF]);
        expect(bits((await w.data()) as Float32Array)).toEqual(bits(dequantize4bit(q)));
        w.dispose();
        layer.dispose();
      });
    }
  }

  it('runs LoRA forward and backward through Nf4Linear like the cpu backend', async () => {
    const [out, inF, r, rows] = [24, 64, 4, 5];
    const q = randomCodes(out, inF, 3, { blocksize: 64, doubleQuant: true, quantType: 'nf4' });
    const xData = randomFloats(rows * inF, 4);
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      const lora = new LoraLinear(new Nf4Linear('p', q), { r, alpha: 8, init: false, seed: 9 });
      const x = tf.tensor2d(xData, [rows, inF]);
      const y = lora.apply(x);
      const { grads } = tf.variableGrads(
        () => tf.sum(tf.square(lora.apply(x))) as tf.Scalar,
        [lora.loraA, lora.loraB],
      );
      const dx = tf.grad((input: tf.Tensor) => tf.sum(tf.square(lora.apply(input))))(x);
      const result = {
        y: (await y.data()) as Float32Array,
        gA: (await (grads[lora.loraA.name] as tf.Tensor).data()) as Float32Array,
        gB: (await (grads[lora.loraB.name] as tf.Tensor).data()) as Float32Array,
        dx: (await dx.data()) as Float32Array,
      };
      tf.dispose([x, y, dx, ...Object.values(grads)]);
      lora.dispose();
      return result;
    };
    const cpu = await run('cpu');
    const gpu = await run('webgpu');
    for (const key of ['y', 'gA', 'gB', 'dx'] as const) {
      expect(relativeError(gpu[key], cpu[key]), key).toBeLessThan(1e-5);
    }
  });
});
