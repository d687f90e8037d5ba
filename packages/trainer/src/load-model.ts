import {
  type Linear,
  Nf4Linear,
  nf4LinearFromBnbTensors,
  type QuantizeProjectionsOptions,
} from '@qlora/lora';
import { type QuantType, quantize4bit, type TensorRecord } from '@qlora/nf4';
import { type TensorEntry, toFloat32 } from '@qlora/safetensors';
import type { SafetensorsDirReader } from '@qlora/safetensors/node';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { type LlamaConfig, parseLlamaConfig } from './config';
import { TrainerError } from './errors';
import { HfTokenizer, type HfTokenizerOptions } from './hf-tokenizer';
import type { EvaluationOptions } from './language-model';
import { LlamaModel, projectionShapes } from './llama-model';

/**
 * Options of {@link loadModel}.
 *
 * @example
 * ```ts
 * await loadModel('./model', { tokenizerDir: './tok', evaluation: { batchSize: 4 } });
 * ```
 */
export interface LoadModelOptions {
  /** Folder holding tokenizer.json / tokenizer_config.json when not beside the weights. */
  tokenizerDir?: string;
  /** Skip the tokenizer (the model then works on ids only). */
  skipTokenizer?: boolean;
  tokenizer?: HfTokenizerOptions;
  /** Batching and truncation of the model's `LanguageModel` methods. */
  evaluation?: EvaluationOptions;
  /**
   * Quantize the seven linear projections of every layer to 4 bits while loading, one weight at
   * a time (transformers' `BitsAndBytesConfig(load_in_4bit=True, …)`); embeddings, norms and
   * `lm_head` stay dense. Same values as `@qlora/lora`'s `quantizeProjections` after a dense
   * load. On a pre-quantized checkpoint the options must agree with its `quantization_config`.
   */
  quantize?: QuantizeProjectionsOptions;
}

/**
 * How the 4-bit projections of a loaded model were obtained.
 *
 * @example
 * ```ts
 * const { quantization } = await loadModel('./Llama-3.2-1B-bnb-4bit');
 * // { source: 'checkpoint', quantType: 'nf4', blocksize: 64, doubleQuant: true, projections: 112 }
 * ```
 */
export interface ModelQuantization {
  /** `'checkpoint'`: read pre-quantized (bitsandbytes layout); `'load'`: quantized while loading. */
  source: 'checkpoint' | 'load';
  quantType: QuantType;
  blocksize: number;
  doubleQuant: boolean;
  /** Number of 4-bit projections. */
  projections: number;
}

/**
 * What {@link loadModel} returns.
 *
 * @example
 * ```ts
 * const { model, config, tokenizer, unusedWeights } = await loadModel('./model');
 * ```
 */
export interface LoadedModel {
  model: LlamaModel;
  config: LlamaConfig;
  /** null when `skipTokenizer` is set or the folder has no tokenizer.json. */
  tokenizer: HfTokenizer | null;
  /** Checkpoint tensors the model does not use (e.g. `rotary_emb.inv_freq` of old exports). */
  unusedWeights: string[];
  /** Bytes of backend memory held by the weights ({@link LlamaModel.weightBytes}). */
  weightBytes: number;
  /** null for a dense model. */
  quantization: ModelQuantization | null;
}

const PICKLE_FILES = /\.(bin|pt|pth|ckpt)$/;

// Node modules are imported lazily so the package still loads in a browser.
const nodeFs = () => import('node:fs/promises');

async function listDir(dir: string): Promise<string[]> {
  const { readdir } = await nodeFs();
  try {
    return await readdir(dir);
  } catch (error) {
    throw new TrainerError(
      'E_MODEL_DIR',
      `cannot read model folder: expected a directory, got ${dir} (${(error as Error).message})`,
      {
        cause: error,
      },
    );
  }
}

// transformers' BitsAndBytesConfig.to_dict() keys we act on; the rest (thresholds, offload) only
// concern 8-bit or device placement and are ignored.
const quantizationConfigSchema = z
  .object({
    quant_method: z.string(),
    load_in_4bit: z.boolean().optional(),
    _load_in_4bit: z.boolean().optional(),
    load_in_8bit: z.boolean().optional(),
    _load_in_8bit: z.boolean().optional(),
    // transformers' defaults: fp4, no double quantization.
    bnb_4bit_quant_type: z.enum(['nf4', 'fp4']).default('fp4'),
    bnb_4bit_use_double_quant: z.boolean().default(false),
    llm_int8_skip_modules: z.array(z.string()).nullish(),
  })
  .loose();

interface CheckpointQuantization {
  quantType: QuantType;
  doubleQuant: boolean;
  skipModules: string[];
}

function parseQuantizationConfig(json: unknown): CheckpointQuantization {
  const parsed = quantizationConfigSchema.safeParse(json);
  if (!parsed.success) {
    throw new TrainerError(
      'E_CONFIG',
      `invalid quantization_config in config.json: expected transformers' BitsAndBytesConfig, got:\n${z.prettifyError(parsed.error)}`,
      { cause: parsed.error },
    );
  }
  const q = parsed.data;
  if (q.quant_method !== 'bitsandbytes') {
    throw new TrainerError(
      'E_CONFIG_UNSUPPORTED',
      `unsupported quantization_config: expected quant_method "bitsandbytes", got ${JSON.stringify(q.quant_method)}. Hint: GPTQ/AWQ/… checkpoints are not readable; load the dense model with { quantize } instead.`,
    );
  }
  if (q.load_in_8bit === true || q._load_in_8bit === true) {
    throw new TrainerError(
      'E_CONFIG_UNSUPPORTED',
      'unsupported quantization_config: expected a 4-bit bitsandbytes checkpoint (load_in_4bit), got load_in_8bit (LLM.int8). Hint: load the dense model with { quantize: { quantType: "nf4" } } instead.',
    );
  }
  if (q.load_in_4bit !== true && q._load_in_4bit !== true) {
    throw new TrainerError(
      'E_CONFIG',
      'invalid quantization_config: expected load_in_4bit true, got neither load_in_4bit nor load_in_8bit',
    );
  }
  return {
    quantType: q.bnb_4bit_quant_type,
    doubleQuant: q.bnb_4bit_use_double_quant,
    skipModules: q.llm_int8_skip_modules ?? [],
  };
}

// Quantization options filled with quantizeProjections' defaults, checked before any reading.
function quantizeOptions(
  options: QuantizeProjectionsOptions,
): Required<QuantizeProjectionsOptions> {
  const quantType = options.quantType ?? 'nf4';
  const blocksize = options.blocksize ?? 64;
  const doubleQuant = options.doubleQuant ?? true;
  if (quantType !== 'nf4' && quantType !== 'fp4') {
    throw new TrainerError(
      'E_QUANTIZATION',
      `invalid quantize.quantType: expected "nf4" or "fp4", got ${JSON.stringify(quantType)}`,
    );
  }
  if (![32, 64, 128, 256, 512, 1024, 2048, 4096].includes(blocksize)) {
    throw new TrainerError(
      'E_QUANTIZATION',
      `invalid quantize.blocksize: expected one of 32, 64, …, 4096, got ${blocksize}. Hint: QLoRA and transformers use 64.`,
    );
  }
  return { quantType, blocksize, doubleQuant };
}

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

// The projection a checkpoint tensor belongs to (`<proj>.weight` or `<proj>.weight.<state>`).
function projectionOf(name: string, projections: Map<string, unknown>): string | undefined {
  const at = name.indexOf('.weight');
  if (at < 0) return undefined;
  const prefix = name.slice(0, at);
  const rest = name.slice(at + '.weight'.length);
  return projections.has(prefix) && (rest === '' || rest.startsWith('.')) ? prefix : undefined;
}

// transformers keeps a module dense when one of llm_int8_skip_modules is in its name.
const isSkipped = (name: string, skipModules: string[]): boolean =>
  skipModules.some((module) => name.includes(module));

async function denseTensor(reader: SafetensorsDirReader, name: string): Promise<tf.Tensor> {
  const entry = await reader.read(name);
  if (!FLOAT_DTYPES.has(entry.dtype)) {
    throw new TrainerError(
      'E_WEIGHT_DTYPE',
      `unsupported weight dtype for ${name}: expected F32, F16 or BF16, got ${entry.dtype}. Hint: only the seven projections may be 4-bit (transformers keeps lm_head dense).`,
    );
  }
  return tf.tensor(toFloat32(entry), entry.shape, 'float32');
}

/** Reads and quantizes one projection: the f32 weight lives only inside this call. */
async function quantizedProjection(
  reader: SafetensorsDirReader,
  name: string,
  shape: [number, number],
  options: Required<QuantizeProjectionsOptions>,
): Promise<Linear | undefined> {
  const key = `${name}.weight`;
  if (!reader.has(key)) return undefined; // fromTensors names the missing weight
  const entry = await reader.read(key);
  if (!FLOAT_DTYPES.has(entry.dtype)) {
    throw new TrainerError(
      'E_QUANTIZATION',
      `cannot quantize ${key}: expected a float weight, got ${entry.dtype}. Hint: a pre-quantized checkpoint needs quantization_config in config.json.`,
    );
  }
  if (entry.shape.length !== 2 || entry.shape[0] !== shape[0] || entry.shape[1] !== shape[1]) {
    throw new TrainerError(
      'E_WEIGHT_SHAPE',
      `wrong weight shape for ${key}: expected [${shape.join(', ')}], got [${entry.shape.join(', ')}]`,
    );
  }
  return new Nf4Linear(name, quantize4bit(toFloat32(entry), { shape, ...options }));
}

/** Builds one projection of a pre-quantized bitsandbytes checkpoint, checked against its config. */
async function checkpointProjection(
  reader: SafetensorsDirReader,
  name: string,
  keys: string[],
  expected: CheckpointQuantization,
): Promise<Linear | undefined> {
  const hasState = keys.some((key) => key.startsWith(`${name}.weight.quant_state.`));
  if (!hasState) {
    if (keys.includes(`${name}.weight`) && isSkipped(name, expected.skipModules)) return undefined;
    throw new TrainerError(
      'E_QUANTIZED_WEIGHTS',
      `${name}: expected a bitsandbytes 4-bit weight (${name}.weight.quant_state.bitsandbytes__${expected.quantType}, as quantization_config says), got ${keys.length > 0 ? keys.join(', ') : 'no tensors'}`,
    );
  }
  const tensors: Record<string, TensorRecord> = {};
  for (const key of keys) {
    const entry: TensorEntry = await reader.read(key);
    tensors[key] = entry as TensorRecord;
  }
  let linear: Nf4Linear;
  try {
    linear = nf4LinearFromBnbTensors(tensors, name);
  } catch (error) {
    throw new TrainerError(
      'E_QUANTIZED_WEIGHTS',
      `invalid 4-bit weight ${name}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const { quantType, nested } = linear.state;
  if (quantType !== expected.quantType || (nested !== undefined) !== expected.doubleQuant) {
    linear.dispose();
    throw new TrainerError(
      'E_QUANTIZED_WEIGHTS',
      `${name} disagrees with quantization_config: expected bnb_4bit_quant_type ${expected.quantType}, double quant ${expected.doubleQuant}, got ${quantType}, double quant ${nested !== undefined} in its quant_state. Hint: the config.json does not belong to these weights.`,
    );
  }
  return linear;
}

/**
 * Loads a Hugging Face Llama-family checkpoint folder: `config.json` (validated),
 * `model.safetensors` or a sharded `model.safetensors.index.json` (read tensor by tensor,
 * BF16/F16 widened to f32), tied embeddings, and `tokenizer.json` + `tokenizer_config.json`.
 * Pickled weights (`.bin`, `.pt`) are refused. Uses the current tfjs backend
 * (call {@link initBackend} first).
 *
 * 4-bit: with `quantize`, each projection weight is read, quantized with `@qlora/nf4` and
 * dropped before the next one is read, so the f32 model never exists in memory. A folder whose
 * config.json has a bitsandbytes `quantization_config` (`load_in_4bit`) is read as written by
 * transformers/bitsandbytes (`<proj>.weight` U8 + `.absmax`, `.quant_map`, nested state,
 * `.quant_state.bitsandbytes__nf4|fp4`) straight into `Nf4Linear` layers; each weight's state
 * must agree with the config. 8-bit checkpoints are refused.
 *
 * @example
 * ```ts
 * await initBackend('auto');
 * const { model, tokenizer } = await loadModel('./TinyLlama-1.1B-Chat-v1.0');
 * await model.generateGreedy(tokenizer!.encode('Once upon a time'), 16);
 * const q = await loadModel('./Llama-3.2-1B', { quantize: { quantType: 'nf4', blocksize: 64, doubleQuant: true } });
 * q.weightBytes; // ≈ 1.6e9 (embeddings and head stay f32) instead of ≈ 4.9e9
 * ```
 */
export async function loadModel(dir: string, options: LoadModelOptions = {}): Promise<LoadedModel> {
  const { readFile } = await nodeFs();
  const { join } = await import('node:path');
  const { openSafetensorsDir } = await import('@qlora/safetensors/node');
  const files = await listDir(dir);
  if (!files.includes('config.json')) {
    throw new TrainerError(
      'E_MODEL_DIR',
      `missing config.json: expected ${join(dir, 'config.json')}, got ${files.join(', ') || 'an empty folder'}`,
    );
  }
  const hfConfig = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const config = parseLlamaConfig(hfConfig);
  const stored =
    hfConfig.quantization_config === undefined || hfConfig.quantization_config === null
      ? null
      : parseQuantizationConfig(hfConfig.quantization_config);
  const onLoad = options.quantize === undefined ? null : quantizeOptions(options.quantize);
  if (
    stored !== null &&
    onLoad !== null &&
    (onLoad.quantType !== stored.quantType || onLoad.doubleQuant !== stored.doubleQuant)
  ) {
    throw new TrainerError(
      'E_QUANTIZATION',
      `conflicting quantize option: the checkpoint is already ${stored.quantType} (double quant ${stored.doubleQuant}), got a request for ${onLoad.quantType} (double quant ${onLoad.doubleQuant}). Hint: drop the quantize option to use the stored 4-bit weights, or load the dense model.`,
    );
  }
  const hasSafetensors = files.some((f) => f.endsWith('.safetensors'));
  if (!hasSafetensors) {
    const pickles = files.filter((f) => PICKLE_FILES.test(f));
    throw new TrainerError(
      'E_PICKLE',
      `no safetensors weights: expected model.safetensors or model.safetensors.index.json in ${dir}, got ${
        pickles.length > 0 ? `pickled weights (${pickles.join(', ')})` : 'none'
      }. Hint: pickles can run code when loaded and are never read; convert with transformers (save_pretrained(..., safe_serialization=True)) to safetensors.`,
    );
  }
  const reader = await openSafetensorsDir(dir);
  const shapes = projectionShapes(config);
  const tensors = new Map<string, tf.Tensor>();
  const projections = new Map<string, Linear>();
  const projectionKeys = new Map<string, string[]>();
  let model: LlamaModel;
  try {
    for (const name of reader.names) {
      const owner = projectionOf(name, shapes);
      if (owner !== undefined && (stored !== null || onLoad !== null)) {
        projectionKeys.set(owner, [...(projectionKeys.get(owner) ?? []), name]);
      } else {
        tensors.set(name, await denseTensor(reader, name));
      }
    }
    for (const [name, shape] of shapes) {
      const built =
        stored !== null
          ? await checkpointProjection(reader, name, projectionKeys.get(name) ?? [], stored)
          : onLoad !== null
            ? await quantizedProjection(reader, name, shape, onLoad)
            : undefined;
      if (built !== undefined) projections.set(name, built);
      else if (projectionKeys.has(name) && reader.has(`${name}.weight`)) {
        // A dense projection (skipped module) of a quantized checkpoint.
        tensors.set(`${name}.weight`, await denseTensor(reader, `${name}.weight`));
      }
    }
    model = LlamaModel.fromTensors(
      config,
      (name) => tensors.get(name),
      (name) => projections.get(name),
    );
  } catch (error) {
    for (const tensor of tensors.values()) tensor.dispose();
    for (const linear of projections.values()) linear.dispose();
    throw error;
  } finally {
    await reader.close();
  }
  const used = new Set(model.namedWeights().keys());
  const unusedWeights = [...tensors.keys()].filter((name) => !used.has(name));
  for (const name of unusedWeights) tensors.get(name)?.dispose();
  for (const [name, keys] of projectionKeys) {
    if (!projections.has(name) && !used.has(`${name}.weight`)) unusedWeights.push(...keys);
  }

  let tokenizer: HfTokenizer | null = null;
  if (!options.skipTokenizer) {
    const tokenizerDir = options.tokenizerDir ?? dir;
    const tokenizerFiles = tokenizerDir === dir ? files : await listDir(tokenizerDir);
    if (tokenizerFiles.includes('tokenizer.json')) {
      tokenizer = await HfTokenizer.fromDir(tokenizerDir, options.tokenizer);
    } else if (options.tokenizerDir !== undefined) {
      throw new TrainerError(
        'E_TOKENIZER',
        `missing tokenizer.json: expected it in ${tokenizerDir}, got ${tokenizerFiles.join(', ')}`,
      );
    }
  }
  model.tokenizer = tokenizer;
  model.name = dir;
  model.evaluation = { ...options.evaluation };
  model.hfConfig = hfConfig;
  const nf4 = [...projections.values()].filter((p): p is Nf4Linear => p instanceof Nf4Linear);
  const first = nf4[0];
  const quantization: ModelQuantization | null =
    first === undefined
      ? null
      : {
          source: stored !== null ? 'checkpoint' : 'load',
          quantType: first.state.quantType,
          blocksize: first.state.blocksize,
          doubleQuant: first.state.nested !== undefined,
          projections: nf4.length,
        };
  return {
    model,
    config,
    tokenizer,
    unusedWeights,
    weightBytes: model.weightBytes(),
    quantization,
  };
}
