// The backend-generic dequantization (tf ops) on the wasm backend, whose int32 division runs in
// float32: the nibble extraction must stay exact there too.
import '@tensorflow/tfjs-backend-wasm';
import { dequantize4bit, quantize4bit } from '@qlora/nf4';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomFloats } from './_test-helpers';
import { Nf4Linear } from './nf4-linear';

beforeAll(async () => {
  await tf.setBackend('wasm');
  await tf.ready();
});

describe('Nf4Linear on the wasm backend', () => {
  const cases: [number, number, number, boolean, 'nf4' | 'fp4'][] = [
    [96, 100, 32, true, 'nf4'],
    [7, 13, 64, false, 'nf4'],
    [20, 30, 128, false, 'fp4'],
  ];
  for (const [out, inF, blocksize, doubleQuant, quantType] of cases)
    for (const codesPerWord of [8, 6] as const) {
      it(`dequantizes bit-exactly with @qlora/nf4 (${quantType} ${out}×${inF}, blocksize ${blocksize}, ${codesPerWord} codes/word)`, () => {
        expect(tf.getBackend()).toBe('wasm');
        const base = quantize4bit(randomFloats(out * inF, out + inF, 0.8), {
          shape: [out, inF],
          blocksize,
          doubleQuant,
          quantType,
        });
        // Random bytes: every word uses all 32 bits (its sign bit included).
        const noise = randomFloats(base.packed.length, out * inF);
        const packed = Uint8Array.from(noise, (v) => Math.floor((v + 1) * 128) & 255);
        packed[0] = 0xff;
        const q = { packed, state: base.state };
        const layer = new Nf4Linear('p', q, { codesPerWord });
        const w = layer.dequantize();
        const ours = w.dataSync() as Float32Array;
        const ref = dequantize4bit(q);
        expect(new Int32Array(ours.buffer, ours.byteOffset, ours.length)).toEqual(
          new Int32Array(ref.buffer),
        );
        w.dispose();
        layer.dispose();
      });
    }
});
