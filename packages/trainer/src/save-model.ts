import {
  bnbQuantizationConfig,
  type Linear,
  LoraLinear,
  Nf4Linear,
  quantizedStateDict,
} from '@qlora/lora';
import type { QuantType } from '@qlora/nf4';
import { f32ToBf16, f32ToF16, type TensorInput } from '@qlora/safetensors';
import type { LlamaConfig } from './config';
import { TrainerError } from './errors';
import type { LlamaModel } from './llama-model';

/**
 * Options of {@link saveModel} and {@link saveQuantized}.
 *
 * @example
 * ```ts
 * await saveModel(model, 'out/merged', { dtype: 'BF16', copyFrom: 'models/Llama-3.2-1B' });
 * ```
 */
export interface SaveModelOptions {
  /**
   * Dtype of the dense tensors ({@link saveModel} only; {@link saveQuantized} writes F32 as the
   * model holds them). Default `'F32'`.
   */
  dtype?: 'F32' | 'BF16' | 'F16';
  /** Copy the tokenizer and generation files (`tokenizer.json`, `generation_config.json`, …) from this folder. */
  copyFrom?: string;
  /** Write into a folder that already holds files (files of the same name are replaced). */
  overwrite?: boolean;
  /** `bnb_4bit_compute_dtype` written to `quantization_config` ({@link saveQuantized}). Default `'float32'`, what the model computes in. */
  computeDtype?: string;
}

/**
 * What {@link saveModel} and {@link saveQuantized} wrote.
 *
 * @example
 * ```ts
 * const { files, tensorBytes } = await saveQuantized(model, 'out/nf4');
 * // files: ['model.safetensors', 'config.json'], tensorBytes: 70283
 * ```
 */
export interface SavedModel {
  dir: string;
  /** File names written, in write order (config.json last). */
  files: string[];
  /** Bytes of tensor data in model.safetensors. */
  tensorBytes: number;
}

/** Files a Hugging Face model folder carries besides weights and config. */
const COMPANION_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'tokenizer.model',
  'chat_template.jinja',
  'generation_config.json',
];
const INDEX_FILE = 'model.safetensors.index.json';
const DTYPE_NAMES = { F32: 'float32', BF16: 'bfloat16', F16: 'float16' } as const;

/** transformers' `config.json` text: `json.dumps(indent=2, sort_keys=True)` and a newline. */
function configText(config: Record<string, unknown>): string {
  const sorted = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(sorted);
    if (value === null || typeof value !== 'object') return value;
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, sorted((value as Record<string, unknown>)[key])]),
    );
  };
  return `${JSON.stringify(sorted(config), null, 2)}\n`;
}

/** A config.json object for a model built from tensors (no `hfConfig`). */
function hfConfigOf(config: LlamaConfig): Record<string, unknown> {
  const scaling = config.ropeScaling;
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numHiddenLayers,
    num_attention_heads: config.numAttentionHeads,
    num_key_value_heads: config.numKeyValueHeads,
    head_dim: config.headDim,
    max_position_embeddings: config.maxPositionEmbeddings,
    rms_norm_eps: config.rmsNormEps,
    rope_parameters:
      scaling === null
        ? { rope_theta: config.ropeTheta, rope_type: 'default' }
        : {
            factor: scaling.factor,
            high_freq_factor: scaling.highFreqFactor,
            low_freq_factor: scaling.lowFreqFactor,
            original_max_position_embeddings: scaling.originalMaxPositionEmbeddings,
            rope_theta: config.ropeTheta,
            rope_type: 'llama3',
          },
    tie_word_embeddings: config.tieWordEmbeddings,
    hidden_act: 'silu',
    attention_bias: false,
    mlp_bias: false,
    bos_token_id: config.bosTokenId,
    eos_token_id: config.eosTokenIds.length === 1 ? config.eosTokenIds[0] : [...config.eosTokenIds],
    pad_token_id: config.padTokenId,
  };
}

function baseConfig(model: LlamaModel, dtype: string): Record<string, unknown> {
  const config = { ...(model.hfConfig ?? hfConfigOf(model.config)) };
  delete config.quantization_config;
  // transformers 5 writes `dtype`; 4.x wrote `torch_dtype`. Keep whichever the folder had.
  if ('torch_dtype' in config && !('dtype' in config)) config.torch_dtype = dtype;
  else config.dtype = dtype;
  return config;
}

function projections(model: LlamaModel): Linear[] {
  const out: Linear[] = [];
  model.mapProjections((linear) => {
    out.push(linear);
    return linear;
  });
  return out;
}

const nodeFs = () => import('node:fs/promises');

/**
 * Writes model.safetensors, the companion files and config.json (last) into `dir`. An absent or
 * empty `dir` is filled through a sibling temporary folder renamed into place, so a crash leaves
 * either nothing or the whole model; with `overwrite`, each file is replaced atomically and
 * config.json goes last.
 */
async function writeModelDir(
  dir: string,
  tensors: Map<string, TensorInput>,
  config: Record<string, unknown>,
  options: SaveModelOptions,
): Promise<SavedModel> {
  const { copyFile, mkdir, mkdtemp, readdir, rename, rm, rmdir } = await nodeFs();
  const { basename, dirname, join, resolve } = await import('node:path');
  const { writeFileAtomic, writeSafetensors } = await import('@qlora/safetensors/node');
  const target = resolve(dir);
  const existing = await readdir(target).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw new TrainerError(
      'E_MODEL_DIR',
      `cannot save into ${dir}: expected a folder, got ${error.message}`,
      { cause: error },
    );
  });
  if (existing !== null && existing.length > 0 && !options.overwrite) {
    throw new TrainerError(
      'E_MODEL_DIR',
      `cannot save into ${dir}: expected an absent or empty folder, got ${existing.length} entries. Hint: pass { overwrite: true } to replace the model files there.`,
    );
  }
  const companions: string[] = [];
  if (options.copyFrom !== undefined && resolve(options.copyFrom) !== target) {
    const available = await readdir(options.copyFrom).catch((error: Error) => {
      throw new TrainerError(
        'E_MODEL_DIR',
        `cannot copy tokenizer files: expected a folder at ${options.copyFrom}, got ${error.message}`,
        { cause: error },
      );
    });
    companions.push(...COMPANION_FILES.filter((file) => available.includes(file)));
  }
  const files = ['model.safetensors', ...companions, 'config.json'];
  let tensorBytes = 0;
  for (const tensor of tensors.values()) tensorBytes += tensor.data.byteLength;

  const writeInto = async (folder: string): Promise<void> => {
    await writeSafetensors(join(folder, 'model.safetensors'), tensors, { format: 'pt' });
    for (const file of companions) {
      await copyFile(join(options.copyFrom as string, file), join(folder, `.${file}.tmp`));
      await rename(join(folder, `.${file}.tmp`), join(folder, file));
    }
    // A sharded index would shadow the new single file on the next load.
    await rm(join(folder, INDEX_FILE), { force: true });
    await writeFileAtomic(join(folder, 'config.json'), configText(config));
  };

  try {
    if (existing !== null && existing.length > 0) {
      await writeInto(target);
    } else {
      await mkdir(dirname(target), { recursive: true });
      const staging = await mkdtemp(join(dirname(target), `.${basename(target)}.tmp-`));
      try {
        await writeInto(staging);
        if (existing !== null) await rmdir(target);
        await rename(staging, target);
      } catch (error) {
        await rm(staging, { recursive: true, force: true });
        throw error;
      }
    }
  } catch (error) {
    if (error instanceof TrainerError) throw error;
    throw new TrainerError(
      'E_SAVE',
      `cannot save the model into ${dir}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return { dir, files, tensorBytes };
}

/**
 * Saves a dense model as a Hugging Face folder transformers loads with
 * `LlamaForCausalLM.from_pretrained`: `model.safetensors` (every weight under its Hugging Face
 * name, tied embeddings once, in `dtype`), `config.json` (the loaded one, `quantization_config`
 * removed, `dtype` updated) and, with `copyFrom`, the tokenizer files. Every projection must be
 * dense: merge an adapter with `mergeAndUnload` first (4-bit bases merge into dense f32);
 * a 4-bit model is saved with {@link saveQuantized}. Atomic (see {@link SavedModel}).
 *
 * @example
 * ```ts
 * const { model } = await loadModel('models/Llama-3.2-1B', { quantize: { quantType: 'nf4' } });
 * await loadAdapter(model, 'runs/ft/adapter');
 * mergeAndUnload(model); // NF4 + B·A → dense f32 projections
 * await saveModel(model, 'out/merged', { dtype: 'BF16', copyFrom: 'models/Llama-3.2-1B' });
 * // { dir: 'out/merged', files: ['model.safetensors', 'tokenizer.json', …, 'config.json'], … }
 * ```
 */
export async function saveModel(
  model: LlamaModel,
  dir: string,
  options: SaveModelOptions = {},
): Promise<SavedModel> {
  const dtype = options.dtype ?? 'F32';
  if (!(dtype in DTYPE_NAMES)) {
    throw new TrainerError(
      'E_SAVE',
      `invalid dtype: expected F32, BF16 or F16, got ${JSON.stringify(dtype)}`,
    );
  }
  for (const linear of projections(model)) {
    if (linear instanceof LoraLinear || linear instanceof Nf4Linear) {
      throw new TrainerError(
        'E_SAVE',
        `cannot save ${linear.name} densely: expected a dense projection, got ${
          linear instanceof LoraLinear ? 'a LoRA layer' : 'a 4-bit Nf4Linear'
        }. Hint: ${
          linear instanceof LoraLinear
            ? 'mergeAndUnload(model) first, or save the adapter alone with saveAdapter.'
            : 'use saveQuantized, or merge an adapter with mergeAndUnload (which dequantizes).'
        }`,
      );
    }
  }
  const tensors = new Map<string, TensorInput>();
  for (const [name, tensor] of model.namedWeights()) {
    if (tensor.dtype !== 'float32') {
      throw new TrainerError(
        'E_SAVE',
        `cannot save ${name}: expected a float32 tensor, got ${tensor.dtype}`,
      );
    }
    const values = tensor.dataSync() as Float32Array;
    const data = dtype === 'F32' ? values : dtype === 'BF16' ? f32ToBf16(values) : f32ToF16(values);
    tensors.set(name, { dtype, shape: [...tensor.shape], data });
  }
  return writeModelDir(dir, tensors, baseConfig(model, DTYPE_NAMES[dtype]), options);
}

/**
 * Saves a 4-bit model as transformers + bitsandbytes save one (`save_pretrained` of a
 * `load_in_4bit` model): projections in the `Linear4bit` state-dict layout (`<p>.weight` U8,
 * `.absmax`, `.quant_map`, nested state, `.quant_state.bitsandbytes__nf4|fp4`), embeddings,
 * norms and `lm_head` as F32, and config.json with transformers' `quantization_config`.
 * {@link loadModel} and `from_pretrained` read it back without requantizing. Every projection
 * must be 4-bit (an `Nf4Linear`, or a LoRA layer over one: only its frozen base is written; save
 * the adapter with `saveAdapter`), all of one quant type and double-quant setting. Atomic.
 *
 * @example
 * ```ts
 * const { model } = await loadModel('models/Llama-3.2-1B', { quantize: { quantType: 'nf4' } });
 * await saveQuantized(model, 'models/Llama-3.2-1B-nf4', { copyFrom: 'models/Llama-3.2-1B' });
 * (await loadModel('models/Llama-3.2-1B-nf4')).quantization?.source; // 'checkpoint'
 * ```
 */
export async function saveQuantized(
  model: LlamaModel,
  dir: string,
  options: SaveModelOptions = {},
): Promise<SavedModel> {
  let kind: { quantType: QuantType; doubleQuant: boolean; from: string } | undefined;
  for (const linear of projections(model)) {
    const base = linear instanceof LoraLinear ? linear.base : linear;
    if (!(base instanceof Nf4Linear)) {
      throw new TrainerError(
        'E_SAVE',
        `cannot save ${linear.name} as 4-bit: expected an Nf4Linear projection, got a dense one${
          linear instanceof LoraLinear ? ' (a merged LoRA layer)' : ''
        }. Hint: load with { quantize } (or quantizeProjections) first, or save a dense model with saveModel.`,
      );
    }
    const current = {
      quantType: base.state.quantType,
      doubleQuant: base.state.nested !== undefined,
      from: linear.name,
    };
    kind ??= current;
    if (current.quantType !== kind.quantType || current.doubleQuant !== kind.doubleQuant) {
      throw new TrainerError(
        'E_SAVE',
        `mixed 4-bit settings: expected every projection like ${kind.from} (${kind.quantType}, double quant ${kind.doubleQuant}), got ${current.quantType}, double quant ${current.doubleQuant} on ${linear.name}. Hint: one quantization_config describes the whole model.`,
      );
    }
  }
  if (kind === undefined) {
    throw new TrainerError('E_SAVE', 'cannot save as 4-bit: expected projections, got none');
  }
  const tensors = new Map<string, TensorInput>();
  for (const [name, record] of quantizedStateDict(model)) tensors.set(name, record);
  const config = baseConfig(model, 'float32');
  config.quantization_config = bnbQuantizationConfig({
    quantType: kind.quantType,
    doubleQuant: kind.doubleQuant,
    computeDtype: options.computeDtype ?? 'float32',
  });
  return writeModelDir(dir, tensors, config, options);
}
