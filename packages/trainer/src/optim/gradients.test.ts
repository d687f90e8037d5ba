import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../backend';
import { TrainerError } from '../errors';
import { compareF32 } from './_compare';
import { f32, optimFixture, shapeOf } from './_reference';
import {
  clipGradNorm,
  clipGradNormAsync,
  findNonFiniteGradients,
  findNonFiniteGradientsAsync,
  GradientAccumulator,
  NonFiniteGuard,
} from './gradients';

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`clipGradNorm equals torch clip_grad_norm_ on ${backend}`, () => {
    for (const c of optimFixture().cases.clip) {
      it(`max_norm ${c.max_norm}`, async () => {
        await initBackend(backend);
        const grads = Object.fromEntries(
          ['a', 'b'].map((k) => [k, tf.tensor(f32(`clip/g/${k}`), shapeOf(`clip/g/${k}`))]),
        );
        const { grads: clipped, totalNorm, clipCoef } = clipGradNorm(grads, c.max_norm);
        const viaAsync = await clipGradNormAsync(grads, c.max_norm);
        expect([viaAsync.totalNorm, viaAsync.clipCoef]).toEqual([totalNorm, clipCoef]);
        tf.dispose(Object.values(viaAsync.grads));
        // torch's float32 norm and ours sum in different orders
        expect(Math.abs(totalNorm - c.total_norm) / c.total_norm).toBeLessThanOrEqual(1e-6);
        expect(clipCoef).toBeLessThanOrEqual(1);
        for (const k of ['a', 'b']) {
          const r = compareF32(clipped[k]?.dataSync() as Float32Array, f32(`${c.tag}/g/${k}`));
          expect(r.maxRel).toBeLessThanOrEqual(2e-6);
        }
        tf.dispose([...Object.values(grads), ...Object.values(clipped)]);
      });
    }
  });
}

describe('non-finite gradients', () => {
  it('finds NaN and ±Inf per tensor on cpu and wasm', async () => {
    for (const backend of ['cpu', 'wasm'] as const) {
      await initBackend(backend);
      const grads = {
        ok: tf.tensor1d([1, -2, 3e38]),
        nan: tf.tensor1d([0, Number.NaN]),
        inf: tf.tensor2d([[1, Number.NEGATIVE_INFINITY]]),
      };
      expect(findNonFiniteGradients(grads)).toEqual(['nan', 'inf']);
      expect(await findNonFiniteGradientsAsync(grads)).toEqual(['nan', 'inf']);
      const { totalNorm, grads: clipped } = clipGradNorm(grads, 1);
      expect(Number.isFinite(totalNorm)).toBe(false);
      const viaAsync = await clipGradNormAsync(grads, 1);
      expect(Number.isFinite(viaAsync.totalNorm)).toBe(false);
      // A finite total norm means no non-finite element: one read per step suffices.
      const finite = { ok: grads.ok };
      const { totalNorm: finiteNorm, grads: finiteClipped } = await clipGradNormAsync(finite, 1);
      expect(Number.isFinite(finiteNorm)).toBe(false); // 3e38² overflows: searched, none found
      expect(await findNonFiniteGradientsAsync(finite)).toEqual([]);
      tf.dispose([
        ...Object.values(grads),
        ...Object.values(clipped),
        ...Object.values(viaAsync.grads),
        ...Object.values(finiteClipped),
      ]);
    }
  });

  it('skips and reports, then stops after too many consecutive skips', async () => {
    await initBackend('cpu');
    const guard = new NonFiniteGuard({ maxConsecutiveSkips: 2 });
    const good = { w: tf.tensor1d([1]) };
    const bad = { w: tf.tensor1d([Number.NaN]) };
    expect(guard.shouldStep(1, good)).toBe(true);
    expect(guard.shouldStep(2, bad)).toBe(false);
    expect(guard.shouldStep(3, good)).toBe(true);
    expect(guard.shouldStep(4, bad)).toBe(false);
    expect(() => guard.shouldStep(5, bad)).toThrow(TrainerError);
    expect(guard.skipped).toEqual([
      { step: 2, names: ['w'] },
      { step: 4, names: ['w'] },
      { step: 5, names: ['w'] },
    ]);
  });
});

describe('GradientAccumulator', () => {
  // A tiny linear model with per-token squared error; micro-batches of unequal token counts.
  const w = () => tf.variable(tf.tensor2d([[0.5, -1.25, 2]]), true, `acc_w_${Math.random()}`);
  const micro = [
    {
      x: [
        [1, 2, 3],
        [0, 1, 0],
      ],
      y: [1, 0],
    },
    { x: [[2, 0, -1]], y: [3] },
    {
      x: [
        [1, 1, 1],
        [3, 0, 0],
        [0, 0, 2],
      ],
      y: [0, 1, 2],
    },
    { x: [[-1, 2, 0.5]], y: [0.25] },
  ];
  const tokenLosses = (weight: tf.Variable, m: (typeof micro)[number]) =>
    tf.square(
      tf.sub(tf.reshape(tf.matMul(tf.tensor2d(m.x), weight, false, true), [-1]), tf.tensor1d(m.y)),
    );

  it('mean-per-micro-batch = ∇ mean over micro-batches of their mean loss (HF loss / GA)', async () => {
    await initBackend('cpu');
    const weight = w();
    const acc = new GradientAccumulator(4);
    for (const m of micro) {
      const { grads } = tf.variableGrads(
        () => tf.mean(tokenLosses(weight, m)) as tf.Scalar,
        [weight],
      );
      acc.add(grads);
      tf.dispose(Object.values(grads));
    }
    expect(acc.ready).toBe(true);
    const got = acc.take()[weight.name] as tf.Tensor;
    const { grads: whole } = tf.variableGrads(
      () =>
        tf.div(
          micro.map((m) => tf.mean(tokenLosses(weight, m))).reduce((a, b) => tf.add(a, b)),
          4,
        ) as tf.Scalar,
      [weight],
    );
    expect(
      compareF32(got.dataSync(), whole[weight.name]?.dataSync() as Float32Array).maxRel,
    ).toBeLessThan(1e-6);
    expect(acc.count).toBe(0);
  });

  it('token-weighted = ∇ (Σ token losses / Σ tokens) over the whole batch (HF num_items_in_batch)', async () => {
    await initBackend('cpu');
    const weight = w();
    const acc = new GradientAccumulator(4, 'token-weighted');
    for (const m of micro) {
      const { grads } = tf.variableGrads(
        () => tf.mean(tokenLosses(weight, m)) as tf.Scalar,
        [weight],
      );
      acc.add(grads, m.y.length);
      tf.dispose(Object.values(grads));
    }
    const got = acc.take()[weight.name] as tf.Tensor;
    const total = micro.reduce((s, m) => s + m.y.length, 0);
    const { grads: whole } = tf.variableGrads(
      () =>
        tf.div(
          micro.map((m) => tf.sum(tokenLosses(weight, m))).reduce((a, b) => tf.add(a, b)),
          total,
        ) as tf.Scalar,
      [weight],
    );
    expect(
      compareF32(got.dataSync(), whole[weight.name]?.dataSync() as Float32Array).maxRel,
    ).toBeLessThan(1e-6);
    expect(() => acc.add({ [weight.name]: tf.zeros([1, 3]) })).toThrow(/token-count|target-token/);
  });

  it('does not leak tensors', async () => {
    await initBackend('cpu');
    const before = tf.memory().numTensors;
    const acc = new GradientAccumulator(2);
    const g = { a: tf.ones([3]) };
    acc.add(g);
    acc.add(g);
    const taken = acc.take();
    tf.dispose([...Object.values(taken), ...Object.values(g)]);
    acc.add({ a: tf.tidy(() => tf.ones([3])) });
    acc.dispose();
    expect(tf.memory().numTensors).toBe(before + 1); // the last untracked tf.ones input
    expect(() => new GradientAccumulator(0)).toThrow(TrainerError);
  });
});
