import { copyFile, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { type QuantType, quantize4bit, toBnbTensors } from '@qlora/nf4';
import type { TensorEntry, TensorInput } from '@qlora/safetensors';
import { openSafetensorsDir, writeSafetensors } from '@qlora/safetensors/node';
import { resolvePath, writeFileAtomic } from '../_fs';
import { dumpRawJson, parseRawJson, toRawJson } from '../_raw-json';
import { CliError } from '../errors';
import type { CliIo } from '../io';
import { createProgress } from '../progress';
import { stringifyReportJson } from '../report';

/**
 * Options of `qlora quantize`.
 *
 * @example
 * const options: QuantizeCommandOptions = { model: 'models/Llama-3.2-1B', out: 'models/Llama-3.2-1B-nf4', doubleQuant: true };
 */
export interface QuantizeCommandOptions {
  /** Hugging Face Llama checkpoint folder. */
  model: string;
  /** Output folder (must not exist unless `force`). */
  out: string;
  quantType?: QuantType;
  blocksize?: number;
  doubleQuant?: boolean;
  /** `bnb_4bit_compute_dtype` written to config.json (default bfloat16, as QLoRA). */
  computeDtype?: 'bfloat16' | 'float16' | 'float32';
  /** Replace an existing output folder. */
  force?: boolean;
  json?: boolean;
}

/**
 * What `qlora quantize` did (also its `--json` output).
 *
 * @example
 * (await runQuantize({ model: 'm', out: 'm-nf4' }, io)).quantizedWeights; // 112 for Llama 3.2 1B
 */
export interface QuantizeCommandResult {
  model: string;
  out: string;
  quantType: QuantType;
  blocksize: number;
  doubleQuant: boolean;
  quantizedWeights: number;
  quantizedParameters: number;
  copiedTensors: number;
  /** Bytes of tensor data read and written. */
  inputBytes: number;
  outputBytes: number;
  files: string[];
}

/**
 * Linear projections of a Llama block that bitsandbytes replaces with Linear4bit.
 *
 * @example
 * LLAMA_PROJECTION_WEIGHT.test('model.layers.0.self_attn.q_proj.weight'); // true
 * LLAMA_PROJECTION_WEIGHT.test('lm_head.weight'); // false
 */
export const LLAMA_PROJECTION_WEIGHT = /\.(q|k|v|o|gate|up|down)_proj\.weight$/;

const INDEX_FILE = 'model.safetensors.index.json';
const QUANT_INPUT_DTYPE = { F32: 'float32', BF16: 'bfloat16', F16: 'float16' } as const;

/**
 * The `quantization_config` transformers writes for a bitsandbytes 4-bit model
 * (`BitsAndBytesConfig(load_in_4bit=True, …).to_dict()`, transformers 5.17).
 *
 * @example
 * bnbQuantizationConfig({ quantType: 'nf4', doubleQuant: true, computeDtype: 'bfloat16' }).bnb_4bit_quant_type; // 'nf4'
 */
export function bnbQuantizationConfig(options: {
  quantType: QuantType;
  doubleQuant: boolean;
  computeDtype: string;
}): Record<string, unknown> {
  return {
    quant_method: 'bitsandbytes',
    _load_in_8bit: false,
    _load_in_4bit: true,
    llm_int8_threshold: 6,
    llm_int8_skip_modules: null,
    llm_int8_enable_fp32_cpu_offload: false,
    llm_int8_has_fp16_weight: false,
    bnb_4bit_quant_type: options.quantType,
    bnb_4bit_use_double_quant: options.doubleQuant,
    bnb_4bit_compute_dtype: options.computeDtype,
    bnb_4bit_quant_storage: 'uint8',
    load_in_4bit: true,
    load_in_8bit: false,
  };
}

/**
 * config.json text with `quantization_config` added, written as transformers writes configs
 * (`json.dumps(indent=2, sort_keys=True)` + newline); every other token is kept as it was.
 *
 * @example
 * withQuantizationConfig('{"model_type": "llama"}', bnbQuantizationConfig({ quantType: 'nf4', doubleQuant: true, computeDtype: 'bfloat16' }));
 */
export function withQuantizationConfig(
  configText: string,
  quantizationConfig: Record<string, unknown>,
): string {
  const tree = parseRawJson(configText);
  if (tree.type !== 'object') throw new SyntaxError('config.json: expected an object');
  tree.entries = tree.entries.filter(([k]) => k !== 'quantization_config');
  tree.entries.push([
    'quantization_config',
    toRawJson(quantizationConfig, new Set(['llm_int8_threshold'])),
  ]);
  return `${dumpRawJson(tree)}\n`;
}

function checkAborted(io: CliIo): void {
  if (io.signal?.aborted) {
    throw new CliError('INTERRUPTED', 'quantize: interrupted, got SIGINT', {
      hint: 'Nothing was written to the output folder; run the command again.',
    });
  }
}

/**
 * `qlora quantize <model-dir> --out <dir>`: streams every 2-D `*.{q,k,v,o,gate,up,down}_proj.weight`
 * of a Hugging Face Llama checkpoint (F32, BF16 or F16) through `@qlora/nf4` `quantize4bit` and
 * writes it as bitsandbytes `Linear4bit` tensors (`toBnbTensors`); every other tensor is copied
 * as is, shard by shard (memory stays around one shard). config.json gets transformers'
 * `quantization_config`; tokenizer and other files are copied. The output is built in a
 * temporary sibling folder and renamed into place at the end, so a failed or interrupted run
 * leaves no partial model.
 *
 * @example
 * await runQuantize({ model: 'Llama-3.2-1B', out: 'Llama-3.2-1B-nf4', doubleQuant: true }, io);
 * // quantize [=====] 100% | 112/112 …; wrote Llama-3.2-1B-nf4 (112 weights, 0.97B params)
 */
export async function runQuantize(
  options: QuantizeCommandOptions,
  io: CliIo,
): Promise<QuantizeCommandResult> {
  const modelDir = resolvePath(io.cwd, options.model);
  const outDir = resolvePath(io.cwd, options.out);
  const quantType = options.quantType ?? 'nf4';
  const blocksize = options.blocksize ?? 64;
  const doubleQuant = options.doubleQuant ?? false;
  const computeDtype = options.computeDtype ?? 'bfloat16';
  if (quantType !== 'nf4' && quantType !== 'fp4') {
    throw new CliError('USAGE', `--quant-type: expected nf4 or fp4, got ${String(quantType)}`);
  }
  if (![32, 64, 128, 256, 512, 1024, 2048, 4096].includes(blocksize)) {
    throw new CliError('USAGE', `--blocksize: expected 32, 64, …, 4096, got ${blocksize}`, {
      hint: 'bitsandbytes uses 64 (transformers cannot load other block sizes from config.json).',
    });
  }
  if (outDir === modelDir) {
    throw new CliError(
      'USAGE',
      '--out: expected a folder other than the model folder, got the same path',
    );
  }

  let configText: string;
  try {
    configText = await readFile(join(modelDir, 'config.json'), 'utf8');
  } catch (cause) {
    throw new CliError(
      'INPUT_MISSING',
      `quantize ${options.model}: expected a Hugging Face model folder with config.json, got none`,
      {
        hint: 'Point at a local snapshot (config.json, model.safetensors or sharded with an index).',
        cause,
      },
    );
  }
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(configText);
  } catch (cause) {
    throw new CliError(
      'INPUT_INVALID',
      `${options.model}/config.json: expected JSON, got a syntax error`,
      { cause },
    );
  }
  if (config.quantization_config !== undefined) {
    throw new CliError(
      'INPUT_INVALID',
      `quantize ${options.model}: expected an unquantized model, got one with quantization_config`,
      {
        hint: 'The model is already quantized; it can be used as it is.',
      },
    );
  }

  const outExists = await stat(outDir).then(
    () => true,
    () => false,
  );
  if (outExists && !options.force) {
    throw new CliError(
      'USAGE',
      `--out ${options.out}: expected a new folder, got an existing one`,
      {
        hint: 'Choose another folder or pass --force to replace it.',
      },
    );
  }

  const reader = await openSafetensorsDir(modelDir);
  const staging = join(dirname(outDir), `.${basename(outDir)}.${process.pid}.partial`);
  const result: QuantizeCommandResult = {
    model: options.model,
    out: options.out,
    quantType,
    blocksize,
    doubleQuant,
    quantizedWeights: 0,
    quantizedParameters: 0,
    copiedTensors: 0,
    inputBytes: 0,
    outputBytes: 0,
    files: [],
  };
  const progress = createProgress(io, {
    total: reader.names.length,
    label: 'quantize',
    json: options.json ?? false,
  });
  try {
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    const byShard = new Map<string, string[]>();
    for (const name of reader.names) {
      const shard = reader.shardOf(name) ?? 'model.safetensors';
      const list = byShard.get(shard) ?? [];
      list.push(name);
      byShard.set(shard, list);
    }
    const weightMap: Record<string, string> = {};
    for (const [shard, names] of byShard) {
      const tensors = new Map<string, TensorInput>();
      for (const name of names) {
        checkAborted(io);
        const entry: TensorEntry = await reader.read(name);
        result.inputBytes += entry.data.byteLength;
        const dtype = QUANT_INPUT_DTYPE[entry.dtype as keyof typeof QUANT_INPUT_DTYPE];
        if (LLAMA_PROJECTION_WEIGHT.test(name) && entry.shape.length === 2 && dtype !== undefined) {
          const q = quantize4bit(entry.data as Float32Array | Uint16Array, {
            shape: entry.shape,
            dtype,
            quantType,
            blocksize,
            doubleQuant,
          });
          for (const [key, record] of Object.entries(
            toBnbTensors(q, name.slice(0, -'.weight'.length)),
          )) {
            tensors.set(key, record);
          }
          result.quantizedWeights++;
          result.quantizedParameters += entry.data.length;
        } else {
          tensors.set(name, entry);
          result.copiedTensors++;
        }
        progress.increment(1, name);
      }
      for (const [key, t] of tensors) {
        weightMap[key] = shard;
        result.outputBytes += t.data.byteLength;
      }
      await writeSafetensors(join(staging, shard), tensors, reader.metadata ?? { format: 'pt' });
      result.files.push(shard);
    }
    if (reader.shards.length > 1 || reader.indexMetadata !== undefined) {
      const sortedMap = Object.fromEntries(
        Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : 1)),
      );
      await writeFileAtomic(
        join(staging, INDEX_FILE),
        `${JSON.stringify({ metadata: { total_size: result.outputBytes }, weight_map: sortedMap }, null, 2)}\n`,
      );
      result.files.push(INDEX_FILE);
    }
    await writeFileAtomic(
      join(staging, 'config.json'),
      withQuantizationConfig(
        configText,
        bnbQuantizationConfig({ quantType, doubleQuant, computeDtype }),
      ),
    );
    result.files.push('config.json');
    for (const name of (await readdir(modelDir)).sort()) {
      if (name === 'config.json' || name === INDEX_FILE || name.endsWith('.safetensors')) continue;
      if (/\.(bin|pt|pth|ckpt)$/.test(name) || name.startsWith('.')) continue;
      const from = join(modelDir, name);
      if (!(await stat(from)).isFile()) continue;
      await copyFile(from, join(staging, name));
      result.files.push(name);
    }
    checkAborted(io);
    if (outExists) await rm(outDir, { recursive: true, force: true });
    await rename(staging, outDir);
  } catch (error) {
    await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    throw error;
  } finally {
    progress.stop();
    await reader.close();
  }

  if (options.json) {
    io.stdout.write(stringifyReportJson(result));
  } else {
    io.stdout.write(
      `wrote ${options.out}: ${result.quantizedWeights} weights as ${quantType}${doubleQuant ? ' + double quant' : ''} (blocksize ${blocksize}), ${result.copiedTensors} tensors copied; tensor data ${(result.inputBytes / 2 ** 20).toFixed(1)} MiB → ${(result.outputBytes / 2 ** 20).toFixed(1)} MiB\n`,
    );
  }
  return result;
}
