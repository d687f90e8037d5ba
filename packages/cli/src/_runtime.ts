// The heavy runtime (TensorFlow.js, the trainer) is imported lazily, so `qlora compare` and
// `qlora inspect` start without loading an ML engine.
import type { LoadedModel } from '@qlora/trainer';
import { CliError } from './errors';
import type { CliIo } from './io';

/** A `--backend` value. */
export type BackendChoice = 'auto' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';

/** How the frozen base is held: dense, or quantized while loading. */
export interface QuantizeChoice {
  quantType: 'nf4' | 'fp4';
  blocksize: number;
  doubleQuant: boolean;
}

/**
 * Dequantized weights are cached in f32 when the whole model's projections take at most this
 * many bytes as f32 (`auto`). Tiny models (the embedded one: 3.4 MB) then skip the per-call
 * dequantization, which dominates on wasm; large models keep the QLoRA memory story.
 */
export const DEQUANT_CACHE_AUTO_BYTES = 64 * 1024 * 1024;

let started: string | undefined;

/**
 * Starts a TensorFlow.js backend once per process and says which one runs. `int8TensorCores`
 * asks webgpu for Dawn's subgroup matrices (W8A8 evaluation), `f16TensorCores` for them and
 * shader-f16 (f16 evaluation).
 */
export async function startBackend(
  requested: BackendChoice,
  io: CliIo,
  options: { int8TensorCores?: boolean; f16TensorCores?: boolean } = {},
): Promise<string> {
  const { initBackend } = await import('@qlora/trainer');
  if (started !== undefined) return started;
  const report = await initBackend(requested, options);
  started = report.backend;
  io.stderr.write(`backend: ${report.backend}\n`);
  return report.backend;
}

/**
 * Memoises `dequantize()` of every 4-bit base projection: the frozen base never changes, so the
 * cached f32 weight gives the same values as dequantizing on every call. Returns the f32 bytes
 * cached, 0 when skipped.
 */
export async function cacheDequantizedWeights(
  model: LoadedModel['model'],
  mode: 'auto' | 'on' | 'off',
): Promise<number> {
  if (mode === 'off') return 0;
  const { LoraLinear, Nf4Linear } = await import('@qlora/lora');
  const tf = await import('@tensorflow/tfjs-core');
  const bases: InstanceType<typeof Nf4Linear>[] = [];
  model.mapProjections((linear) => {
    const base = linear instanceof LoraLinear ? linear.base : linear;
    if (base instanceof Nf4Linear) bases.push(base);
    return linear;
  });
  const bytes = bases.reduce((sum, b) => sum + 4 * b.inFeatures * b.outFeatures, 0);
  if (bytes === 0 || (mode === 'auto' && bytes > DEQUANT_CACHE_AUTO_BYTES)) return 0;
  for (const base of bases) {
    const marked = base as unknown as { __qloraCached?: boolean };
    if (marked.__qloraCached) continue;
    const original = base.dequantize.bind(base);
    let cached: ReturnType<typeof original> | undefined;
    // Callers dispose what dequantize returns, so hand out clones (they share the data).
    base.dequantize = () => {
      cached ??= tf.keep(original());
      return tf.clone(cached);
    };
    marked.__qloraCached = true;
  }
  return bytes;
}

/** Options of {@link openModel}. */
export interface OpenModelOptions {
  backend: BackendChoice;
  /** Quantize the projections while loading (ignored for a bnb-4bit checkpoint, which stays 4-bit). */
  quantize?: QuantizeChoice | undefined;
  evalBatchSize?: number;
  maxGenTokens?: number;
  dequantCache?: 'auto' | 'on' | 'off';
  /** Start webgpu with subgroup matrices, for {@link useW8a8}. */
  int8TensorCores?: boolean;
  /** Start webgpu with f16 subgroup matrices, for {@link useF16}. */
  f16TensorCores?: boolean;
}

/**
 * The backend of a run with a tensor-core flag (`--w8a8`, `--f16`, `--f16-base`): webgpu, the
 * only way to the tensor cores (auto means webgpu then); any other explicit backend is a usage
 * error.
 */
export function tensorCoreBackend(flag: string | undefined, backend: BackendChoice): BackendChoice {
  if (flag === undefined) return backend;
  if (backend !== 'auto' && backend !== 'webgpu') {
    throw new CliError('USAGE', `${flag}: expected --backend webgpu (or auto), got ${backend}`, {
      hint: `The tensor cores are reached through WebGPU only; drop ${flag} on other backends.`,
    });
  }
  return 'webgpu';
}

// A conversion that needs tensor cores the device lacks: NOT_AVAILABLE, with the way back.
function withTensorCores<T>(flag: string, needs: string, instead: string, convert: () => T): T {
  try {
    return convert();
  } catch (error) {
    throw new CliError('NOT_AVAILABLE', `${flag}: ${(error as Error).message}`, {
      hint: `${flag} needs --backend webgpu on a GPU whose Dawn adapter offers ${needs} subgroup matrices (NVIDIA through Vulkan); drop ${flag} to ${instead} in exact f32.`,
      cause: error,
    });
  }
}

/**
 * Switches a loaded model to evaluation on tensor cores: `w8a8` (`--w8a8`, int8 weights and
 * activations) or `f16` (`--f16`). An adapter is merged first, then every projection and the
 * head are converted. A device without the subgroup matrices gives a NOT_AVAILABLE error that
 * says what it lacks.
 */
export async function useTensorCoreEvaluation(
  model: LoadedModel['model'],
  arithmetic: 'w8a8' | 'f16',
): Promise<{ converted: number }> {
  const { loraLayers, mergeAndUnload } = await import('@qlora/lora');
  const { useF16Inference, useInt8Inference } = await import('@qlora/trainer');
  if (loraLayers(model).length > 0) mergeAndUnload(model);
  return arithmetic === 'w8a8'
    ? withTensorCores('--w8a8', 'int8', 'evaluate', () => useInt8Inference(model))
    : withTensorCores('--f16', 'f16', 'evaluate', () => useF16Inference(model));
}

/**
 * Turns on f16 base products for training (`--f16-base`): the frozen base's `x·Wᵀ` and `dy·W`
 * on the f16 tensor cores. A device without f16 subgroup matrices gives NOT_AVAILABLE.
 */
export async function useF16Base(): Promise<void> {
  const { useF16BaseProducts } = await import('@qlora/lora');
  withTensorCores('--f16-base', 'f16', 'train', () => useF16BaseProducts(true));
}

/** Starts the backend and loads a Hugging Face folder with the trainer. */
export async function openModel(
  dir: string,
  options: OpenModelOptions,
  io: CliIo,
): Promise<LoadedModel> {
  await startBackend(options.backend, io, {
    int8TensorCores: options.int8TensorCores ?? false,
    f16TensorCores: options.f16TensorCores ?? false,
  });
  const { loadModel } = await import('@qlora/trainer');
  let loaded: LoadedModel;
  try {
    loaded = await loadModel(dir, {
      ...(options.quantize ? { quantize: options.quantize } : {}),
      evaluation: {
        batchSize: options.evalBatchSize ?? 16,
        ...(options.maxGenTokens === undefined ? {} : { maxGenTokens: options.maxGenTokens }),
      },
    });
  } catch (error) {
    const message = (error as Error).message ?? String(error);
    if (/ENOENT|no such file|expected .*config\.json/i.test(message)) {
      throw new CliError('INPUT_MISSING', `model folder ${dir}: ${message}`, {
        hint: 'Point --model (or models[].path) at a Hugging Face folder with config.json, *.safetensors and tokenizer.json.',
        cause: error,
      });
    }
    throw error;
  }
  await cacheDequantizedWeights(loaded.model, options.dequantCache ?? 'auto');
  return loaded;
}

/** The tokenizer of a loaded model, or a clear error when the folder has none. */
export function requireTokenizer(
  loaded: LoadedModel,
  dir: string,
): NonNullable<LoadedModel['tokenizer']> {
  if (loaded.tokenizer === null) {
    throw new CliError('INPUT_MISSING', `model folder ${dir}: expected tokenizer.json, got none`, {
      hint: 'Copy tokenizer.json (and tokenizer_config.json) from the model snapshot into the folder.',
    });
  }
  return loaded.tokenizer;
}
