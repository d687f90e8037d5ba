// Helpers shared by this package's tests (not exported from the package).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { createBufferedIo } from './io';
import { runCli } from './program';

/** A fresh temporary folder removed after the file's tests. */
export function useTempDir(prefix = 'qlora-cli-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs `qlora argv` in-process; returns status, stdout and stderr. */
export async function qlora(
  argv: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
) {
  const io = createBufferedIo(options);
  const status = await runCli(argv, io);
  return { status, stdout: io.stdoutText(), stderr: io.stderrText() };
}

/** The paper's Table 2 inputs (Llama 3.2 1B base and fine-tuned on 2k Alpaca), as fractions. */
export const PAPER_TABLE2 = {
  base: {
    flex: [0.3351, 0.013],
    strict: [0.3351, 0.013],
    acc: [0.4523, 0.005],
    accNorm: [0.6077, 0.0049],
    mmlu: [0.47, 0.0502],
  },
  ft: {
    flex: [0.0371, 0.0052],
    strict: [0.0311, 0.0048],
    acc: [0.4561, 0.005],
    accNorm: [0.612, 0.0049],
    mmlu: [0.34, 0.0476],
  },
} as const;

/** An lm-evaluation-harness 0.4.x results object holding one column of the paper's Table 2. */
export function paperResultsJson(which: 'base' | 'ft'): Record<string, unknown> {
  const v = PAPER_TABLE2[which];
  return {
    results: {
      gsm8k: {
        alias: 'gsm8k',
        'exact_match,strict-match': v.strict[0],
        'exact_match_stderr,strict-match': v.strict[1],
        'exact_match,flexible-extract': v.flex[0],
        'exact_match_stderr,flexible-extract': v.flex[1],
      },
      hellaswag: {
        alias: 'hellaswag',
        'acc,none': v.acc[0],
        'acc_stderr,none': v.acc[1],
        'acc_norm,none': v.accNorm[0],
        'acc_norm_stderr,none': v.accNorm[1],
      },
      mmlu_college_computer_science: {
        alias: 'college_computer_science',
        'acc,none': v.mmlu[0],
        'acc_stderr,none': v.mmlu[1],
      },
    },
    group_subtasks: { gsm8k: [], hellaswag: [], mmlu_college_computer_science: [] },
    configs: {},
    versions: { gsm8k: 3.0, hellaswag: 1.0, mmlu_college_computer_science: 1.0 },
    'n-shot': { gsm8k: 5, hellaswag: 0, mmlu_college_computer_science: 0 },
    higher_is_better: {
      gsm8k: { exact_match: true },
      hellaswag: { acc: true, acc_norm: true },
      mmlu_college_computer_science: { acc: true },
    },
    'n-samples': {
      gsm8k: { original: 1319, effective: 1319 },
      hellaswag: { original: 10042, effective: 10042 },
      mmlu_college_computer_science: { original: 100, effective: 100 },
    },
    config: { model: 'hf', model_args: 'pretrained=meta-llama/Llama-3.2-1B', batch_size: 'auto' },
    lm_eval_version: '0.4.12',
  };
}

/** Writes both paper results files into `dir`; returns their paths. */
export function writePaperResults(dir: string): { base: string; ft: string } {
  const base = join(dir, 'paper-base.json');
  const ft = join(dir, 'paper-ft.json');
  writeFileSync(base, JSON.stringify(paperResultsJson('base'), null, 2));
  writeFileSync(ft, JSON.stringify(paperResultsJson('ft'), null, 2));
  return { base, ft };
}
