import type { CliIo } from '../io';
import { notAvailable } from './_not-available';

/**
 * Options of `qlora merge` (declared; runs once @qlora/lora is available).
 *
 * @example
 * const options: MergeCommandOptions = { model: 'models/Llama-3.2-1B', adapter: 'runs/ft/adapter', out: 'merged' };
 */
export interface MergeCommandOptions {
  model: string;
  adapter: string;
  out: string;
  dtype?: 'bf16' | 'f16' | 'f32';
  json?: boolean;
}

/**
 * `qlora merge <model-dir> --adapter <dir> --out <dir>`: W + (alpha/r)·B·A into a plain HF
 * safetensors checkpoint. Not wired yet: throws `NOT_AVAILABLE` (exit 4).
 *
 * @example
 * await runMerge({ model: 'm', adapter: 'a', out: 'o' }, io); // CliError NOT_AVAILABLE
 */
export async function runMerge(options: MergeCommandOptions, io: CliIo): Promise<never> {
  void options;
  void io;
  throw notAvailable('merge', '@qlora/lora (PEFT adapter read and merge)');
}
