import '@tensorflow/tfjs-backend-cpu';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { injectLora } from '@qlora/lora';
import { loadAdapter } from '@qlora/lora/node';
import { parseSafetensors, toFloat32 } from '@qlora/safetensors';
import { fixturePath, sharedDataPath } from '@qlora/test-utils';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORY_PAIRS } from './_stories-text';
import { TrainerError } from './errors';
import { convertLlama2c } from './llama2c';
import { loadModel } from './load-model';
import { causalLmLoss } from './loss';
import { TRAIN_PRESETS, trainPreset } from './presets';
import { readStepLog } from './run/step-log';
import type { TrainProgress } from './train';
import { train } from './train';

interface TrainReference {
  config: { lr: number; weight_decay: number; warmup_steps: number; max_steps: number };
  sequences: { input_ids: number[]; labels: number[] }[];
  losses: number[];
  grad_norms: number[];
  lrs: number[];
}

const dir = fixturePath('trainer', 'train');
const reference = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as TrainReference;

function readAdapter(path: string): Record<string, Float32Array> {
  const bytes = readFileSync(path);
  const { tensors } = parseSafetensors(
    new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
  );
  return Object.fromEntries(Object.entries(tensors).map(([k, v]) => [k, toFloat32(v)]));
}

let runDir = '';
beforeAll(async () => {
  await tf.setBackend('cpu');
  runDir = mkdtempSync(join(tmpdir(), 'qlora-train-'));
});
afterAll(() => rmSync(runDir, { recursive: true, force: true }));

describe('train() against PyTorch + PEFT (tools/reference/train_ref.py)', () => {
  it.each([false, true])(
    'matches the per-step losses, grad norms, learning rates and final adapter of 20 steps (gradient checkpointing %s)',
    async (gradientCheckpointing) => {
      const { model } = await loadModel(fixturePath('trainer', 'llama3-gqa-tied'));
      await loadAdapter(model, join(dir, 'initial_adapter'));
      const out = join(runDir, `parity-${gradientCheckpointing}`);
      const result = await train(
        model,
        reference.sequences.map((s) => ({ inputIds: s.input_ids, labels: s.labels })),
        {
          learningRate: reference.config.lr,
          weightDecay: reference.config.weight_decay,
          schedule: 'linear',
          warmupSteps: reference.config.warmup_steps,
          maxSteps: reference.config.max_steps,
          batchSize: 2,
          gradientAccumulationSteps: 2,
          maxGradNorm: 1,
          shuffle: false,
          padTokenId: 0,
          gradientCheckpointing,
        },
        { runDir: out },
      );
      const lossErrors = result.losses.map(
        (l, i) => Math.abs(l - (reference.losses[i] as number)) / (reference.losses[i] as number),
      );
      const normErrors = result.gradNorms.map(
        (n, i) =>
          Math.abs(n - (reference.grad_norms[i] as number)) / (reference.grad_norms[i] as number),
      );
      expect(result.losses).toHaveLength(20);
      expect(Math.max(...lossErrors)).toBeLessThan(1e-5);
      expect(Math.max(...normErrors)).toBeLessThan(1e-4);
      const logged = readStepLog(join(out, 'steps.jsonl')).records;
      expect(logged.map((r) => r.lr)).toEqual(reference.lrs);
      const ours = readAdapter(join(out, 'adapter', 'adapter_model.safetensors'));
      const theirs = readAdapter(join(dir, 'final_adapter', 'adapter_model.safetensors'));
      expect(Object.keys(ours).sort()).toEqual(Object.keys(theirs).sort());
      let maxDiff = 0;
      let maxRef = 0;
      for (const [name, expected] of Object.entries(theirs)) {
        const actual = ours[name] as Float32Array;
        for (let i = 0; i < expected.length; i++) {
          maxDiff = Math.max(maxDiff, Math.abs((actual[i] as number) - (expected[i] as number)));
          maxRef = Math.max(maxRef, Math.abs(expected[i] as number));
        }
      }
      console.log('parity', {
        maxLossRel: Math.max(...lossErrors),
        maxNormRel: Math.max(...normErrors),
        adapterRel: maxDiff / maxRef,
      });
      expect(maxDiff / maxRef).toBeLessThan(1e-4);
      model.dispose();
    },
  );
});

describe('causalLmLoss', () => {
  it('gives the reference step-1 loss: Σ token losses of the window / its target tokens', async () => {
    const { model } = await loadModel(fixturePath('trainer', 'llama3-gqa-tied'));
    await loadAdapter(model, join(dir, 'initial_adapter'));
    // Step 1 covers the first 4 sequences (batch 2 × accumulation 2); no padding is needed
    // when each sequence goes alone through model.forward (the inference path).
    let sum = 0;
    let count = 0;
    for (const s of reference.sequences.slice(0, 4)) {
      const logits = model.forward([s.input_ids]);
      const loss = causalLmLoss(logits, [s.labels], { reduction: 'sum' });
      sum += loss.dataSync()[0] as number;
      count += s.labels.slice(1).filter((l) => l !== -100).length;
      tf.dispose([logits, loss]);
    }
    expect(
      Math.abs(sum / count - (reference.losses[0] as number)) / (reference.losses[0] as number),
    ).toBeLessThan(1e-6);
    const mean = causalLmLoss(tf.zeros([1, 3, 4]) as tf.Tensor3D, [[-100, 1, 2]]);
    expect(mean.dataSync()[0]).toBeCloseTo(Math.log(4), 6);
    mean.dispose();
    model.dispose();
  });
});

describe('stories260K', () => {
  let modelDir = '';
  beforeAll(async () => {
    modelDir = join(runDir, 'stories260K');
    await convertLlama2c(
      sharedDataPath('models', 'stories260K', 'stories260K.bin'),
      sharedDataPath('models', 'stories260K', 'tok512.bin'),
      modelDir,
    );
  });

  it('fine-tuned with LoRA on a few sentences: the loss falls and the eval loss follows', async () => {
    const { model, tokenizer } = await loadModel(modelDir);
    if (!tokenizer) throw new Error('no tokenizer');
    const progress: TrainProgress[] = [];
    const out = join(runDir, 'stories');
    const result = await train(
      model,
      { records: STORY_PAIRS, tokenizer },
      {
        lora: { r: 8, alpha: 16, seed: 1 },
        learningRate: 1e-2,
        batchSize: 4,
        maxSteps: 6,
        evalSteps: 3,
        seed: 1,
      },
      {
        runDir: out,
        evalDataset: { records: STORY_PAIRS, tokenizer },
        onProgress: (p) => progress.push(p),
      },
    );
    const first = result.losses[0] as number;
    const last = result.losses.at(-1) as number;
    console.log(
      'stories260K losses',
      result.losses.map((l) => l.toFixed(4)).join(' '),
      'eval',
      result.evalLosses,
    );
    expect(last).toBeLessThan(0.6 * first);
    expect(result.evalLosses.map(([s]) => s)).toEqual([3, 6]);
    expect((result.evalLosses[1] as [number, number])[1]).toBeLessThan(first);
    const p = progress.at(-1) as TrainProgress;
    expect(p).toMatchObject({ step: 6, totalSteps: 6, skipped: false });
    expect(p.tokensPerSecond).toBeGreaterThan(0);
    expect(p.etaMs).toBe(0);
    const log = readStepLog(join(out, 'steps.jsonl')).records;
    expect(log.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const key of [
      'loss',
      'lr',
      'grad_norm',
      'tokens_per_second',
      'memory_bytes',
      'elapsed_ms',
    ])
      expect(typeof log[0]?.[key]).toBe('number');
    expect(log[2]?.eval_loss).toBeCloseTo((result.evalLosses[0] as [number, number])[1], 10);
    model.dispose();
  });

  it('our adapter scores the text as PEFT scores it after PeftModel.from_pretrained', async () => {
    // stories-adapter/ was saved by train() (test/stories-pre-run.ts); tools/reference/train_ref.py
    // loaded it with PeftModel.from_pretrained over the same converted folder (stories-peft.json).
    const { model } = await loadModel(modelDir);
    await loadAdapter(model, join(dir, 'stories-adapter'));
    const text = JSON.parse(readFileSync(join(dir, 'stories-text.json'), 'utf8')) as {
      sequences: { input_ids: number[]; labels: number[] }[];
    };
    const peft = JSON.parse(readFileSync(join(dir, 'stories-peft.json'), 'utf8')) as {
      peft_tuned_loss: number;
      peft_base_loss: number;
    };
    let sum = 0;
    let count = 0;
    for (const s of text.sequences) {
      const logits = model.forward([s.input_ids]);
      const loss = causalLmLoss(logits, [s.labels], { reduction: 'sum' });
      sum += loss.dataSync()[0] as number;
      count += s.labels.slice(1).filter((l) => l !== -100).length;
      tf.dispose([logits, loss]);
    }
    expect(Math.abs(sum / count - peft.peft_tuned_loss) / peft.peft_tuned_loss).toBeLessThan(1e-5);
    expect(peft.peft_tuned_loss).toBeLessThan(0.2 * peft.peft_base_loss);
    model.dispose();
  });
});

describe('NaN/Inf guard', () => {
  const data = reference.sequences.map((s) => ({ inputIds: s.input_ids, labels: s.labels }));
  const config = {
    lora: { r: 2, alpha: 4, initLoraWeights: false as const },
    batchSize: 4,
    maxSteps: 5,
    learningRate: 1e-3,
  };

  it('skips a step with non-finite gradients, reports it, and goes on', async () => {
    const { model } = await loadModel(fixturePath('trainer', 'llama3-gqa-tied'));
    let saved: tf.Tensor | null = null;
    const result = await train(model, data, config, {
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
    });
    expect(result.skippedSteps).toEqual([2]);
    expect(Number.isFinite(result.losses[4])).toBe(true);
    model.dispose();
  });

  it('stops with E_NONFINITE after maxConsecutiveNonFinite skipped steps', async () => {
    const { model } = await loadModel(fixturePath('trainer', 'llama3-gqa-tied'));
    const error = await train(
      model,
      data,
      { ...config, maxConsecutiveNonFinite: 2 },
      {
        onProgress: (p) => {
          const a = model.layers[1]?.downProj as unknown as { loraB: tf.Variable };
          if (p.step === 1) a.loraB.assign(tf.fill(a.loraB.shape, Number.POSITIVE_INFINITY));
        },
      },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrainerError);
    expect((error as TrainerError).code).toBe('E_NONFINITE');
    model.dispose();
  });
});

describe('config', () => {
  it('presets carry the Unsloth notebook and QLoRA paper values', () => {
    expect(TRAIN_PRESETS.unsloth).toMatchObject({
      lora: { r: 16, alpha: 16, dropout: 0 },
      learningRate: 2e-4,
      batchSize: 2,
      gradientAccumulationSteps: 4,
      warmupSteps: 5,
      schedule: 'linear',
      weightDecay: 0.01,
      optimizer: 'adamw_8bit',
      seed: 3407,
    });
    expect(TRAIN_PRESETS['qlora-paper']).toMatchObject({
      lora: { r: 64, alpha: 16, dropout: 0.1 },
      maxGradNorm: 0.3,
      schedule: 'constant',
      learningRate: 2e-4,
    });
    expect(trainPreset('unsloth', { maxSteps: 60, lora: { r: 8 } })).toMatchObject({
      maxSteps: 60,
      lora: { r: 8, alpha: 16, dropout: 0, seed: 3407 },
    });
  });

  it('refuses a model without an adapter and no lora config, and bad values', async () => {
    const { model } = await loadModel(fixturePath('trainer', 'llama3-gqa-tied'));
    const data = [{ inputIds: [1, 2, 3], labels: [-100, 2, 3] }];
    await expect(train(model, data, {})).rejects.toMatchObject({ code: 'E_TRAIN_CONFIG' });
    await expect(train(model, data, { lora: {}, batchSize: 0 })).rejects.toMatchObject({
      code: 'E_TRAIN_CONFIG',
    });
    injectLora(model, { r: 2 });
    await expect(
      train(model, [{ inputIds: [1, 2], labels: [-100, -100] }], {}),
    ).rejects.toMatchObject({ code: 'E_TRAIN_CONFIG' });
    const controller = new AbortController();
    const aborted = await train(
      model,
      reference.sequences.map((s) => ({ inputIds: s.input_ids, labels: s.labels })),
      { batchSize: 4, maxSteps: 3 },
      {
        signal: controller.signal,
        onProgress: () => controller.abort(),
      },
    ).catch((e: unknown) => e);
    expect(aborted).toMatchObject({ code: 'E_ABORTED' });
    model.dispose();
  });
});
