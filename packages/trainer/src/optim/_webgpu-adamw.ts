import { type WebgpuBackendLike, wgslTreeReduce } from '@qlora/lora';
import * as tf from '@tensorflow/tfjs-core';

// One AdamW step in TensorFlow.js ops is ~14 dispatches per parameter plus ~10 scalar uploads,
// and clipping adds 4 more dispatches per parameter: with LoRA on every projection of a 16-layer
// model (224 tensors) that is ~4,000 dispatches a step, each costing host time in tfjs-webgpu and
// Dawn. Here the update is three dispatches per parameter (new p, m and v, each recomputing what
// it needs from the old state, so the order does not matter) with torch's fused multiply-adds and
// the clipping factor folded in, and the squared norm one dispatch per gradient.

/** Name of the fused AdamW kernel (webgpu only). */
export const ADAMW_KERNEL = 'QloraAdamWUpdate';
/** Name of the running sum of squared gradient norms (webgpu only). */
export const SQUARED_NORM_KERNEL = 'QloraAccumulateSquaredNorm';

/** Which state tensor an {@link AdamWProgram} dispatch writes. */
export type AdamWOutput = 'param' | 'exp_avg' | 'exp_avg_sq';

/**
 * The float32 constants of one AdamW step, as torch's CPU kernel casts them (see
 * `AdamW.stepTyped`): `gradScale` multiplies the gradient first (clip_grad_norm_'s factor).
 */
export interface AdamWCoefficients {
  gradScale: number;
  decay: number;
  lerpCoeff: number;
  smallWeight: boolean;
  beta2: number;
  oneMinusBeta2: number;
  biasCorrection2Sqrt: number;
  negStepSize: number;
  eps: number;
}

const WORKGROUP = 256;

// WGSL helpers, one per value; a variant declares only those whose inputs it binds.
const GRAD_AT = `
      fn gradAt(i : i32) -> f32 { return g[i] * uniforms.gradScale; }`;
const EXP_AVG_AT = `
      fn expAvgAt(i : i32, gi : f32) -> f32 {
        // exp_avg.lerp_(grad, 1 − β1): fma(coeff, end − start, base)
        let mi = m[i];
        return fma(uniforms.lerpCoeff, gi - mi, select(gi, mi, uniforms.smallWeight != 0));
      }`;
const EXP_AVG_SQ_AT = `
      fn expAvgSqAt(i : i32, gi : f32) -> f32 {
        // exp_avg_sq.mul_(β2).addcmul_(g, g, value = 1 − β2)
        return fma(uniforms.oneMinusBeta2 * gi, gi, v[i] * uniforms.beta2);
      }`;
const PARAM_AT = `
      fn paramAt(i : i32) -> f32 {
        let gi = gradAt(i);
        let mi = expAvgAt(i, gi);
        let vi = expAvgSqAt(i, gi);
        let pi = p[i] * uniforms.decay;
        let denom = sqrt(vi) / uniforms.biasCorrection2Sqrt + uniforms.eps;
        // param.addcdiv_(exp_avg, denom, value = −step_size)
        return pi + (uniforms.negStepSize * mi) / denom;
      }`;

const VARIANTS: Record<AdamWOutput, { inputs: string[]; helpers: string[]; value: string }> = {
  param: {
    inputs: ['p', 'g', 'm', 'v'],
    helpers: [GRAD_AT, EXP_AVG_AT, EXP_AVG_SQ_AT, PARAM_AT],
    value: 'paramAt(index)',
  },
  exp_avg: {
    inputs: ['g', 'm'],
    helpers: [GRAD_AT, EXP_AVG_AT],
    value: 'expAvgAt(index, gradAt(index))',
  },
  exp_avg_sq: {
    inputs: ['g', 'v'],
    helpers: [GRAD_AT, EXP_AVG_SQ_AT],
    value: 'expAvgSqAt(index, gradAt(index))',
  },
};

/** One element per thread; writes the new parameter, first moment or second moment. */
export class AdamWProgram {
  readonly variableNames: string[];
  readonly uniforms =
    'gradScale : f32, decay : f32, lerpCoeff : f32, smallWeight : i32, beta2 : f32, oneMinusBeta2 : f32, biasCorrection2Sqrt : f32, negStepSize : f32, eps : f32,';
  readonly size = true;
  readonly workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  readonly outputShape: number[];
  readonly dispatchLayout = { x: [0] };
  readonly dispatch: [number, number, number];
  readonly shaderKey: string;
  private readonly output: AdamWOutput;

  constructor(count: number, output: AdamWOutput) {
    this.output = output;
    this.outputShape = [count];
    this.variableNames = VARIANTS[output].inputs;
    this.dispatch = [Math.ceil(count / WORKGROUP), 1, 1];
    this.shaderKey = `qloraAdamW_${output}`;
  }

  getUserCode(): string {
    const { helpers, value } = VARIANTS[this.output];
    return `
      ${helpers.join('\n')}
      fn main(index : i32) {
        if (index < uniforms.size) {
          setOutputAtIndex(index, ${value});
        }
      }
    `;
  }
}

/**
 * `acc + ‖g‖²` as `[1]`, where ‖g‖ = √(Σ g²) is rounded to f32 before it is squared (torch's
 * clip_grad_norm_ takes the norm of the per-tensor norms). One workgroup strides over g.
 */
export class SquaredNormProgram {
  readonly variableNames = ['g', 'acc'];
  readonly uniforms = 'count : i32,';
  readonly workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  readonly outputShape = [1];
  readonly dispatchLayout = { x: [0] };
  readonly dispatch: [number, number, number] = [1, 1, 1];
  readonly shaderKey = 'qloraSquaredNorm';

  getUserCode(): string {
    return `
      var<workgroup> partial : array<f32, ${WORKGROUP}>;
      fn main(index : i32) {
        let lane = i32(localIndex);
        var sum = 0.0;
        for (var i = lane; i < uniforms.count; i += ${WORKGROUP}) {
          let x = g[i];
          sum = fma(x, x, sum);
        }
        partial[lane] = sum;${wgslTreeReduce('partial', WORKGROUP, (a, b) => `${a} + ${b}`)}
        if (lane == 0) {
          let norm = sqrt(partial[0]);
          result[0] = fma(norm, norm, acc[0]);
        }
      }
    `;
  }
}

function registerOnce(): void {
  if (tf.getKernel(ADAMW_KERNEL, 'webgpu') !== undefined) return;
  tf.registerKernel({
    kernelName: ADAMW_KERNEL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { output, coefficients: c } = attrs as unknown as {
        output: AdamWOutput;
        coefficients: AdamWCoefficients;
      };
      const named = inputs as Record<string, tf.TensorInfo>;
      const bound = VARIANTS[output].inputs.map((name) => named[name] as tf.TensorInfo);
      const count = (named.g as tf.TensorInfo).shape.reduce((a, b) => a * b, 1);
      const f = (value: number) => ({ type: 'float32' as const, data: [value] });
      return (backend as unknown as WebgpuBackendLike).runWebGPUProgram(
        new AdamWProgram(count, output),
        bound,
        'float32',
        [
          f(c.gradScale),
          f(c.decay),
          f(c.lerpCoeff),
          { type: 'int32', data: [c.smallWeight ? 1 : 0] },
          f(c.beta2),
          f(c.oneMinusBeta2),
          f(c.biasCorrection2Sqrt),
          f(c.negStepSize),
          f(c.eps),
        ],
      );
    },
  });
  tf.registerKernel({
    kernelName: SQUARED_NORM_KERNEL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend }) => {
      const { g, acc } = inputs as Record<string, tf.TensorInfo>;
      const count = (g as tf.TensorInfo).shape.reduce((a, b) => a * b, 1);
      return (backend as unknown as WebgpuBackendLike).runWebGPUProgram(
        new SquaredNormProgram(),
        [g, acc] as tf.TensorInfo[],
        'float32',
        [{ type: 'int32', data: [count] }],
      );
    },
  });
}

/**
 * One AdamW update on webgpu: the new parameter, first and second moment (flat, as the inputs'
 * element order), each one dispatch. The caller assigns them.
 */
export function adamwUpdateWebgpu(
  param: tf.Tensor,
  grad: tf.Tensor,
  expAvg: tf.Tensor,
  expAvgSq: tf.Tensor,
  coefficients: AdamWCoefficients,
): { param: tf.Tensor; expAvg: tf.Tensor; expAvgSq: tf.Tensor } {
  registerOnce();
  const run = (output: AdamWOutput, inputs: Record<string, tf.Tensor>) =>
    tf.reshape(
      tf.engine().runKernel(ADAMW_KERNEL, inputs, {
        output,
        coefficients,
      } as unknown as tf.NamedAttrMap) as tf.Tensor,
      param.shape,
    );
  return {
    param: run('param', { p: param, g: grad, m: expAvg, v: expAvgSq }),
    expAvg: run('exp_avg', { g: grad, m: expAvg }),
    expAvgSq: run('exp_avg_sq', { g: grad, v: expAvgSq }),
  };
}

/**
 * `Σ ‖gᵢ‖²` over the gradients as a `[1]` tensor on webgpu, one dispatch per gradient (the
 * caller takes the square root: clip_grad_norm_'s total norm).
 */
export function squaredNormSumWebgpu(grads: readonly tf.Tensor[]): tf.Tensor {
  registerOnce();
  let acc: tf.Tensor = tf.zeros([1]);
  for (const g of grads) {
    const next = tf.engine().runKernel(SQUARED_NORM_KERNEL, { g, acc }) as tf.Tensor;
    acc.dispose();
    acc = next;
  }
  return acc;
}
