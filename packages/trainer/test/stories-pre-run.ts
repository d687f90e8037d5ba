// Pre-run for tools/reference/train_ref.py part 2 (run here, before the GPU-host call):
//   node --conditions=@qlora/source --import tsx packages/trainer/test/stories-pre-run.ts
// Converts stories260K, fine-tunes a LoRA on four sentences with train(), and writes
// .carry/train/{stories260K/, adapter/, text.json} (ignored; carried to the host).
import '@tensorflow/tfjs-backend-cpu';
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import { tokenizeForSft } from '@qlora/datasets';
import { convertLlama2c, loadModel, train } from '@qlora/trainer';
import * as tf from '@tensorflow/tfjs-core';
import { STORY_PAIRS } from '../src/_stories-text';

const out = '.carry/train';
await tf.setBackend('cpu');
await convertLlama2c(
  '/work/shared/data/models/stories260K/stories260K.bin',
  '/work/shared/data/models/stories260K/tok512.bin',
  `${out}/stories260K`,
);
const { model, tokenizer } = await loadModel(`${out}/stories260K`);
if (!tokenizer) throw new Error('no tokenizer');
const sequences = STORY_PAIRS.map((p) => {
  const ex = tokenizeForSft(p, tokenizer);
  return { input_ids: ex.inputIds, labels: ex.labels };
});
const data = sequences.map((s) => ({ inputIds: s.input_ids, labels: s.labels }));
rmSync(`${out}/run`, { recursive: true, force: true });
const result = await train(
  model,
  data,
  {
    lora: { r: 8, alpha: 16, seed: 1 },
    learningRate: 1e-2,
    batchSize: 2,
    gradientAccumulationSteps: 2,
    maxSteps: 30,
    warmupSteps: 2,
    evalSteps: 30,
    seed: 3407,
  },
  { runDir: `${out}/run`, evalDataset: data, baseModelNameOrPath: 'stories260K' },
);
const base = result.losses[0];
rmSync(`${out}/adapter`, { recursive: true, force: true });
cpSync(`${out}/run/adapter`, `${out}/adapter`, { recursive: true });
const tuned = result.evalLosses.at(-1)?.[1];
writeFileSync(
  `${out}/text.json`,
  JSON.stringify({ sequences, first_step_loss: base, tuned_loss: tuned, losses: result.losses }),
);
console.log({ first: base, last: result.losses.at(-1), tuned });
