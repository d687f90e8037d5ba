import type { CliIo } from '../io';
import { notAvailable } from './_not-available';

/**
 * Options of `qlora eval` (declared; runs once @qlora/trainer is available).
 *
 * @example
 * const options: EvalCommandOptions = { model: 'models/Llama-3.2-1B', tasks: ['gsm8k'], out: 'runs/base' };
 */
export interface EvalCommandOptions {
  model: string;
  adapter?: string;
  tasks?: string[];
  limit?: number;
  numFewshot?: number;
  batchSize?: number;
  backend?: string;
  out?: string;
  logSamples?: boolean;
  json?: boolean;
}

/**
 * `qlora eval <model-dir>`: runs HellaSwag / GSM8K / MMLU with lm-eval-identical prompts and
 * writes lm-eval results JSON (and per-sample JSONL). Not wired yet: throws `NOT_AVAILABLE` (exit 4).
 *
 * @example
 * await runEval({ model: 'models/Llama-3.2-1B' }, io); // CliError NOT_AVAILABLE
 */
export async function runEval(options: EvalCommandOptions, io: CliIo): Promise<never> {
  void options;
  void io;
  throw notAvailable('eval', '@qlora/trainer (the LanguageModel over a Hugging Face checkpoint)');
}
