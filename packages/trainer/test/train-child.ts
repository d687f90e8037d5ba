// Child process of train-resume.test.ts: trains the tiny fixture Llama with LoRA into a run
// directory (`fresh`) or continues it (`resume`); prints "checkpoint <step>" after each checkpoint.
import '@tensorflow/tfjs-backend-cpu';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadModel } from '../src/load-model';
import { train } from '../src/train';
import { RESUME_CONFIG } from './_resume-config';

const [runDir, mode] = process.argv.slice(2) as [string, string];
await tf.setBackend('cpu');
const fixtures = join(import.meta.dirname, '..', '..', '..', 'test-fixtures', 'trainer');
const { model } = await loadModel(join(fixtures, 'llama3-gqa-tied'));
const reference = JSON.parse(readFileSync(join(fixtures, 'train', 'reference.json'), 'utf8')) as {
  sequences: { input_ids: number[]; labels: number[] }[];
};
const data = reference.sequences.map((s) => ({ inputIds: s.input_ids, labels: s.labels }));
await train(model, data, RESUME_CONFIG, {
  runDir,
  resume: mode === 'resume',
  onCheckpoint: async (step) => {
    process.stdout.write(`checkpoint ${step}\n`);
    // Let the parent's SIGKILL land between steps now and then (it may also land mid-step).
    await new Promise((resolve) => setTimeout(resolve, 20));
  },
});
process.stdout.write('done\n');
