// End to end, slow (about a minute on two cores): the embedded default experiment through the
// same code path as `qlora experiment`, with smaller sizes, then a kill and a resume.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseLmEvalResults } from '@qlora/metrics';
import { describe, expect, it } from 'vitest';
import { readLatestResults } from './_benchmarks';
import { qlora, useTempDir } from './_test-helpers';
import { EMBEDDED_CONFIG_PATH } from './commands/experiment';
import { runExperiment } from './index';
import { createBufferedIo } from './io';

const dir = useTempDir('qlora-e2e-');

/** The embedded config with every size cut down; paths made absolute. */
function reducedConfig(runDir: string): string {
  const config = JSON.parse(readFileSync(EMBEDDED_CONFIG_PATH, 'utf8'));
  const assets = join(EMBEDDED_CONFIG_PATH, '..');
  config.$schema = undefined;
  config.models[0].path = join(assets, 'model');
  config.benchmarks.hellaswag = { path: join(assets, 'data/hellaswag/validation.jsonl'), limit: 6 };
  config.benchmarks.gsm8k = {
    ...config.benchmarks.gsm8k,
    limit: 6,
    maxGenTokens: 40,
    trainPath: join(assets, 'data/gsm8k/train.jsonl'),
    testPath: join(assets, 'data/gsm8k/test.jsonl'),
  };
  config.benchmarks.mmlu = { ...config.benchmarks.mmlu, path: join(assets, 'data/mmlu'), limit: 3 };
  config.finetune.dataset.path = join(assets, 'data/alpaca/instructions.json');
  config.finetune.dataset.n = 24;
  config.finetune.maxSteps = 6;
  config.finetune.warmupSteps = 1;
  config.finetune.checkpointEvery = 2;
  config.runDir = runDir;
  const path = join(dir, `${runDir.split('/').at(-1)}.json`);
  writeFileSync(path, JSON.stringify(config));
  return path;
}

const flex = (path: string): number =>
  parseLmEvalResults(readFileSync(path, 'utf8')).results.gsm8k?.metrics[
    'exact_match,flexible-extract'
  ]?.value as number;

describe('qlora experiment (embedded assets, reduced sizes)', () => {
  it('runs base eval → QLoRA → eval → report with --mix; the report matches the results files', async () => {
    const runDir = join(dir, 'run');
    const config = reducedConfig(runDir);
    const { status, stdout, stderr } = await qlora(['experiment', '--config', config, '--mix']);
    expect(stderr).not.toContain('error');
    expect(status).toBe(0);
    expect(stdout).toMatch(/Forgetting Rate/);
    for (const f of ['report.md', 'report.json', 'metrics.svg', 'loss.svg', 'config.json']) {
      expect(existsSync(join(runDir, f))).toBe(true);
    }
    const model = join(runDir, 'embedded-tiny-llama-0-9m');
    for (const f of ['plain/train/adapter/adapter_config.json', 'mix/train/steps.jsonl']) {
      expect(existsSync(join(model, f))).toBe(true);
    }
    const samples = readdirSync(join(model, 'base')).filter((n) => n.startsWith('samples_'));
    expect(samples.length).toBe(4); // hellaswag, gsm8k, two MMLU subjects

    const report = JSON.parse(readFileSync(join(runDir, 'report.json'), 'utf8'));
    expect(report.models.map((m: { name: string }) => m.name)).toEqual([
      'embedded tiny Llama (0.9M)',
      'embedded tiny Llama (0.9M) + 20% GSM8K mix',
    ]);
    const base = (await readLatestResults(join(model, 'base')))!.path;
    for (const [i, variant] of ['plain', 'mix'].entries()) {
      const ft = (await readLatestResults(join(model, variant, 'eval')))!.path;
      const fr = 1 - flex(ft) / flex(base);
      expect(report.models[i].summary.forgettingRate).toBeCloseTo(fr, 12);
      expect(report.models[i].ftFile.path).toBe(ft);
      expect(report.models[i].lossSteps).toBe(6);
    }
    const md = readFileSync(join(runDir, 'report.md'), 'utf8');
    expect(md).toContain('Forgetting Rate');
    expect(md).toContain('## Paired tests');
    expect(md).toContain('### Data hashes (sha256)');
    expect(Object.keys(report.seeds)).toContain('LoRA init');
    expect(report.versions['@qlora/trainer']).toBeDefined();

    // A second run of the same config finds every stage done and writes the same numbers.
    const again = await qlora(['experiment', '--config', config, '--mix']);
    expect(again.status).toBe(0);
    expect(again.stderr).toContain('resuming the run');
    const second = JSON.parse(readFileSync(join(runDir, 'report.json'), 'utf8'));
    expect(second.models.map((m: { summary: unknown }) => m.summary)).toEqual(
      report.models.map((m: { summary: unknown }) => m.summary),
    );
    // A different config in the same run directory is refused.
    expect((await qlora(['experiment', '--config', config])).status).toBe(2);
  }, 240_000);

  it('a run killed during training resumes from its checkpoint', async () => {
    const runDir = join(dir, 'killed');
    const config = reducedConfig(runDir);
    const controller = new AbortController();
    const io = { ...createBufferedIo(), signal: controller.signal };
    const trainDir = join(runDir, 'embedded-tiny-llama-0-9m', 'plain', 'train');
    const poll = setInterval(() => {
      if (existsSync(trainDir) && readdirSync(trainDir).some((n) => /^checkpoint-\d+$/.test(n))) {
        controller.abort();
      }
    }, 20);
    await expect(runExperiment({ config }, io)).rejects.toMatchObject({ code: 'E_ABORTED' });
    clearInterval(poll);
    expect(existsSync(join(runDir, 'stages', 'embedded-tiny-llama-0-9m-base-eval.json'))).toBe(
      true,
    );
    expect(existsSync(join(runDir, 'stages', 'embedded-tiny-llama-0-9m-plain-train.json'))).toBe(
      false,
    );

    const resumed = await qlora(['experiment', '--config', config]);
    expect(resumed.status).toBe(0);
    const marker = JSON.parse(
      readFileSync(join(runDir, 'stages', 'embedded-tiny-llama-0-9m-plain-train.json'), 'utf8'),
    );
    expect(marker.startStep).toBeGreaterThan(0);
    expect(marker.steps).toBe(6);
    expect(existsSync(join(runDir, 'report.md'))).toBe(true);
  }, 240_000);
});
