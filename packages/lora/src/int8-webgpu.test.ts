// W8A8 (issue 10): the row quantizer runs on any webgpu adapter (Mesa lavapipe here) and is
// checked against the JavaScript reference; the int8 subgroup-matrix product needs Dawn's
// experimental feature on an NVIDIA GPU, so its parity test runs only there (the GPU bench runs
// the same comparison on the H200: tools/gpu/gpu-bench.ts, stage `int8`).
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { int8ProductReference, quantizeRowsReference } from './_int8-reference';
import { randomFloats } from './_test-helpers';
import {
  installRawShaderHook,
  int8MatMul,
  int8MatMulSource,
  quantizeRowsInt8,
  rawWgslProgramCode,
  supportsInt8MatMul,
} from './_webgpu-int8';
import { hasWebgpu } from './_webgpu-probe';
import { DenseLinear } from './dense-linear';
import { LoraError } from './errors';
import { Int8Linear, useInt8Projections } from './int8-linear';

const webgpu = await hasWebgpu();

/** The int8 codes of `[rows, cols]` out of the packed words (`kWords` per row). */
function unpack(words: Int32Array, rows: number, cols: number, kWords: number): Int8Array {
  const bytes = new Int8Array(words.buffer, words.byteOffset, words.byteLength);
  const out = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[r * cols + c] = bytes[r * kWords * 4 + c] as number;
  }
  return out;
}

describe.skipIf(!webgpu)('int8 row quantization on the webgpu backend', () => {
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  for (const [rows, cols] of [
    [5, 64],
    [130, 100],
    [3, 7],
  ] as const) {
    it(`matches the reference codes and absmax, with zero padding ([${rows}, ${cols}])`, async () => {
      await tf.setBackend('webgpu');
      const values = randomFloats(rows * cols, rows * 31 + cols, 2);
      values.fill(0, 0, cols); // an all-zero row: absmax 0, codes 0
      values[cols] = -3; // a row whose absmax is negative: code -127
      const x = tf.tensor2d(values, [rows, cols]);
      const q = quantizeRowsInt8(x, 128);
      expect(q.rowsPadded).toBe(Math.ceil(rows / 128) * 128);
      expect(q.kWords).toBe(Math.ceil(cols / 64) * 16);
      const words = (await q.codes.data()) as Int32Array;
      const absmax = (await q.absmax.data()) as Float32Array;
      const expected = quantizeRowsReference(values, rows, cols);
      expect(unpack(words, rows, cols, q.kWords)).toEqual(expected.codes);
      expect(Array.from(absmax.subarray(0, rows))).toEqual(Array.from(expected.absmax));
      expect(Array.from(absmax.subarray(rows)).every((v) => v === 0)).toBe(true);
      // Padding columns and rows are zero.
      const bytes = new Int8Array(words.buffer, words.byteOffset, words.byteLength);
      for (let r = 0; r < q.rowsPadded; r++) {
        for (let c = r < rows ? cols : 0; c < q.kWords * 4; c++) {
          expect(bytes[r * q.kWords * 4 + c]).toBe(0);
        }
      }
      expect(expected.codes[cols]).toBe(-127);
      tf.dispose([x, q.codes, q.absmax]);
    });
  }

  it('refuses W8A8 layers without int8 subgroup matrices, naming the option that enables them', async () => {
    await tf.setBackend('webgpu');
    if (supportsInt8MatMul()) return; // an NVIDIA machine started with int8TensorCores
    const layer = new DenseLinear('q_proj', tf.zeros([4, 64]) as tf.Tensor2D);
    const model = {
      mapProjections: (fn: (l: DenseLinear, i: number, f: string) => unknown) => fn(layer, 0, 'q'),
    };
    expect(() => Int8Linear.fromLinear(layer)).toThrow(LoraError);
    expect(() => useInt8Projections(model as never)).toThrow(/int8TensorCores: true/);
    layer.dispose();
  });

  it.runIf(supportsInt8MatMulLater())(
    'multiplies like the integer reference on the int8 tensor cores',
    async () => {
      await tf.setBackend('webgpu');
      const [m, n, k] = [200, 136, 96];
      const xs = randomFloats(m * k, 5, 3);
      const ws = randomFloats(n * k, 6, 0.2);
      const x = quantizeRowsInt8(tf.tensor2d(xs, [m, k]), 128);
      const w = quantizeRowsInt8(tf.tensor2d(ws, [n, k]), 128);
      const y = (await int8MatMul(x, w).data()) as Float32Array;
      const xr = quantizeRowsReference(xs, m, k);
      const wr = quantizeRowsReference(ws, n, k);
      for (let row = 0; row < m; row += 7) {
        for (let col = 0; col < n; col += 5) {
          expect(y[row * n + col]).toBe(int8ProductReference(xr, wr, k, row, col));
        }
      }
    },
  );
});

function supportsInt8MatMulLater(): boolean {
  // Evaluated at collection time, before any test switched backends: webgpu must be current.
  return webgpu && tf.getBackend() === 'webgpu' && supportsInt8MatMul();
}

describe('raw WGSL programs (the int8 product enters tfjs this way)', () => {
  it('swap the marked source for the registered one and leave other shaders alone', () => {
    const compiled: string[] = [];
    const device = {
      features: new Set<string>(),
      createShaderModule: (descriptor: { code: string }) => compiled.push(descriptor.code),
    };
    installRawShaderHook(device);
    installRawShaderHook(device); // once per device
    const userCode = rawWgslProgramCode('test_raw_key', () => 'enable f16;\nfn _start() {}');
    device.createShaderModule({ code: `struct Prelude { a : f32 };\n${userCode}` });
    device.createShaderModule({ code: 'fn plain() {}' });
    expect(compiled).toEqual(['enable f16;\nfn _start() {}', 'fn plain() {}']);
    expect(() =>
      device.createShaderModule({ code: '// @qlora/raw-wgsl never_registered\n' }),
    ).toThrow("raw WGSL program: expected a registered source, got 'never_registered'");
  });

  it('give the int8 product its enables first and tfjs binding order', () => {
    const source = int8MatMulSource(2048, 512, 4);
    expect(source.split('\n').slice(0, 3)).toEqual([
      'enable subgroups;',
      'enable chromium_experimental_subgroup_matrix;',
      'diagnostic(off, chromium_experimental.subgroup_matrix_uniformity);',
    ]);
    const bindings = [...source.matchAll(/@binding\((\d)\) var<(\w+)(?:, (\w+))?> (\w+)/g)].map(
      (m) => [Number(m[1]), m[4]],
    );
    // tfjs binds the output first, then the inputs in variableNames order, then its uniforms.
    expect(bindings).toEqual([
      [0, 'result'],
      [1, 'xq'],
      [2, 'wq'],
      [3, 'ax'],
      [4, 'aw'],
      [5, 'uniforms'],
    ]);
    expect(source).toContain('fn _start(');
  });
});
