import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../backend';
import { compareF32 } from './_compare';
import { f32, optimFixture, shapeOf, u8 } from './_reference';
import { AdamW } from './adamw';
import { AdamW8bit } from './adamw-8bit';

const NAMES = ['big', 'small'] as const;

function freshParams(): Record<string, tf.Variable> {
  optimFixture();
  return Object.fromEntries(
    NAMES.map((k) => [
      k,
      tf.variable(tf.tensor(f32(`adamw8bit/p0/${k}`), shapeOf(`adamw8bit/p0/${k}`))),
    ]),
  );
}

function gradsOf(step: number): Record<string, tf.Tensor> {
  return Object.fromEntries(
    NAMES.map((k) => [
      k,
      tf.tensor(f32(`adamw8bit/g${step}/${k}`), shapeOf(`adamw8bit/g${step}/${k}`)),
    ]),
  );
}

/** Codes that differ from bitsandbytes' (a fused multiply-add emulated with a double rounding). */
function codeMismatches(actual: Uint8Array, expected: Uint8Array): number {
  let count = 0;
  for (let i = 0; i < expected.length; i++) if (actual[i] !== expected[i]) count++;
  return count;
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`AdamW8bit equals bitsandbytes.optim.AdamW8bit (CPU pure-PyTorch kernel) on ${backend}`, () => {
    for (const c of optimFixture().cases.adamw8bit) {
      it(`${c.name}: steps ${c.record.join(', ')}`, async () => {
        await initBackend(backend);
        const params = freshParams();
        const opt = new AdamW8bit(params, { lr: c.lr, weightDecay: c.weight_decay });
        for (let s = 1; s <= c.steps; s++) {
          const grads = gradsOf(s);
          opt.step(grads);
          tf.dispose(Object.values(grads));
          if (!c.record.includes(s)) continue;
          const tag = `adamw8bit/${c.name}/step${s}`;
          const state = opt.stateDict();
          const report = {
            pBig: compareF32(params.big?.dataSync() as Float32Array, f32(`${tag}/p/big`)).unequal,
            codes1: codeMismatches(
              state.tensors['big.state1']?.data as Uint8Array,
              u8(`${tag}/state1/big`),
            ),
            codes2: codeMismatches(
              state.tensors['big.state2']?.data as Uint8Array,
              u8(`${tag}/state2/big`),
            ),
            absmax1: compareF32(
              state.tensors['big.absmax1']?.data as Float32Array,
              f32(`${tag}/absmax1/big`),
            ).unequal,
            absmax2: compareF32(
              state.tensors['big.absmax2']?.data as Float32Array,
              f32(`${tag}/absmax2/big`),
            ).unequal,
            pSmall: compareF32(params.small?.dataSync() as Float32Array, f32(`${tag}/p/small`))
              .unequal,
            m32: compareF32(
              state.tensors['small.state1']?.data as Float32Array,
              f32(`${tag}/state1/small`),
            ).unequal,
            v32: compareF32(
              state.tensors['small.state2']?.data as Float32Array,
              f32(`${tag}/state2/small`),
            ).unequal,
          };
          expect(report).toEqual({
            pBig: 0,
            codes1: 0,
            codes2: 0,
            absmax1: 0,
            absmax2: 0,
            pSmall: 0,
            m32: 0,
            v32: 0,
          });
          expect(state.tensors['big.state1']?.dtype).toBe('U8');
          expect(state.tensors['small.state1']?.dtype).toBe('F32');
        }
        opt.dispose();
        tf.dispose(Object.values(params));
      });
    }
  });
}

describe('AdamW8bit state', () => {
  it('resumes bit-identically from its state dict', async () => {
    await initBackend('cpu');
    const straightParams = freshParams();
    const straight = new AdamW8bit(straightParams);
    for (let s = 1; s <= 3; s++) straight.step(gradsOf(s));

    const params = freshParams();
    const first = new AdamW8bit(params);
    first.step(gradsOf(1));
    const saved = first.stateDict();
    first.dispose();
    const resumed = new AdamW8bit(params);
    resumed.loadStateDict(saved);
    resumed.step(gradsOf(2));
    resumed.step(gradsOf(3));
    expect(params.big?.dataSync()).toEqual(straightParams.big?.dataSync());
    expect(resumed.stateDict()).toEqual(straight.stateDict());
  });

  it('holds ≈ 2 bytes per element instead of 8 (tf.memory)', async () => {
    await initBackend('cpu');
    const n = 1 << 20;
    const measure = (make: (p: Record<string, tf.Variable>) => AdamW | AdamW8bit) => {
      const w = tf.variable(tf.randomNormal([n], 0, 1, 'float32', 7));
      const g = tf.randomNormal([n], 0, 1, 'float32', 8);
      const opt = make({ w });
      const before = tf.memory().numBytes;
      opt.step({ w: g });
      const bytes = tf.memory().numBytes - before;
      expect(opt.stateBytes()).toBe(bytes);
      opt.dispose();
      tf.dispose([w, g]);
      return bytes;
    };
    const full = measure((p) => new AdamW(p));
    const eight = measure((p) => new AdamW8bit(p));
    console.log(
      `optimizer state for ${n} params: AdamW ${full} B, AdamW8bit ${eight} B, ratio ${(full / eight).toFixed(3)}`,
    );
    expect(full).toBe(8 * n);
    expect(eight).toBe(2 * n + 2 * 4 * (n / 256));
  });
});
