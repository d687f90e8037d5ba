import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createDeterministicLanguageModel } from '@qlora/bench-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { type BenchmarkPlan, evaluateBenchmarks } from './_benchmarks';
import { mergeEvalShards } from './_merge-shards';
import { qlora, useTempDir } from './_test-helpers';
import { CliError } from './errors';

// A model without weights whose answers depend only on each request, so one process and three
// shards get the same answers: GSM8K generations add the first two numbers of the last question.
const lm = createDeterministicLanguageModel({
  name: 'fake',
  generate: (context) => {
    const question = context.slice(context.lastIndexOf('Question:'));
    const [a = 0, b = 0] = (question.match(/\d+/g) ?? []).map(Number);
    return ` They have ${a} + ${b} = ${a + b}. The answer is ${a + b}.\n\nQuestion: next`;
  },
});

const plan: BenchmarkPlan = {
  hellaswag: { limit: 10 },
  gsm8k: { numFewshot: 3, seed: 1234, limit: 11 },
  mmlu: { subjects: ['fictional_networking', 'fictional_programming'], numFewshot: 0, limit: 7 },
};

const dir = useTempDir('qlora-eval-shards-');
const at = (...parts: string[]) => join(dir, ...parts);

function runInto(outDir: string, shard?: { index: number; count: number }) {
  return evaluateBenchmarks(lm, plan, {
    outDir,
    batchSize: 8,
    modelName: 'models/fake',
    config: { model: 'qlora.ts', model_args: 'pretrained=models/fake' },
    ...(shard ? { shard } : {}),
  });
}

/** The files of an eval folder by name without the date stamp. */
function outputFiles(folder: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(folder).sort()) {
    const m = /^(results|samples_.+)_\d{4}-\d{2}-\d{2}T[\d.-]+\.(json|jsonl)$/.exec(name);
    if (m) out[`${m[1]}.${m[2]}`] = readFileSync(join(folder, name), 'utf8');
  }
  return out;
}

async function mergeError(dirs: string[]): Promise<CliError> {
  const error = await mergeEvalShards(dirs, at('bad-out')).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(CliError);
  return error as CliError;
}

beforeAll(async () => {
  await runInto(at('full'));
  for (let index = 0; index < 3; index++) await runInto(at(`s${index}`), { index, count: 3 });
}, 30_000);

describe('qlora eval --shard i/n + --merge', () => {
  it('merges three shards into the files one process writes, byte for byte', async () => {
    const merged = await mergeEvalShards([at('s0'), at('s1'), at('s2')], at('merged'));
    const full = outputFiles(at('full'));
    expect(Object.keys(full)).toEqual([
      'results.json',
      'samples_gsm8k.jsonl',
      'samples_hellaswag.jsonl',
      'samples_mmlu_fictional_networking.jsonl',
      'samples_mmlu_fictional_programming.jsonl',
    ]);
    expect(outputFiles(at('merged'))).toEqual(full);
    // Not a trivial match: GSM8K scores vary, MMLU has a pooled group, docs split unevenly.
    const results = JSON.parse(full['results.json'] as string);
    expect(results['n-samples'].gsm8k).toEqual({ original: 100, effective: 11 });
    expect(results.results.gsm8k['exact_match,flexible-extract']).toBeGreaterThan(0);
    expect(results.results.gsm8k['exact_match,flexible-extract']).toBeLessThan(1);
    expect(results.groups.mmlu['acc_stderr,none']).toBeGreaterThan(0);
    expect(merged.samplePaths).toHaveLength(4);
  });

  it('gives each shard the rows one process writes for its docs (doc id % 3)', () => {
    const full = outputFiles(at('full'))['samples_gsm8k.jsonl']?.split('\n').filter(Boolean) ?? [];
    for (let index = 0; index < 3; index++) {
      const files = outputFiles(at(`s${index}`));
      const lines = files['samples_gsm8k.jsonl']?.split('\n').filter(Boolean) ?? [];
      const expected = full.filter((line) => JSON.parse(line).doc_id % 3 === index);
      expect(lines).toEqual(expected);
      const config = JSON.parse(files['results.json'] as string).config;
      expect(config.shard).toMatchObject({ index, count: 3, docs: { gsm8k: 11, hellaswag: 10 } });
    }
  });

  it('merges shards without docs of a small task (more shards than docs)', async () => {
    const small: BenchmarkPlan = { gsm8k: { numFewshot: 2, seed: 1234, limit: 2 } };
    const run = (outDir: string, shard?: { index: number; count: number }) =>
      evaluateBenchmarks(lm, small, { outDir, modelName: 'fake', ...(shard ? { shard } : {}) });
    await run(at('small-full'));
    for (let index = 0; index < 3; index++) await run(at(`small-s${index}`), { index, count: 3 });
    const shards = [2, 0, 1].map((i) => at(`small-s${i}`));
    await mergeEvalShards(shards, at('small-merged'));
    expect(outputFiles(at('small-merged'))).toEqual(outputFiles(at('small-full')));
  });

  it('does not depend on the order of the shard folders', async () => {
    await mergeEvalShards([at('s2'), at('s0'), at('s1')], at('merged-2'));
    expect(outputFiles(at('merged-2'))).toEqual(outputFiles(at('full')));
  });

  it('names the missing doc ids and the shard that has them', async () => {
    const error = await mergeError([at('s0'), at('s1')]);
    expect(error.code).toBe('INPUT_INVALID');
    expect(error.message).toContain('doc ids 0..9 of task hellaswag');
    expect(error.message).toContain('got doc ids 2, 5, 8 in none');
    expect(error.hint).toContain('shard 2/3');
  });

  it('names duplicated doc ids and both folders', async () => {
    cpSync(at('s1'), at('s1-copy'), { recursive: true });
    const error = await mergeError([at('s0'), at('s1'), at('s1-copy'), at('s2')]);
    expect(error.message).toContain('got doc ids 1, 4, 7 in both');
    expect(error.message).toContain(`${at('s1')} and ${at('s1-copy')}`);
  });

  it('refuses shards of different evaluations, naming the field', async () => {
    cpSync(at('s1'), at('s1-other'), { recursive: true });
    const name = readdirSync(at('s1-other')).find((n) => n.startsWith('results_')) as string;
    const path = at('s1-other', name);
    writeFileSync(path, readFileSync(path, 'utf8').replace(/("n-shot": \{\s*"gsm8k": )3/, '$15'));
    const error = await mergeError([at('s0'), at('s1-other'), at('s2')]);
    expect(error.message).toContain('got a different n-shot.gsm8k in');
    expect(error.message).toContain('(shard 1/3)');

    writeFileSync(
      path,
      readFileSync(at('s1', name), 'utf8').replace(
        '"pretrained=models/fake"',
        '"pretrained=models/other"',
      ),
    );
    expect((await mergeError([at('s0'), at('s1-other'), at('s2')])).message).toContain(
      'different config.model_args',
    );
  });

  it('refuses a samples file that is not the one its results file hashes', async () => {
    cpSync(at('s2'), at('s2-cut'), { recursive: true });
    const name = readdirSync(at('s2-cut')).find((n) => n.startsWith('samples_hellaswag')) as string;
    const lines = readFileSync(at('s2-cut', name), 'utf8').split('\n');
    writeFileSync(at('s2-cut', name), lines.slice(1).join('\n'));
    const error = await mergeError([at('s0'), at('s1'), at('s2-cut')]);
    expect(error.message).toContain('task_hashes.hellaswag');
  });

  it('refuses a folder that is not a shard run', async () => {
    const error = await mergeError([at('full'), at('s1')]);
    expect(error.message).toContain('expected config.shard = { index, count, docs }');
    expect((await mergeError([at('nowhere')])).code).toBe('INPUT_MISSING');
  });

  it('runs as qlora eval --merge … --out', async () => {
    const ok = await qlora(['eval', '--merge', 's0', 's1', 's2', '--out', 'merged-cli'], {
      cwd: dir,
    });
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/^merged 3 shard\(s\)\nhellaswag: acc,none 0\.\d{4} ± /);
    expect(outputFiles(at('merged-cli'))).toEqual(outputFiles(at('full')));

    const noOut = await qlora(['eval', '--merge', 's0', 's1', 's2'], { cwd: dir });
    expect(noOut.status).toBe(2);
    expect(noOut.stderr).toContain('expected --out <dir>');
    const intoShard = await qlora(['eval', '--merge', 's0', 's1', '--out', 's1'], { cwd: dir });
    expect(intoShard.status).toBe(2);
  });
});

describe('with the embedded tiny model (NF4, CPU)', () => {
  // A real model's log-likelihoods change in the last digits with what a request is batched
  // with (padding, shapes); at batch size 1 every request is computed alone in both layouts.
  it('two shards at --batch-size 1 merge into the files of one process', async () => {
    const model = new URL('../assets/embedded/model', import.meta.url).pathname;
    const args = ['--model', model, '--nf4', '--tasks', 'gsm8k,mmlu', '--limit', '3'];
    const common = [...args, '--num-fewshot', '1', '--max-gen-tokens', '16', '--batch-size', '1'];
    for (const [out, extra] of [
      ['tiny-full', []],
      ['tiny-s0', ['--shard', '0/2']],
      ['tiny-s1', ['--shard', '1/2']],
    ] as const) {
      const run = await qlora(['eval', ...common, ...extra, '--out', out], { cwd: dir });
      expect(run.status, run.stderr).toBe(0);
    }
    const merge = await qlora(['eval', '--merge', 'tiny-s0', 'tiny-s1', '--out', 'tiny-merged'], {
      cwd: dir,
    });
    expect(merge.status, merge.stderr).toBe(0);
    expect(outputFiles(at('tiny-merged'))).toEqual(outputFiles(at('tiny-full')));
  }, 30_000);
});
