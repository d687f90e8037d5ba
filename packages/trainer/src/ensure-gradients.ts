import * as tf from '@tensorflow/tfjs-core';

// tfjs-core registers no gradients by itself: `@tensorflow/tfjs` does it by importing
// `@tensorflow/tfjs-core/dist/register_all_gradients`. That file exists only as extensionless
// ES modules: plain Node cannot load it, and bundlers/vitest may resolve it to a second copy of
// tfjs-core next to the CommonJS `main` the rest of the process uses (the engine is shared through
// a global, but the second copy's tensors lack chained ops: "Cannot read properties of null
// (reading 'cast')"). So the trainer registers the gradients its forward pass needs, through the
// one `@tensorflow/tfjs-core` import every module shares. The functions are tfjs-core 4.22's
// own (src/gradients/*_grad.ts, Apache-2.0), unchanged in behaviour; a kernel that already has
// a gradient (e.g. registered by `@tensorflow/tfjs` or tfjs-node) is left as is.

const { assertAndGetBroadcastShape, getReductionAxes, getUndoAxesPermutation } = tf.backend_util;

function reduceTo(res: tf.Tensor, shape: number[], outShape: number[]): tf.Tensor {
  const axes = getReductionAxes(shape, outShape);
  return tf.reshape(axes.length > 0 ? tf.sum(res, axes) : res, shape);
}

function binarySaved(saved: tf.Tensor[]): [tf.Tensor, tf.Tensor, number[]] {
  const [a, b] = saved as [tf.Tensor, tf.Tensor];
  return [a, b, assertAndGetBroadcastShape(a.shape, b.shape)];
}

type Attrs = Record<string, unknown>;

const GRADIENTS: tf.GradConfig[] = [
  {
    kernelName: 'Add',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved) => {
      const [a, b, out] = binarySaved(saved);
      return {
        a: () => reduceTo(dy as tf.Tensor, a.shape, out),
        b: () => reduceTo(dy as tf.Tensor, b.shape, out),
      };
    },
  },
  {
    kernelName: 'AddN',
    saveAllInputs: true,
    gradFunc: (dy, saved) => {
      const ders: Record<string, () => tf.Tensor> = {};
      saved.forEach((_, i) => {
        ders[i] = () => (dy as tf.Tensor).clone();
      });
      return ders;
    },
  },
  {
    kernelName: 'Sub',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved) => {
      const [a, b, out] = binarySaved(saved);
      return {
        a: () => reduceTo(dy as tf.Tensor, a.shape, out),
        b: () => tf.neg(reduceTo(dy as tf.Tensor, b.shape, out)),
      };
    },
  },
  {
    kernelName: 'Multiply',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved) => {
      const [a, b, out] = binarySaved(saved);
      const d = dy as tf.Tensor;
      return {
        a: () => reduceTo(tf.mul(d, tf.cast(b, 'float32')), a.shape, out),
        b: () => reduceTo(tf.mul(d, tf.cast(a, 'float32')), b.shape, out),
      };
    },
  },
  {
    kernelName: 'RealDiv',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved) => {
      const [a, b, out] = binarySaved(saved);
      const d = dy as tf.Tensor;
      return {
        a: () => reduceTo(tf.div(d, tf.cast(b, 'float32')), a.shape, out),
        b: () =>
          tf.neg(
            tf.div(
              reduceTo(tf.mul(d, tf.cast(a, 'float32')), b.shape, out),
              tf.cast(tf.square(b), 'float32'),
            ),
          ),
      };
    },
  },
  {
    kernelName: 'BatchMatMul',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved as [tf.Tensor, tf.Tensor];
      const d = dy as tf.Tensor;
      const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
      if (!transposeA && !transposeB)
        return { a: () => tf.matMul(d, b, false, true), b: () => tf.matMul(a, d, true, false) };
      if (!transposeA && transposeB)
        return { a: () => tf.matMul(d, b, false, false), b: () => tf.matMul(d, a, true, false) };
      if (transposeA && !transposeB)
        return { a: () => tf.matMul(b, d, false, true), b: () => tf.matMul(a, d, false, false) };
      return { a: () => tf.matMul(b, d, true, true), b: () => tf.matMul(d, a, true, true) };
    },
  },
  { kernelName: 'Cast', gradFunc: (dy) => ({ x: () => (dy as tf.Tensor).clone() }) },
  { kernelName: 'Neg', gradFunc: (dy) => ({ x: () => tf.neg(dy as tf.Tensor) }) },
  {
    kernelName: 'Concat',
    saveAllInputs: true,
    gradFunc: (dy, saved, attrs) => {
      const first = saved[0] as tf.Tensor;
      const axis = tf.util.parseAxisParam(
        (attrs as Attrs).axis as number,
        first.shape,
      )[0] as number;
      const parts = tf.split(
        dy as tf.Tensor,
        saved.map((t) => t.shape[axis] as number),
        axis,
      );
      const ders: Record<string, () => tf.Tensor> = {};
      parts.forEach((t, i) => {
        ders[i] = () => t;
      });
      return ders;
    },
  },
  {
    kernelName: 'SplitV',
    gradFunc: (dy, _saved, attrs) => ({
      x: () => tf.concat(dy as tf.Tensor[], (attrs as Attrs).axis as number),
    }),
  },
  {
    kernelName: 'Reshape',
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({
      x: () => tf.reshape(dy as tf.Tensor, (saved[0] as tf.Tensor).shape),
    }),
  },
  {
    kernelName: 'Transpose',
    gradFunc: (dy, _saved, attrs) => ({
      x: () =>
        tf.transpose(dy as tf.Tensor, getUndoAxesPermutation((attrs as Attrs).perm as number[])),
    }),
  },
  {
    kernelName: 'Slice',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const x = saved[0] as tf.Tensor;
      const { begin, size } = attrs as { begin: number | number[]; size: number | number[] };
      const [begin_, size_] = tf.slice_util.parseSliceParams(x, begin, size) as [
        number[],
        number[],
      ];
      const paddings: [number, number][] = [];
      for (let i = 0; i < (dy as tf.Tensor).rank; i++) {
        paddings.push([
          begin_[i] as number,
          (x.shape[i] as number) - (begin_[i] as number) - (size_[i] as number),
        ]);
      }
      return { x: () => tf.pad(dy as tf.Tensor, paddings) };
    },
  },
  {
    kernelName: 'Sum',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const x = saved[0] as tf.Tensor;
      const expanded = x.shape.slice();
      for (const axis of tf.util.parseAxisParam((attrs as Attrs).axis as number[], x.shape))
        expanded[axis] = 1;
      const derX = tf.mul(tf.reshape(dy as tf.Tensor, expanded), tf.ones(x.shape, 'float32'));
      return { x: () => derX };
    },
  },
  {
    kernelName: 'Mean',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const x = saved[0] as tf.Tensor;
      const axes = tf.util.parseAxisParam((attrs as Attrs).axis as number[], x.shape);
      const reduceShape = tf.backend_util.computeOutAndReduceShapes(x.shape, axes)[1];
      const reduceSize = tf.util.sizeFromShape(reduceShape);
      return {
        x: () => {
          const expanded = x.shape.slice();
          for (const axis of axes) expanded[axis] = 1;
          return tf.div(
            tf.mul(tf.reshape(dy as tf.Tensor, expanded), tf.ones(x.shape, 'float32')),
            reduceSize,
          );
        },
      };
    },
  },
  {
    kernelName: 'Square',
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({
      x: () => tf.mul(dy as tf.Tensor, tf.mul(tf.cast(saved[0] as tf.Tensor, 'float32'), 2)),
    }),
  },
  {
    kernelName: 'Rsqrt',
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({
      x: () => tf.neg(tf.div(dy as tf.Tensor, tf.mul(tf.pow(saved[0] as tf.Tensor, 1.5), 2))),
    }),
  },
  {
    kernelName: 'Sqrt',
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({
      x: () =>
        tf.div(dy as tf.Tensor, tf.mul(tf.sqrt(tf.cast(saved[0] as tf.Tensor, 'float32')), 2)),
    }),
  },
  {
    kernelName: 'Exp',
    outputsToSave: [true],
    gradFunc: (dy, saved) => ({ x: () => tf.mul(dy as tf.Tensor, saved[0] as tf.Tensor) }),
  },
  {
    kernelName: 'Log',
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({
      x: () => tf.div(dy as tf.Tensor, tf.cast(saved[0] as tf.Tensor, 'float32')),
    }),
  },
  {
    kernelName: 'Sigmoid',
    outputsToSave: [true],
    gradFunc: (dy, saved) => {
      const y = saved[0] as tf.Tensor;
      return { x: () => tf.mul(dy as tf.Tensor, tf.mul(y, tf.sub(tf.scalar(1), y))) };
    },
  },
  {
    kernelName: 'Softmax',
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const y = saved[0] as tf.Tensor;
      const dim = (attrs as Attrs).dim as number;
      const dyTimesY = tf.mul(dy as tf.Tensor, y);
      return { logits: () => tf.sub(dyTimesY, tf.mul(tf.sum(dyTimesY, [dim], true), y)) };
    },
  },
];

let registered = false;

/**
 * Makes sure tfjs-core can differentiate the trainer's forward pass (and LoRA layers): registers
 * tfjs-core's own gradient functions for the kernels it uses (Add, BatchMatMul, Softmax, Rsqrt,
 * …) unless a gradient is already registered, without importing a second copy of tfjs-core.
 * Idempotent and cheap; `train()` calls it. Call it yourself before `tf.variableGrads` on a
 * model when you do not import `@tensorflow/tfjs`.
 *
 * @example
 * ```ts
 * import { ensureGradients } from '@qlora/trainer';
 * ensureGradients();
 * const { grads } = tf.variableGrads(() => myLoss(model), trainableVariables(model));
 * ```
 */
export function ensureGradients(): void {
  if (registered) return;
  for (const config of GRADIENTS) {
    if (tf.getGradient(config.kernelName) === undefined) tf.registerGradient(config);
  }
  registered = true;
}
