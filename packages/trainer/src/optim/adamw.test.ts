import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../backend';
import { TrainerError } from '../errors';
import { compareF32 } from './_compare';
import { f32, optimFixture, shapeOf } from './_reference';
import { AdamW } from './adamw';

const NAMES = ['a', 'b'] as const;

function freshParams(): Record<string, tf.Variable> {
  optimFixture();
  return Object.fromEntries(
    NAMES.map((k) => [
      k,
      tf.variable(
        tf.tensor(f32(`adamw/p0/${k}`), shapeOf(`adamw/p0/${k}`)),
        true,
        `adamw_${k}_${Math.random()}`,
      ),
    ]),
  );
}

function gradsOf(step: number): Record<string, tf.Tensor> {
  return Object.fromEntries(
    NAMES.map((k) => [k, tf.tensor(f32(`adamw/g${step}/${k}`), shapeOf(`adamw/g${step}/${k}`))]),
  );
}

// 'torch-cpu' arithmetic reproduces torch's fused multiply-adds: bit-equal, tolerance 0.
// 'tensor-ops' rounds each product: moments that nearly cancel (m = 0.9·m + 0.1·g) then differ
// by a few ulps of their inputs, so their error is bounded relative to the tensor's largest value.
const TOLERANCE = {
  'torch-cpu': { param: 0, moment: 0 },
  'tensor-ops': { param: 2e-6, moment: 1e-6 },
} as const;

const RUNS = [
  ['cpu', 'torch-cpu'],
  ['wasm', 'torch-cpu'],
  ['cpu', 'tensor-ops'],
  ['wasm', 'tensor-ops'],
] as const;

/** max |a − e| / max(|e|) over the tensor (0 when bit-equal). */
function scaledError(actual: ArrayLike<number>, expected: Float32Array): number {
  let scale = 0;
  for (const e of expected) scale = Math.max(scale, Math.abs(e));
  return compareF32(actual, expected).maxAbs / scale;
}

for (const [backend, arithmetic] of RUNS) {
  const PARAM_REL = TOLERANCE[arithmetic].param;
  const MOMENT_REL = TOLERANCE[arithmetic].moment;
  describe(`AdamW (${arithmetic}) equals torch.optim.AdamW(foreach=False) on ${backend}`, () => {
    for (const c of optimFixture().cases.adamw) {
      it(`${c.name}: 1 and 3 steps`, async () => {
        await initBackend(backend);
        const params = freshParams();
        const opt = new AdamW(params, {
          lr: c.lr,
          betas: c.betas,
          eps: c.eps,
          weightDecay: c.weight_decay,
          amsgrad: c.amsgrad,
          arithmetic,
        });
        const report: Record<string, number> = {};
        for (let s = 1; s <= 3; s++) {
          const grads = gradsOf(s);
          opt.step(grads);
          tf.dispose(Object.values(grads));
          if (s === 1) {
            for (const k of NAMES) {
              const r = compareF32(
                params[k]?.dataSync() as Float32Array,
                f32(`adamw/${c.name}/p1/${k}`),
              );
              report[`p1/${k}`] = r.maxRel;
            }
          }
        }
        const state = opt.stateDict();
        for (const k of NAMES) {
          const p = compareF32(
            params[k]?.dataSync() as Float32Array,
            f32(`adamw/${c.name}/p3/${k}`),
          );
          report[`p3/${k}`] = p.maxRel;
          for (const [key, fixture] of [
            ['exp_avg', 'm3'],
            ['exp_avg_sq', 'v3'],
            ...(c.amsgrad ? [['max_exp_avg_sq', 'vmax3']] : []),
          ] as const) {
            report[`${fixture}/${k}`] = scaledError(
              state.tensors[`${k}.${key}`]?.data as Float32Array,
              f32(`adamw/${c.name}/${fixture}/${k}`),
            );
          }
          expect(state.steps[k]).toBe(3);
        }
        for (const [key, error] of Object.entries(report)) {
          const bound = key.startsWith('p') ? PARAM_REL : MOMENT_REL;
          expect(error, key).toBeLessThanOrEqual(bound);
        }
        opt.dispose();
        tf.dispose(Object.values(params));
      });
    }
  });
}

describe('AdamW state dict', () => {
  it('resuming from stateDict continues bit-identically', async () => {
    await initBackend('cpu');
    const c = optimFixture().cases.adamw[0];
    if (c === undefined) throw new Error('no case');
    const options = { lr: c.lr, weightDecay: c.weight_decay };
    const straight = freshParams();
    const a = new AdamW(straight, options);
    for (let s = 1; s <= 3; s++) a.step(gradsOf(s));

    const resumedParams = freshParams();
    const b = new AdamW(resumedParams, options);
    b.step(gradsOf(1));
    const saved = b.stateDict();
    const savedParams = Object.fromEntries(
      NAMES.map((k) => [k, resumedParams[k]?.dataSync().slice()]),
    );
    b.dispose();
    const c2 = new AdamW(resumedParams, options);
    for (const k of NAMES)
      resumedParams[k]?.assign(tf.tensor(savedParams[k] as Float32Array, resumedParams[k]?.shape));
    c2.loadStateDict(saved);
    c2.step(gradsOf(2));
    c2.step(gradsOf(3));
    for (const k of NAMES) {
      expect(resumedParams[k]?.dataSync()).toEqual(straight[k]?.dataSync());
    }
    expect(c2.stateDict()).toEqual(a.stateDict());
    expect(a.stateBytes()).toBe(8 * (35 + 300));
  });

  it('rejects unknown names, wrong shapes and bad hyperparameters', async () => {
    await initBackend('cpu');
    const w = tf.variable(tf.zeros([2]));
    expect(() => new AdamW({ w }, { lr: -1 })).toThrow(TrainerError);
    expect(() => new AdamW({ w }, { betas: [1, 0.9] })).toThrow(/beta/);
    const opt = new AdamW({ w });
    expect(() => opt.step({ x: tf.zeros([2]) })).toThrow(/Unknown parameter "x"/);
    expect(() => opt.step({ w: tf.zeros([3]) })).toThrow(/expected float32 \[2\]/);
    opt.step({ w: tf.ones([2]) });
    expect(() => opt.loadStateDict({ kind: 'adamw8bit', steps: {}, tensors: {} })).toThrow(/kind/);
  });
});
