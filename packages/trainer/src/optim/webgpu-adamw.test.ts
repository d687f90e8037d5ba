// AdamW's 'webgpu-kernel' arithmetic and the one-dispatch-per-gradient norm, against torch's
// fixtures (tools/reference/adamw_ref.py) and against the typed loop. Runs on any WebGPU adapter
// (Mesa lavapipe here); skipped without one. webgpu cannot read synchronously in Node: every read
// is `await data()`.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { hasWebgpu } from '../_webgpu-probe';
import { initBackend } from '../backend';
import { compareF32 } from './_compare';
import { f32, optimFixture, shapeOf } from './_reference';
import { AdamW } from './adamw';
import { clipCoefficient, gradNormAsync } from './gradients';

const webgpu = await hasWebgpu();
const NAMES = ['a', 'b'] as const;

// Same bounds as 'tensor-ops': WGSL's fma matches torch's, but Vulkan allows 2.5 ulp for f32
// division and an inherited bound for sqrt, so a product can differ from torch's in the last bits.
const PARAM_REL = 2e-6;
const MOMENT_REL = 1e-6;

function tensorsOf(prefix: string): Record<string, tf.Tensor> {
  return Object.fromEntries(
    NAMES.map((k) => [k, tf.tensor(f32(`${prefix}/${k}`), shapeOf(`${prefix}/${k}`))]),
  );
}

function variablesOf(prefix: string): Record<string, tf.Variable> {
  return Object.fromEntries(
    NAMES.map((k) => [
      k,
      tf.variable(tf.tensor(f32(`${prefix}/${k}`), shapeOf(`${prefix}/${k}`)), true),
    ]),
  );
}

/** max |a − e| / max(|e|) over the tensor. */
function scaledError(actual: ArrayLike<number>, expected: Float32Array): number {
  let scale = 0;
  for (const e of expected) scale = Math.max(scale, Math.abs(e));
  return compareF32(actual, expected).maxAbs / scale;
}

describe.skipIf(!webgpu)("AdamW 'webgpu-kernel' on webgpu", () => {
  for (const c of optimFixture().cases.adamw.filter((x) => !x.amsgrad)) {
    it(`${c.name}: equals torch.optim.AdamW after 1 and 3 steps`, async () => {
      await initBackend('webgpu');
      const params = variablesOf('adamw/p0');
      const opt = new AdamW(params, {
        lr: c.lr,
        betas: c.betas,
        eps: c.eps,
        weightDecay: c.weight_decay,
      });
      expect(opt.arithmetic).toBe('webgpu-kernel'); // the default on webgpu
      const report: Record<string, number> = {};
      for (let s = 1; s <= 3; s++) {
        const grads = tensorsOf(`adamw/g${s}`);
        opt.step(grads);
        tf.dispose(Object.values(grads));
        if (s === 1) {
          for (const k of NAMES) {
            const actual = (await params[k]?.data()) as Float32Array;
            report[`p1/${k}`] = compareF32(actual, f32(`adamw/${c.name}/p1/${k}`)).maxRel;
          }
        }
      }
      await Promise.all(opt.stateTensors().map((t) => t.data()));
      const state = opt.stateDict();
      for (const k of NAMES) {
        const actual = (await params[k]?.data()) as Float32Array;
        report[`p3/${k}`] = compareF32(actual, f32(`adamw/${c.name}/p3/${k}`)).maxRel;
        report[`m3/${k}`] = scaledError(
          state.tensors[`${k}.exp_avg`]?.data as Float32Array,
          f32(`adamw/${c.name}/m3/${k}`),
        );
        report[`v3/${k}`] = scaledError(
          state.tensors[`${k}.exp_avg_sq`]?.data as Float32Array,
          f32(`adamw/${c.name}/v3/${k}`),
        );
        expect(state.steps[k]).toBe(3);
      }
      for (const [key, error] of Object.entries(report)) {
        expect(error, key).toBeLessThanOrEqual(key.startsWith('p') ? PARAM_REL : MOMENT_REL);
      }
      opt.dispose();
      tf.dispose(Object.values(params));
    });
  }

  it('gradScale equals the typed loop on pre-scaled gradients (clip_grad_norm_ then step)', async () => {
    const c = optimFixture().cases.adamw[0];
    if (c === undefined) throw new Error('no AdamW case');
    const scale = 0.37;
    const options = { lr: c.lr, weightDecay: c.weight_decay };
    // Reference: torch's order (grad.mul_(coef), then the update) in the typed loop on cpu.
    await initBackend('cpu');
    const expected = variablesOf('adamw/p0');
    const typed = new AdamW(expected, { ...options, arithmetic: 'torch-cpu' });
    for (let s = 1; s <= 2; s++) {
      const grads = tensorsOf(`adamw/g${s}`);
      const scaled = Object.fromEntries(
        Object.entries(grads).map(([k, g]) => [k, tf.mul(g, tf.scalar(scale))]),
      );
      typed.step(scaled);
      tf.dispose([...Object.values(grads), ...Object.values(scaled)]);
    }
    const want = Object.fromEntries(NAMES.map((k) => [k, expected[k]?.dataSync().slice()]));
    await initBackend('webgpu');
    const params = variablesOf('adamw/p0');
    const opt = new AdamW(params, options);
    for (let s = 1; s <= 2; s++) {
      const grads = tensorsOf(`adamw/g${s}`);
      opt.step(grads, { gradScale: scale });
      tf.dispose(Object.values(grads));
    }
    for (const k of NAMES) {
      const actual = (await params[k]?.data()) as Float32Array;
      expect(compareF32(actual, want[k] as Float32Array).maxRel, k).toBeLessThanOrEqual(PARAM_REL);
    }
    opt.dispose();
  });

  it('gradNormAsync equals clip_grad_norm_ total norm; NaN and Infinity propagate', async () => {
    await initBackend('webgpu');
    for (const c of optimFixture().cases.clip) {
      const grads = tensorsOf('clip/g');
      const norm = await gradNormAsync(grads);
      expect(Math.abs(norm - c.total_norm) / c.total_norm).toBeLessThan(1e-6);
      expect(clipCoefficient(c.max_norm, norm)).toBeCloseTo(
        Math.min(1, c.max_norm / (c.total_norm + 1e-6)),
        6,
      );
      tf.dispose(Object.values(grads));
    }
    const withNaN = { a: tf.tensor1d([1, Number.NaN, 2]), b: tf.tensor1d([3]) };
    const withInf = { a: tf.tensor1d([1, 2]), b: tf.tensor1d([Number.POSITIVE_INFINITY]) };
    expect(await gradNormAsync(withNaN)).toBeNaN();
    expect(await gradNormAsync(withInf)).toBe(Number.POSITIVE_INFINITY);
    expect(await gradNormAsync({})).toBe(0);
    tf.dispose([...Object.values(withNaN), ...Object.values(withInf)]);
  });

  it("refuses amsgrad, and 'webgpu-kernel' on another backend", async () => {
    await initBackend('webgpu');
    const w = tf.variable(tf.zeros([4]));
    expect(() => new AdamW({ w }, { amsgrad: true, arithmetic: 'webgpu-kernel' })).toThrow(
      /expected 'torch-cpu' or 'tensor-ops' with amsgrad, got 'webgpu-kernel'/,
    );
    expect(new AdamW({ w }, { amsgrad: true }).arithmetic).toBe('tensor-ops');
    const opt = new AdamW({ w }, { arithmetic: 'webgpu-kernel' });
    await initBackend('cpu');
    const g = tf.ones([4]);
    expect(() => opt.step({ w: g })).toThrow(/expected the webgpu backend, got cpu/);
    tf.dispose([w, g]);
  });
});
