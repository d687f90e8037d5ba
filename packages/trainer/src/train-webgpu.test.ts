// train() on the webgpu backend, which in Node cannot read tensors synchronously (tfjs-webgpu's
// dataSync needs OffscreenCanvas): every read of the training path must be asynchronous. Runs on
// any WebGPU adapter (Mesa lavapipe on the CPU here); skipped without one.
import '@tensorflow/tfjs-backend-cpu';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePath } from '@qlora/test-utils';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { hasWebgpu } from './_webgpu-probe';
import { loadModel } from './load-model';
import { type TrainConfig, train } from './train';

const webgpu = await hasWebgpu();

const sequences = [
  [1, 5, 9, 13, 2, 7, 11, 3],
  [1, 4, 8, 12, 16, 20, 6],
  [1, 30, 31, 2, 9, 14, 5, 21],
  [1, 3, 17, 19, 23, 29],
].map((ids) => ({ inputIds: ids, labels: ids.map((t, i) => (i < 2 ? -100 : t)) }));

const config: TrainConfig = {
  learningRate: 5e-3,
  maxSteps: 3,
  batchSize: 2,
  gradientAccumulationSteps: 1,
  maxGradNorm: 1,
  shuffle: false,
  padTokenId: 0,
  lora: { r: 4, alpha: 8, seed: 7 },
};

const runRoot = mkdtempSync(join(tmpdir(), 'qlora-train-webgpu-'));

async function run(backend: string, options: { nf4: boolean; checkpointing: boolean }) {
  await tf.setBackend(backend);
  const { model } = await loadModel(fixturePath('trainer', 'llama3-gqa-tied'), {
    ...(options.nf4 ? { quantize: { quantType: 'nf4', blocksize: 64, doubleQuant: true } } : {}),
  });
  try {
    // The dense run also evaluates and writes checkpoints (optimizer state, adapter).
    const runDir = options.nf4 ? undefined : join(runRoot, backend);
    const result = await train(
      model,
      sequences,
      { ...config, gradientCheckpointing: options.checkpointing, evalSteps: options.nf4 ? 0 : 3 },
      runDir ? { runDir, evalDataset: sequences.slice(0, 2) } : {},
    );
    if (runDir) expect(existsSync(join(runDir, 'adapter', 'adapter_model.safetensors'))).toBe(true);
    return result;
  } finally {
    model.dispose();
  }
}

function maxRelative(a: number[], b: number[]): number {
  return Math.max(...a.map((x, i) => Math.abs(x - (b[i] as number)) / Math.abs(b[i] as number)));
}

describe.skipIf(!webgpu)('train() on the webgpu backend', () => {
  afterAll(async () => {
    await tf.setBackend('cpu');
    rmSync(runRoot, { recursive: true, force: true });
  });

  for (const options of [
    { nf4: false, checkpointing: false },
    { nf4: true, checkpointing: true },
  ]) {
    it(`runs 3 steps with the cpu run's losses and grad norms (${options.nf4 ? 'NF4' : 'dense'} base, checkpointing ${options.checkpointing})`, async () => {
      const cpu = await run('cpu', options);
      const gpu = await run('webgpu', options);
      expect(gpu.losses).toHaveLength(3);
      expect(gpu.skippedSteps).toEqual([]);
      expect(maxRelative(gpu.losses, cpu.losses)).toBeLessThan(1e-4);
      expect(maxRelative(gpu.gradNorms, cpu.gradNorms)).toBeLessThan(1e-4);
      expect(gpu.evalLosses.length).toBe(cpu.evalLosses.length);
      for (const [i, [step, value]] of gpu.evalLosses.entries()) {
        const [cpuStep, cpuValue] = cpu.evalLosses[i] as [number, number];
        expect(step).toBe(cpuStep);
        expect(Math.abs(value - cpuValue) / cpuValue).toBeLessThan(1e-4);
      }
    }, 60_000);
  }

  it('skips a step whose gradients hold NaN (one norm read finds it) and goes on', async () => {
    await tf.setBackend('webgpu');
    const { model } = await loadModel(fixturePath('trainer', 'llama3-gqa-tied'));
    let saved: tf.Tensor | null = null;
    const result = await train(
      model,
      sequences,
      { ...config, maxSteps: 3 },
      {
        onProgress: (p) => {
          const a = model.layers[0]?.qProj as unknown as { loraA: tf.Variable };
          if (p.step === 1) {
            saved = a.loraA.clone();
            a.loraA.assign(tf.fill(a.loraA.shape, Number.NaN));
          }
          if (p.step === 2 && saved) {
            a.loraA.assign(saved);
            saved.dispose();
          }
        },
      },
    );
    expect(result.skippedSteps).toEqual([2]);
    expect(Number.isFinite(result.losses[2])).toBe(true);
    model.dispose();
  }, 60_000);
});
