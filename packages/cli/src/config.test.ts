import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { experimentSchemaText } from './_schema-text';
import { qlora, useTempDir } from './_test-helpers';
import {
  experimentConfigSchema,
  loadExperimentConfig,
  MMLU_CS_SUBJECTS,
  parseExperimentConfig,
  resolveFinetune,
} from './config';
import { CliError } from './errors';

const minimal = {
  models: [{ name: 'Llama 3.2 1B', path: 'models/Llama-3.2-1B' }],
  finetune: { dataset: { path: 'data/alpaca_data.json' } },
};
const dir = useTempDir();

describe('experimentConfigSchema', () => {
  it("fills every default of the paper's setup", () => {
    const c = experimentConfigSchema.parse(minimal);
    expect(c.benchmarks.gsm8k).toEqual({ numFewshot: 5, seed: 1234 });
    expect(c.benchmarks.mmlu).toEqual({ subjects: [...MMLU_CS_SUBJECTS], numFewshot: 0 });
    expect(c.benchmarks.hellaswag).toEqual({});
    expect(c.finetune.dataset).toMatchObject({ n: 2000, template: 'alpaca' });
    expect(c.finetune.preset).toBe('unsloth');
    expect(c.quantize).toEqual({
      quantType: 'nf4',
      blocksize: 64,
      doubleQuant: true,
      cacheDequantized: 'auto',
    });
    expect(c).toMatchObject({ runDir: 'runs/experiment', backend: 'auto', seed: 3407 });
  });

  it('skips benchmarks left out once any is given', () => {
    const c = experimentConfigSchema.parse({ ...minimal, benchmarks: { gsm8k: { limit: 50 } } });
    expect(c.benchmarks).toEqual({ gsm8k: { numFewshot: 5, seed: 1234, limit: 50 } });
  });

  it('applies presets, then overrides', () => {
    const unsloth = resolveFinetune(experimentConfigSchema.parse(minimal));
    expect(unsloth).toMatchObject({
      r: 16,
      alpha: 16,
      dropout: 0,
      lr: 2e-4,
      batchSize: 2,
      gradientAccumulation: 4,
      maxSteps: 60,
      schedule: 'linear',
      seed: 3407,
    });
    const paper = resolveFinetune(
      experimentConfigSchema.parse({
        ...minimal,
        finetune: { dataset: { path: 'a.json', seed: 7 }, preset: 'qlora-paper', r: 8, epochs: 2 },
      }),
    );
    expect(paper).toMatchObject({
      r: 8,
      alpha: 16,
      dropout: 0.1,
      maxGradNorm: 0.3,
      schedule: 'constant',
      epochs: 2,
      maxSteps: undefined,
      seed: 7,
    });
  });

  it('accepts a custom template and a mix', () => {
    const c = experimentConfigSchema.parse({
      ...minimal,
      finetune: {
        dataset: {
          path: 'a.json',
          template: { name: 'mine', withInput: '{instruction}\n{input}\n' },
        },
      },
      mix: { gsm8kTrainPath: 'gsm8k/train.jsonl', fraction: 0.25 },
    });
    expect(c.mix?.fraction).toBe(0.25);
  });

  it('reports every problem with the file name through z.prettifyError', () => {
    const text = JSON.stringify({
      models: [],
      finetune: { dataset: { path: 'a', n: -1 } },
      quantize: { blocksize: 48 },
      typo: 1,
    });
    let error: unknown;
    try {
      parseExperimentConfig(text, 'exp.json');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CliError);
    const e = error as CliError;
    expect(e.exitCode).toBe(2);
    expect(e.message).toMatch(/^\[@qlora\/cli\] exp\.json: invalid experiment config:\n/);
    expect(e.message).toContain('→ at models');
    expect(e.message).toContain('→ at finetune.dataset.n');
    expect(e.message).toContain('→ at quantize.blocksize');
    expect(e.message).toContain('Unrecognized key: "typo"');
  });

  it('resolves paths against the config file, keeping absolute ones', async () => {
    const path = join(dir, 'sub', 'exp.json');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(
      path,
      JSON.stringify({ ...minimal, mix: { gsm8kTrainPath: '/abs/train.jsonl', fraction: 0.1 } }),
    );
    const c = await loadExperimentConfig('sub/exp.json', dir);
    expect(c.models[0]?.path).toBe(join(dir, 'sub', 'models/Llama-3.2-1B'));
    expect(c.finetune.dataset.path).toBe(join(dir, 'sub', 'data/alpaca_data.json'));
    expect(c.runDir).toBe(join(dir, 'sub', 'runs/experiment'));
    expect(c.mix?.gsm8kTrainPath).toBe('/abs/train.jsonl');
  });
});

describe('qlora experiment', () => {
  it('--dry-run validates and prints the plan; a run with a missing model folder exits 3', async () => {
    writeFileSync(join(dir, 'exp.json'), JSON.stringify(minimal));
    const dry = await qlora(['experiment', '--config', 'exp.json', '--dry-run', '--json'], {
      cwd: dir,
    });
    expect(dry.status).toBe(0);
    expect(JSON.parse(dry.stdout).finetune.r).toBe(16);
    const run = await qlora(['experiment', '--config', 'exp.json', '--backend', 'cpu'], {
      cwd: dir,
    });
    expect(run.status).toBe(3);
  });

  it('without --config the dry run shows the embedded default', async () => {
    const dry = await qlora(['experiment', '--dry-run', '--json', '--mix'], { cwd: dir });
    expect(dry.status).toBe(0);
    const plan = JSON.parse(dry.stdout);
    expect(plan.config.runDir).toBe(join(dir, 'runs/embedded-mix'));
    expect(plan.config.mix.fraction).toBe(0.2);
    expect(plan.finetune).toMatchObject({
      lr: 0.005,
      maxSteps: 40,
      batchSize: 4,
      optimizer: 'adamw',
    });
  });

  it('an invalid config exits 2 and names the file; a missing one too', async () => {
    writeFileSync(join(dir, 'bad.json'), '{"models": [{"name": "x"}]}');
    const bad = await qlora(['experiment', '--config', 'bad.json', '--dry-run'], { cwd: dir });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('bad.json: invalid experiment config');
    expect(bad.stderr).toContain('→ at models[0].path');
    const missing = await qlora(['experiment', '--config', 'nope.json', '--dry-run'], { cwd: dir });
    expect(missing.status).toBe(2);
  });
});

describe('schema/experiment.schema.json', () => {
  it('is up to date (run `pnpm --filter @qlora/cli run schema` after changing the zod schema)', () => {
    const committed = readFileSync(
      new URL('../schema/experiment.schema.json', import.meta.url),
      'utf8',
    );
    // Compared as data: the file is biome-formatted after writing.
    expect(JSON.parse(committed)).toEqual(JSON.parse(experimentSchemaText()));
  });

  it('documents defaults and descriptions', () => {
    const schema = JSON.parse(experimentSchemaText());
    expect(schema.required).toEqual(['models', 'finetune']);
    const gsm8k = schema.properties.benchmarks.properties.gsm8k;
    expect(gsm8k.properties.numFewshot.default).toBe(5);
    expect(gsm8k.properties.seed.default).toBe(1234);
    expect(schema.properties.finetune.properties.dataset.properties.n.default).toBe(2000);
    expect(schema.properties.quantize.properties.blocksize.default).toBe(64);
  });
});
