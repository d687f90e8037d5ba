// The tiled WGSL matmul kernels against a float64 product computed here in plain JS and against
// tfjs's generic webgpu matMul on the same random inputs. Shapes cover partial tiles in every
// dimension. Bound: Frobenius relative error ≤ 2e-6 for K ≤ 1000 (f32 accumulation, another
// summation order than the generic path; both are measured against float64). Skipped without an
// adapter (Mesa lavapipe runs it on the CPU here).
import { dequantize4bit, quantize4bit } from '@qlora/nf4';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { randomFloats, relativeError } from './_test-helpers';
import {
  NF4_MATMUL_KERNEL,
  nf4TiledMatMul,
  type RightLayout,
  splitCount,
  TILED_MATMUL_KERNEL,
  tiledMatMul,
  useFusedWebgpuKernels,
} from './_webgpu-matmul';
import { hasWebgpu } from './_webgpu-probe';
import { DenseLinear } from './dense-linear';
import { LoraLinear } from './lora-linear';
import { Nf4Linear } from './nf4-linear';

const webgpu = await hasWebgpu();

/** A dense or NF4 (blocksize 64, double quant) `[out, inF]` projection of random weights. */
function randomProjection(
  kind: 'dense' | 'nf4',
  out: number,
  inF: number,
  seed: number,
): DenseLinear | Nf4Linear {
  const wData = randomFloats(out * inF, seed, 0.2);
  return kind === 'dense'
    ? new DenseLinear('p', tf.tensor2d(wData, [out, inF]))
    : new Nf4Linear(
        'p',
        quantize4bit(wData, { shape: [out, inF], blocksize: 64, doubleQuant: true }),
      );
}
const BOUND = 2e-6;

/** `a[M,K] · b` in float64, b as `[N,K]` (`'nk'`) or `[K,N]` (`'kn'`). */
function reference(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  layout: RightLayout,
): Float32Array {
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) {
        const bv = layout === 'nk' ? (b[j * k + p] as number) : (b[p * n + j] as number);
        sum += (a[i * k + p] as number) * bv;
      }
      out[i * n + j] = sum;
    }
  }
  return out;
}

const shapes: [number, number, number][] = [
  // [M, K, N]
  [128, 128, 128],
  [5, 16, 8],
  [130, 200, 136],
  [257, 64, 392],
  [33, 1000, 72],
];

describe.skipIf(!webgpu)('tiled WGSL matmul on webgpu', () => {
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  for (const layout of ['nk', 'kn'] as RightLayout[]) {
    for (const [m, k, n] of shapes) {
      it(`f32 ${layout} [${m}×${k}]·[${k}×${n}] is within ${BOUND} of float64, like tf.matMul`, async () => {
        await tf.setBackend('webgpu');
        const aData = randomFloats(m * k, m + k);
        const bData = randomFloats(n * k, n * 3 + k);
        const expected = reference(aData, bData, m, k, n, layout);
        const a = tf.tensor2d(aData, [m, k]);
        const b = tf.tensor2d(bData, layout === 'nk' ? [n, k] : [k, n]);
        const tiled = tiledMatMul(a, b, layout);
        const generic = tf.matMul(a, b, false, layout === 'nk');
        expect(tiled.shape).toEqual([m, n]);
        const tiledError = relativeError((await tiled.data()) as Float32Array, expected);
        const genericError = relativeError((await generic.data()) as Float32Array, expected);
        expect(tiledError).toBeLessThan(BOUND);
        expect(genericError).toBeLessThan(BOUND);
        tf.dispose([a, b, tiled, generic]);
      });
    }
  }

  for (const layout of ['nk', 'kn'] as RightLayout[]) {
    for (const [m, k, n, blocksize] of [
      [64, 128, 64, 64],
      [37, 256, 520, 64],
      [129, 72, 96, 32],
      [16, 512, 256, 128],
    ] as [number, number, number, number][]) {
      it(`NF4 ${layout} [${m}×${k}] with W ${layout === 'nk' ? `[${n}×${k}]` : `[${k}×${n}]`}, blocksize ${blocksize}: matches float64 on the dequantized weight`, async () => {
        await tf.setBackend('webgpu');
        const shape: [number, number] = layout === 'nk' ? [n, k] : [k, n];
        const q = quantize4bit(randomFloats(n * k, n + 7 * k, 0.3), {
          shape,
          blocksize,
          doubleQuant: true,
          quantType: 'nf4',
        });
        const w = dequantize4bit(q);
        const xData = randomFloats(m * k, m * 5 + k);
        const expected = reference(xData, w, m, k, n, layout);
        const layer = new Nf4Linear('p', q);
        const x = tf.tensor2d(xData, [m, k]);
        const table = tf.tensor1d(Array.from(q.state.code), 'float32');
        const y = nf4TiledMatMul(
          x,
          layer.packedWords,
          layer.absmax,
          table,
          shape,
          blocksize,
          layout,
        );
        expect(y.shape).toEqual([m, n]);
        expect(relativeError((await y.data()) as Float32Array, expected)).toBeLessThan(BOUND);
        tf.dispose([x, table, y]);
        layer.dispose();
      });
    }
  }

  // Few [M, N] tiles and a long K: the K range is split over workgroups and the slices summed
  // (the vocabulary head's dx). f32 accumulation over 8k terms: bound 1e-5.
  for (const layout of ['nk', 'kn'] as RightLayout[]) {
    for (const [m, k, n] of [
      [130, 8192, 64],
      [64, 6000, 8],
    ] as [number, number, number][]) {
      it(`split K: f32 ${layout} [${m}×${k}]·[${k}×${n}] in ${splitCount(m, n, k)} K ranges is within 1e-5 of float64`, async () => {
        await tf.setBackend('webgpu');
        expect(splitCount(m, n, k)).toBeGreaterThan(1);
        const aData = randomFloats(m * k, m + k);
        const bData = randomFloats(n * k, n * 3 + k);
        const a = tf.tensor2d(aData, [m, k]);
        const b = tf.tensor2d(bData, layout === 'nk' ? [n, k] : [k, n]);
        const tiled = tiledMatMul(a, b, layout);
        expect(tiled.shape).toEqual([m, n]);
        const expected = reference(aData, bData, m, k, n, layout);
        expect(relativeError((await tiled.data()) as Float32Array, expected)).toBeLessThan(1e-5);
        tf.dispose([a, b, tiled]);
      });
    }
    it(`split K: NF4 ${layout} [64×4096], W of 64 outputs, in ${splitCount(64, 64, 4096)} K ranges matches float64`, async () => {
      await tf.setBackend('webgpu');
      const [m, k, n] = [64, 4096, 64];
      const shape: [number, number] = layout === 'nk' ? [n, k] : [k, n];
      const q = quantize4bit(randomFloats(n * k, 11, 0.3), {
        shape,
        blocksize: 64,
        doubleQuant: true,
        quantType: 'nf4',
      });
      const xData = randomFloats(m * k, 12);
      const expected = reference(xData, dequantize4bit(q), m, k, n, layout);
      const layer = new Nf4Linear('p', q);
      const x = tf.tensor2d(xData, [m, k]);
      const table = tf.tensor1d(Array.from(q.state.code), 'float32');
      const before = tf.memory().numTensors;
      const y = nf4TiledMatMul(x, layer.packedWords, layer.absmax, table, shape, 64, layout);
      expect(tf.memory().numTensors).toBe(before + 1); // the [splits, M, N] slices are freed
      expect(relativeError((await y.data()) as Float32Array, expected)).toBeLessThan(1e-5);
      tf.dispose([x, table, y]);
      layer.dispose();
    });
  }

  it('splits only when the tiles cannot fill the GPU and K is long', () => {
    expect(splitCount(523, 2048, 128256)).toBe(3); // the 1B head's dx per loss chunk
    expect(splitCount(4096, 2048, 8192)).toBe(1); // a training projection: 512 tiles
    expect(splitCount(523, 128256, 2048)).toBe(1); // the head's logits
    expect(splitCount(64, 64, 1024)).toBe(1); // K too short to split
  });

  // The layers route through the kernels above: forward and dx of a LoRA-wrapped layer with the
  // kernels on must equal the generic path (kernels off) within the same bound.
  for (const kind of ['dense', 'nf4'] as const) {
    it(`${kind} layer forward and dx with the kernels on equal the generic path (kernels off)`, async () => {
      await tf.setBackend('webgpu');
      const [rows, inF, out] = [96, 136, 72];
      const layer = randomProjection(kind, out, inF, 11);
      const x = tf.tensor2d(randomFloats(rows * inF, 12), [rows, inF]);
      const dy = tf.tensor2d(randomFloats(rows * out, 13), [rows, out]);
      const run = async (on: boolean) => {
        useFusedWebgpuKernels(on);
        const { value, grads } = tf.valueAndGrads((input: tf.Tensor) =>
          tf.sum(tf.mul(layer.apply(input), dy)),
        )([x]);
        const y = layer.apply(x);
        const result = {
          y: (await y.data()) as Float32Array,
          dx: (await (grads[0] as tf.Tensor).data()) as Float32Array,
        };
        tf.dispose([value, y, ...grads]);
        return result;
      };
      try {
        useFusedWebgpuKernels(true);
        const profile = await tf.profile(() => layer.apply(x));
        expect(profile.kernelNames).toContain(
          kind === 'dense' ? TILED_MATMUL_KERNEL : NF4_MATMUL_KERNEL,
        );
        tf.dispose(profile.result as tf.Tensor);
        const fused = await run(true);
        const generic = await run(false);
        expect(relativeError(fused.y, generic.y)).toBeLessThan(BOUND);
        expect(relativeError(fused.dx, generic.dx)).toBeLessThan(BOUND);
      } finally {
        useFusedWebgpuKernels(true);
        tf.dispose([x, dy]);
        layer.dispose();
      }
    });
  }

  // The LoRA branch in the epilogue: y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ and its gradients for x, A and B
  // against tfjs's separate products (kernels off), B non-zero, a scale that is not 1.
  for (const kind of ['dense', 'nf4'] as const) {
    it(`LoRA over a ${kind} base: the fused epilogue's y, dx, dA, dB equal the separate products`, async () => {
      await tf.setBackend('webgpu');
      const [rows, inF, out] = [80, 136, 72];
      const base = randomProjection(kind, out, inF, 21);
      const lora = new LoraLinear(base, { r: 8, alpha: 24, seed: 5 });
      lora.loraB.assign(tf.tensor2d(randomFloats(out * 8, 22, 0.5), [out, 8]));
      const x = tf.tensor3d(randomFloats(rows * inF, 23), [2, rows / 2, inF]);
      const dy = tf.tensor3d(randomFloats(rows * out, 24), [2, rows / 2, out]);
      const run = async (on: boolean) => {
        useFusedWebgpuKernels(on);
        const profile = await tf.profile(() => lora.apply(x));
        const kernels = profile.kernelNames;
        tf.dispose(profile.result as tf.Tensor);
        const { value, grads } = tf.valueAndGrads(
          (input: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => {
            void a;
            void b;
            return tf.sum(tf.mul(lora.apply(input), dy));
          },
        )([x, lora.loraA, lora.loraB]);
        const y = lora.apply(x);
        const read = async (t: tf.Tensor) => (await t.data()) as Float32Array;
        const result = {
          kernels,
          y: await read(y),
          dx: await read(grads[0] as tf.Tensor),
          dA: await read(grads[1] as tf.Tensor),
          dB: await read(grads[2] as tf.Tensor),
        };
        tf.dispose([value, y, ...grads]);
        return result;
      };
      try {
        const fused = await run(true);
        const generic = await run(false);
        // one product for the whole layer: no separate branch output, scale or sum
        expect(fused.kernels).toContain(kind === 'dense' ? TILED_MATMUL_KERNEL : NF4_MATMUL_KERNEL);
        expect(fused.kernels).not.toContain('Add');
        expect(generic.kernels).toContain('Add');
        for (const key of ['y', 'dx', 'dA', 'dB'] as const) {
          expect(relativeError(fused[key], generic[key]), key).toBeLessThan(BOUND);
        }
      } finally {
        useFusedWebgpuKernels(true);
        tf.dispose([x, dy]);
        lora.dispose();
      }
    });
  }
});
