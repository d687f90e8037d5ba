import { createHash } from 'node:crypto';
import { appendFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PythonRandom, sha256Hex } from '@qlora/metrics';
import { type BenchRow, type BenchSuite, medianMs, ratioRow } from '../../../tools/bench/harness';
import { createDeterministicLanguageModel } from '../src/fake-model';
import { openJsonlRequestCache } from '../src/jsonl-cache';
import { evaluate } from '../src/runner';
import { defineTask } from '../src/task';

// A GSM8K 5-shot prompt is about 4 KB; hashing one per request is the runner's main fixed cost.
const prompt = 'Question: Natalia sold clips to 48 of her friends in April.\nAnswer: 72\n\n'.repeat(
  60,
);
const prompts = Array.from({ length: 200 }, (_, i) => `${prompt}${i}`);
const megabytes = (prompts.length * prompt.length) / 1e6;

const docs = Array.from({ length: 500 }, (_, i) => ({
  query: `${prompt.slice(0, 300)} ${i}`,
  gold: i % 4,
}));
const task = defineTask<{ query: string; gold: number }>({
  name: 'bench',
  version: 1,
  outputType: 'multiple_choice',
  numFewshot: 0,
  docToRequests: (doc) =>
    ['a', 'b', 'c', 'd'].map((c) => ({
      kind: 'loglikelihood' as const,
      context: doc.query,
      continuation: ` ${c}`,
    })),
  docToTarget: (doc) => doc.gold,
  processResults: () => ({ acc: 1 }),
  aggregation: { acc: 'mean' },
  higherIsBetter: { acc: true },
});

const suite: BenchSuite = {
  title: 'request hashing and the task runner',
  async run(): Promise<BenchRow[]> {
    const ours = await medianMs('sha256Hex', () => {
      for (const p of prompts) sha256Hex(p);
    });
    const native = await medianMs('node:crypto sha256', () => {
      for (const p of prompts) createHash('sha256').update(p).digest('hex');
    });
    const lm = createDeterministicLanguageModel();
    const runner = await medianMs('evaluate 500 docs × 4', () => evaluate(lm, task, docs), {
      timeMs: 2000,
    });
    const modelOnly = await medianMs(
      'fake model alone',
      () =>
        lm.loglikelihood(
          docs.flatMap(
            (d) => task.docToRequests(d, { docId: 0, rng: new PythonRandom(1) }) as never,
          ),
        ),
      { timeMs: 2000 },
    );
    const dir = await mkdtemp(join(tmpdir(), 'bench-core-'));
    let file = 0;
    const answers = Array.from({ length: 5000 }, (_, i) => ({
      key: sha256Hex(String(i)),
      value: { logprob: -1.25 * i, isGreedy: false },
    }));
    const cached = await medianMs('JSONL cache, batches of 64', async () => {
      const cache = await openJsonlRequestCache(join(dir, `c${file++}.jsonl`));
      for (let b = 0; b < answers.length; b += 64) {
        await Promise.all(answers.slice(b, b + 64).map((a) => cache.set(a.key, a.value)));
      }
    });
    const naive = await medianMs('appendFile per answer', async () => {
      const path = join(dir, `n${file++}.jsonl`);
      for (const a of answers) await appendFile(path, `${JSON.stringify(a)}\n`);
    });
    return [
      ratioRow(
        'sha256Hex, 200 prompts of 4.3 KB',
        megabytes / (ours / 1000),
        'MB/s',
        {
          name: 'node:crypto',
          value: megabytes / (native / 1000),
        },
        { note: 'pure JS, no node:* in the main entry' },
      ),
      ratioRow(
        'evaluate(), 2000 loglikelihood requests (fake model)',
        2000 / (runner / 1000),
        'req/s',
        {
          name: 'fake model alone',
          value: 2000 / (modelOnly / 1000),
        },
        { note: 'runner overhead: hashing, caching, scoring, sample rows' },
      ),
      ratioRow(
        'JSONL request cache, 5000 answers in batches of 64',
        5000 / (cached / 1000),
        'answers/s',
        { name: 'appendFile per answer', value: 5000 / (naive / 1000) },
        { note: 'one append per model batch' },
      ),
    ];
  },
};

export default suite;
