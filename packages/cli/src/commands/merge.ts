import { resolvePath } from '../_fs';
import { type BackendChoice, openModel } from '../_runtime';
import { CliError } from '../errors';
import type { CliIo } from '../io';
import { stringifyReportJson } from '../report';

/**
 * Options of `qlora merge`.
 *
 * @example
 * const options: MergeCommandOptions = { model: 'models/Llama-3.2-1B', adapter: 'runs/ft/adapter', out: 'merged' };
 */
export interface MergeCommandOptions {
  model?: string;
  adapter?: string;
  out?: string;
  dtype?: 'bf16' | 'f16' | 'f32';
  backend?: string;
  json?: boolean;
}

/**
 * `qlora merge --model <dir> --adapter <dir> --out <dir>`: applies a PEFT LoRA adapter to its
 * base model (W + scaling · B·A, as PEFT's `merge_and_unload`) and writes a Hugging Face folder
 * (`model.safetensors`, config.json, tokenizer files) that transformers loads as a plain model.
 *
 * @example
 * await runMerge({ model: 'models/Llama-3.2-1B', adapter: 'runs/ft/adapter', out: 'merged', dtype: 'bf16' }, io);
 */
export async function runMerge(options: MergeCommandOptions, io: CliIo): Promise<unknown> {
  if (options.model === undefined || options.adapter === undefined || options.out === undefined) {
    throw new CliError('USAGE', 'qlora merge: expected --model, --adapter and --out', {
      hint: 'e.g. qlora merge --model models/Llama-3.2-1B --adapter runs/ft/adapter --out merged',
    });
  }
  const modelDir = resolvePath(io.cwd, options.model);
  const loaded = await openModel(
    modelDir,
    { backend: (options.backend ?? 'cpu') as BackendChoice, dequantCache: 'off' },
    io,
  );
  const { mergeAndUnload } = await import('@qlora/lora');
  const { loadAdapter } = await import('@qlora/lora/node');
  const { saveModel } = await import('@qlora/trainer');
  await loadAdapter(loaded.model, resolvePath(io.cwd, options.adapter));
  const report = mergeAndUnload(loaded.model);
  const dtype = ({ bf16: 'BF16', f16: 'F16', f32: 'F32' } as const)[options.dtype ?? 'f32'];
  const saved = await saveModel(loaded.model, resolvePath(io.cwd, options.out), {
    dtype,
    copyFrom: modelDir,
  });
  if (options.json) io.stdout.write(stringifyReportJson({ ...saved, merge: report }));
  else
    io.stdout.write(
      `merged ${JSON.stringify(report)}\nwrote ${saved.dir}: ${saved.files.join(', ')}\n`,
    );
  return saved;
}
