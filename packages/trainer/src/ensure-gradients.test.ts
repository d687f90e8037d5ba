import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureGradients } from './ensure-gradients';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function rand(shape: number[], seed: number): tf.Tensor {
  return tf.randomUniform(shape, -1, 1, 'float32', seed);
}

/** Central differences in float32 of Σ(f(x)·w) against the analytic gradient. */
function checkGradient(f: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor, seed: number): number {
  const y0 = f(x);
  const w = rand(y0.shape, seed + 1);
  const loss = (t: tf.Tensor) => tf.sum(tf.mul(f(t), w)) as tf.Scalar;
  const analytic = tf.grad(loss)(x).dataSync();
  const values = x.dataSync().slice();
  const h = 1e-2;
  let worst = 0;
  for (let i = 0; i < Math.min(values.length, 12); i++) {
    const plus = values.slice();
    const minus = values.slice();
    plus[i] = (plus[i] as number) + h;
    minus[i] = (minus[i] as number) - h;
    const lp = loss(tf.tensor(plus, x.shape)).dataSync()[0] as number;
    const lm = loss(tf.tensor(minus, x.shape)).dataSync()[0] as number;
    const numeric = (lp - lm) / (2 * h);
    worst = Math.max(
      worst,
      Math.abs(numeric - (analytic[i] as number)) / Math.max(1, Math.abs(numeric)),
    );
  }
  return worst;
}

describe('ensureGradients', () => {
  it('registers the gradients of the training forward without importing a second tfjs-core', () => {
    ensureGradients();
    ensureGradients(); // idempotent
    for (const name of [
      'Add',
      'Sub',
      'Multiply',
      'RealDiv',
      'BatchMatMul',
      'Softmax',
      'Rsqrt',
      'Mean',
      'Sum',
      'Reshape',
      'Transpose',
      'SplitV',
      'Concat',
      'Slice',
      'Neg',
      'Sigmoid',
      'Square',
      'Cast',
      'Exp',
      'Log',
      'Sqrt',
      'AddN',
    ])
      expect(tf.getGradient(name), name).toBeDefined();
  });

  it.each([
    [
      'Add/Sub/Multiply/RealDiv with broadcasting',
      (x: tf.Tensor) =>
        tf.div(tf.sub(tf.mul(tf.add(x, tf.ones([1, 4])), x), 0.5), tf.add(tf.square(x), 2)),
    ],
    [
      'BatchMatMul (all transposes)',
      (x: tf.Tensor) => tf.add(tf.matMul(x, x, false, true), tf.matMul(x, x, true, false)),
    ],
    [
      'Softmax, Sigmoid, Exp, Log',
      (x: tf.Tensor) => tf.add(tf.softmax(x), tf.log(tf.add(tf.exp(x), tf.sigmoid(x)))),
    ],
    [
      'Rsqrt, Sqrt, Square, Mean (RMSNorm)',
      (x: tf.Tensor) =>
        tf.mul(
          x,
          tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), tf.sqrt(tf.add(tf.square(x), 1)))),
        ),
    ],
    [
      'Reshape, Transpose, SplitV, Concat, Neg, Slice, Sum',
      (x: tf.Tensor) => {
        const [a, b] = tf.split(tf.transpose(tf.reshape(x, [2, 2, 4]), [0, 2, 1]), [1, 1], 2);
        return tf.sum(
          tf.slice(tf.concat([tf.neg(b as tf.Tensor), a as tf.Tensor], 2), [0, 1, 0], [2, 2, 2]),
          1,
        );
      },
    ],
  ])('%s: analytic gradient = central differences', (_, f) => {
    ensureGradients();
    const x = rand([4, 4], 3);
    expect(checkGradient(f, x, 3)).toBeLessThan(2e-2);
  });
});
