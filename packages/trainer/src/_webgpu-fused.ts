import {
  fusedWebgpuKernelsActive,
  type WebgpuBackendLike,
  WGSL_WORKGROUP_ROW,
  wgslTreeReduce,
} from '@qlora/lora';
import * as tf from '@tensorflow/tfjs-core';

// A decoder layer in tfjs ops spends ~90 dispatches on elementwise chains: RMSNorm is 6 forward
// and ~12 backward, the rotary embedding of q and k (split heads, split halves, negate, concat,
// two multiplies, an add) ~16 forward and as many backward, SwiGLU 3 forward and ~8 backward,
// and gradient checkpointing runs the forward twice. Each dispatch costs host time in tfjs and
// Dawn (about half of a 1B training step on the H200). These programs do each of those in one
// dispatch per direction (two for SwiGLU's backward, one per input), on webgpu only; elsewhere,
// and with useFusedWebgpuKernels(false), the tfjs chains run unchanged.

const RMS_NORM = 'QloraRmsNorm';
const RMS_NORM_GRAD = 'QloraRmsNormGrad';
const ROPE = 'QloraRotarySplitHeads';
const ROPE_GRAD = 'QloraRotarySplitHeadsGrad';
const SWIGLU = 'QloraSwiglu';
const SWIGLU_GRAD = 'QloraSwigluGrad';

const ROW_THREADS = 256;
const ELEMENT_THREADS = 128;

// What tfjs-webgpu's runWebGPUProgram reads of a program with a flat output: `workgroups` groups
// of `threads`, `variableNames` bound in order after the output.
abstract class FlatProgram {
  readonly outputShape: number[];
  readonly dispatchLayout = { x: [0] };
  readonly workgroupSize: [number, number, number];
  dispatch: [number, number, number];

  constructor(
    readonly shaderKey: string,
    readonly variableNames: string[],
    count: number,
    workgroups: number,
    threads: number,
  ) {
    this.outputShape = [count];
    this.workgroupSize = [threads, 1, 1];
    this.dispatch = [workgroups, 1, 1];
  }

  abstract getUserCode(): string;
}

// One workgroup per row reduces Σx² (and, backward, Σg·x with g = w·dy) as a vec2, then
// forward: y = w · (x · r), r = 1/sqrt(mean(x²) + eps) (tfjs's order of products);
// backward: dx = r·g − x·r³·mean(g·x).
class RmsNormProgram extends FlatProgram {
  readonly uniforms = 'rows : i32, width : i32, eps : f32,';

  constructor(
    private readonly backward: boolean,
    rows: number,
    width: number,
  ) {
    super(
      backward ? 'qloraRmsNormGrad' : 'qloraRmsNorm',
      backward ? ['x', 'w', 'dy'] : ['x', 'w'],
      rows * width,
      rows,
      ROW_THREADS,
    );
  }

  getUserCode(): string {
    const dot = this.backward ? 'w[c] * dy[base + c] * v' : '0.0';
    const write = this.backward
      ? 'r * (w[c] * dy[base + c]) - x[base + c] * (r * r * r * (partial[0].y / width))'
      : 'w[c] * (x[base + c] * r)';
    return `
      var<workgroup> partial : array<vec2<f32>, ${ROW_THREADS}>;
      fn main(index : i32) {
        let row = ${WGSL_WORKGROUP_ROW};
        let lane = i32(localId.x);
        let base = row * uniforms.width;
        var sums = vec2<f32>(0.0);
        if (row < uniforms.rows) {
          for (var c = lane; c < uniforms.width; c += ${ROW_THREADS}) {
            let v = x[base + c];
            sums = sums + vec2<f32>(v * v, ${dot});
          }
        }
        partial[lane] = sums;${wgslTreeReduce('partial', ROW_THREADS, (a, b) => `${a} + ${b}`)}
        if (row < uniforms.rows) {
          let width = f32(uniforms.width);
          let r = inverseSqrt(partial[0].x / width + uniforms.eps);
          for (var c = lane; c < uniforms.width; c += ${ROW_THREADS}) {
            result[base + c] = ${write};
          }
        }
      }
    `;
  }
}

// The rotary embedding fused with the head split: x [B, T, heads·D] → [B, heads, T, D] with
// out = x·cos + rotate_half(x)·sin (cos, sin: [B, 1, T, D]); the backward maps dy back.
class RotaryProgram extends FlatProgram {
  readonly uniforms = 'batch : i32, steps : i32, heads : i32, dim : i32,';
  readonly size = true;

  constructor(
    private readonly backward: boolean,
    count: number,
  ) {
    super(
      backward ? 'qloraRotaryGrad' : 'qloraRotary',
      [backward ? 'dy' : 'x', 'cosine', 'sine'],
      count,
      Math.ceil(count / ELEMENT_THREADS),
      ELEMENT_THREADS,
    );
  }

  getUserCode(): string {
    // Forward: index over [B, H, T, D], reads x at [B, T, H, D]. Backward: index over
    // [B, T, H, D], reads dy at [B, H, T, D]:
    // dx[d] = dy[d]·cos[d] + (d < D/2 ? dy[d + D/2]·sin[d + D/2] : −dy[d − D/2]·sin[d − D/2]).
    const body = this.backward
      ? `
          let h = (index / D) % H;
          let t = (index / (D * H)) % T;
          let b = index / (D * H * T);
          let at = ((b * H + h) * T + t) * D;
          let table = (b * T + t) * D;
          let partner = select(d - half, d + half, d < half);
          let sign = select(-1.0, 1.0, d < half);
          let rotated = sign * (dy[at + partner] * sine[table + partner]);
          setOutputAtIndex(index, dy[at + d] * cosine[table + d] + rotated);`
      : `
          let t = (index / D) % T;
          let h = (index / (D * T)) % H;
          let b = index / (D * T * H);
          let at = ((b * T + t) * H + h) * D;
          let table = (b * T + t) * D;
          let partner = select(d - half, d + half, d < half);
          let rotated = select(1.0, -1.0, d < half) * x[at + partner];
          setOutputAtIndex(index, x[at + d] * cosine[table + d] + rotated * sine[table + d]);`;
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let D = uniforms.dim;
          let H = uniforms.heads;
          let T = uniforms.steps;
          let half = D / 2;
          let d = index % D;${body}
        }
      }
    `;
  }
}

// h = (g · σ(g)) · u (tfjs's sigmoid 1 / (1 + exp(−g))); backward dg = dh·u·σ(1 + g(1 − σ)),
// du = dh·g·σ, one program per input.
class SwigluProgram extends FlatProgram {
  readonly size = true;

  constructor(
    private readonly output: 'value' | 'dgate' | 'dup',
    count: number,
  ) {
    // Every bound input must be used: Dawn drops unused bindings from the pipeline's layout.
    super(
      `qloraSwiglu_${output}`,
      output === 'value'
        ? ['gate', 'up']
        : output === 'dgate'
          ? ['gate', 'up', 'dh']
          : ['gate', 'dh'],
      count,
      Math.ceil(count / ELEMENT_THREADS),
      ELEMENT_THREADS,
    );
  }

  getUserCode(): string {
    const value = {
      value: 'g * s * up[index]',
      dgate: 'dh[index] * up[index] * (s * (1.0 + g * (1.0 - s)))',
      dup: 'dh[index] * (g * s)',
    }[this.output];
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let g = gate[index];
          let s = 1.0 / (1.0 + exp(-1.0 * g));
          setOutputAtIndex(index, ${value});
        }
      }
    `;
  }
}

function registerOnce(): void {
  if (tf.getKernel(RMS_NORM, 'webgpu') !== undefined) return;
  const run = (
    name: string,
    build: (
      inputs: Record<string, tf.TensorInfo>,
      attrs: Record<string, unknown>,
    ) => {
      program: object;
      bound: tf.TensorInfo[];
      uniforms: { type: 'int32' | 'float32'; data: number[] }[];
    },
  ) =>
    tf.registerKernel({
      kernelName: name,
      backendName: 'webgpu',
      kernelFunc: ({ inputs, backend, attrs }) => {
        const { program, bound, uniforms } = build(
          inputs as Record<string, tf.TensorInfo>,
          attrs as unknown as Record<string, unknown>,
        );
        return (backend as unknown as WebgpuBackendLike).runWebGPUProgram(
          program,
          bound,
          'float32',
          uniforms,
        );
      },
    });
  const i32 = (value: number) => ({ type: 'int32' as const, data: [value] });
  const f32 = (value: number) => ({ type: 'float32' as const, data: [value] });
  const rmsUniforms = (rows: number, width: number, eps: number) => [
    i32(rows),
    i32(width),
    f32(eps),
  ];
  run(RMS_NORM, ({ x, w }, { rows, width, eps }) => ({
    program: new RmsNormProgram(false, rows as number, width as number),
    bound: [x as tf.TensorInfo, w as tf.TensorInfo],
    uniforms: rmsUniforms(rows as number, width as number, eps as number),
  }));
  run(RMS_NORM_GRAD, ({ x, w, dy }, { rows, width, eps }) => ({
    program: new RmsNormProgram(true, rows as number, width as number),
    bound: [x as tf.TensorInfo, w as tf.TensorInfo, dy as tf.TensorInfo],
    uniforms: rmsUniforms(rows as number, width as number, eps as number),
  }));
  const rotaryUniforms = (shape: Record<string, unknown>) =>
    [shape.batch, shape.steps, shape.heads, shape.dim].map((v) => i32(v as number));
  run(ROPE, ({ x, cosine, sine }, attrs) => ({
    program: new RotaryProgram(
      false,
      (x as tf.TensorInfo).shape.reduce((a, b) => a * b, 1),
    ),
    bound: [x, cosine, sine] as tf.TensorInfo[],
    uniforms: rotaryUniforms(attrs),
  }));
  run(ROPE_GRAD, ({ dy, cosine, sine }, attrs) => ({
    program: new RotaryProgram(
      true,
      (dy as tf.TensorInfo).shape.reduce((a, b) => a * b, 1),
    ),
    bound: [dy, cosine, sine] as tf.TensorInfo[],
    uniforms: rotaryUniforms(attrs),
  }));
  for (const output of ['value', 'dgate', 'dup'] as const) {
    run(output === 'value' ? SWIGLU : `${SWIGLU_GRAD}_${output}`, (inputs) => ({
      program: new SwigluProgram(
        output,
        (inputs.gate as tf.TensorInfo).shape.reduce((a, b) => a * b, 1),
      ),
      bound: (output === 'value'
        ? [inputs.gate, inputs.up]
        : output === 'dgate'
          ? [inputs.gate, inputs.up, inputs.dh]
          : [inputs.gate, inputs.dh]) as tf.TensorInfo[],
      uniforms: [],
    }));
  }
}

let elementwiseOn = true;

/** Benchmarks only: the fused elementwise programs off while the matmul kernels stay on. */
export function setFusedElementwise(on: boolean): void {
  elementwiseOn = on;
}

/** Whether the fused elementwise programs replace the tfjs chains here (webgpu, kernels on). */
export function useFusedElementwise(): boolean {
  return elementwiseOn && fusedWebgpuKernelsActive();
}

function runKernel(name: string, inputs: tf.NamedTensorMap, attrs: object): tf.Tensor {
  registerOnce();
  return tf.engine().runKernel(name, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}

// customGrad's backward runs after the forward's tidy: every tensor it reads goes through
// save(), which keeps it alive until then (closure references alone would be disposed).
type Save = (tensors: tf.Tensor[]) => void;

/**
 * RMSNorm of the last axis in one dispatch (backward: one), gradient for `x` only: the norm
 * weight is frozen in LoRA training (a trainable weight takes the tfjs path instead).
 */
export function fusedRmsNorm(x: tf.Tensor, weight: tf.Tensor1D, eps: number): tf.Tensor {
  const width = x.shape[x.rank - 1] as number;
  const rows = x.size / width;
  const op = tf.customGrad(((input: tf.Tensor, save: Save) => {
    save([input, weight]);
    return {
      value: tf.reshape(
        runKernel(RMS_NORM, { x: input, w: weight }, { rows, width, eps }),
        x.shape,
      ),
      gradFunc: (dy: tf.Tensor, [saved, w]: tf.Tensor[]) =>
        tf.reshape(
          runKernel(
            RMS_NORM_GRAD,
            { x: saved as tf.Tensor, w: w as tf.Tensor, dy },
            { rows, width, eps },
          ),
          x.shape,
        ),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(x);
}

/**
 * `applyRotary(splitHeads(x))` in one dispatch: `x` `[B, T, heads·D]` → `[B, heads, T, D]`
 * rotated by `cos`/`sin` (`[B, 1, T, D]`); the backward maps `dy` back in one dispatch.
 */
export function fusedRotarySplitHeads(
  x: tf.Tensor,
  cos: tf.Tensor4D,
  sin: tf.Tensor4D,
  heads: number,
): tf.Tensor4D {
  const [batch, steps] = x.shape as [number, number, number];
  const dim = cos.shape[3];
  const shape = { batch, steps, heads, dim };
  const op = tf.customGrad(((input: tf.Tensor, save: Save) => {
    save([cos, sin]);
    return {
      value: tf.reshape(runKernel(ROPE, { x: input, cosine: cos, sine: sin }, shape), [
        batch,
        heads,
        steps,
        dim,
      ]),
      gradFunc: (dy: tf.Tensor, [cosine, sine]: tf.Tensor[]) =>
        tf.reshape(
          runKernel(ROPE_GRAD, { dy, cosine: cosine as tf.Tensor, sine: sine as tf.Tensor }, shape),
          x.shape,
        ),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(x) as tf.Tensor4D;
}

/** `silu(gate) · up` in one dispatch; the backward is one dispatch per input. */
export function fusedSwiglu(gate: tf.Tensor, up: tf.Tensor): tf.Tensor {
  const op = tf.customGrad(((g: tf.Tensor, u: tf.Tensor, save: Save) => {
    save([g, u]);
    return {
      value: tf.reshape(runKernel(SWIGLU, { gate: g, up: u }, {}), g.shape),
      gradFunc: (dh: tf.Tensor, [savedGate, savedUp]: tf.Tensor[]) => [
        tf.reshape(
          runKernel(
            `${SWIGLU_GRAD}_dgate`,
            { gate: savedGate as tf.Tensor, up: savedUp as tf.Tensor, dh },
            {},
          ),
          g.shape,
        ),
        tf.reshape(
          runKernel(`${SWIGLU_GRAD}_dup`, { gate: savedGate as tf.Tensor, dh }, {}),
          u.shape,
        ),
      ],
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(gate, up);
}
