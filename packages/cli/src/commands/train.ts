import type { CliIo } from '../io';
import { notAvailable } from './_not-available';

/**
 * Options of `qlora train` (declared; runs once @qlora/trainer is available).
 *
 * @example
 * const options: TrainCommandOptions = { model: 'models/Llama-3.2-1B', data: 'alpaca_data.json', out: 'runs/ft', n: 2000 };
 */
export interface TrainCommandOptions {
  model: string;
  data: string;
  out: string;
  n?: number;
  seed?: number;
  template?: string;
  preset?: string;
  r?: number;
  alpha?: number;
  dropout?: number;
  lr?: number;
  epochs?: number;
  maxSteps?: number;
  batchSize?: number;
  gradientAccumulation?: number;
  maxLength?: number;
  backend?: string;
  resume?: boolean;
  json?: boolean;
}

/**
 * `qlora train <model-dir> --data <file> --out <dir>`: QLoRA fine-tuning (NF4 base, LoRA
 * adapters, AdamW), writing a PEFT adapter, checkpoints and a JSONL loss log. Not wired yet:
 * throws `NOT_AVAILABLE` (exit 4).
 *
 * @example
 * await runTrain({ model: 'm', data: 'a.json', out: 'runs/ft' }, io); // CliError NOT_AVAILABLE
 */
export async function runTrain(options: TrainCommandOptions, io: CliIo): Promise<never> {
  void options;
  void io;
  throw notAvailable('train', '@qlora/trainer and @qlora/lora');
}
