import { resolvePath } from '../_fs';
import { CliError } from '../errors';
import type { CliIo } from '../io';
import { stringifyReportJson } from '../report';

/**
 * Options of `qlora convert llama2c <bin> <tokenizer> <out>`.
 *
 * @example
 * const options: ConvertCommandOptions = { format: 'llama2c', bin: 'stories260K.bin', tokenizer: 'tok512.bin', out: 'stories260K-hf' };
 */
export interface ConvertCommandOptions {
  format: string;
  bin: string;
  tokenizer: string;
  out: string;
  json?: boolean;
}

/**
 * `qlora convert llama2c <model.bin> <tokenizer.bin> <out>`: a llama2.c checkpoint as a Hugging
 * Face Llama folder (config.json, model.safetensors, tokenizer.json), through the trainer's
 * `convertLlama2c`.
 *
 * @example
 * await runConvert({ format: 'llama2c', bin: 'stories260K.bin', tokenizer: 'tok512.bin', out: 'stories260K-hf' }, io);
 */
export async function runConvert(options: ConvertCommandOptions, io: CliIo): Promise<unknown> {
  if (options.format !== 'llama2c') {
    throw new CliError(
      'USAGE',
      `qlora convert: expected the format llama2c, got "${options.format}"`,
    );
  }
  const { convertLlama2c } = await import('@qlora/trainer');
  const out = resolvePath(io.cwd, options.out);
  const result = await convertLlama2c(
    resolvePath(io.cwd, options.bin),
    resolvePath(io.cwd, options.tokenizer),
    out,
  );
  if (options.json) io.stdout.write(stringifyReportJson({ out, ...result }));
  else io.stdout.write(`wrote ${out}: ${result.files.join(', ')}\n`);
  return result;
}
