import { toFloat32 } from '@qlora/safetensors';
import * as tf from '@tensorflow/tfjs-core';
import { type LlamaConfig, parseLlamaConfig } from './config';
import { TrainerError } from './errors';
import { HfTokenizer, type HfTokenizerOptions } from './hf-tokenizer';
import type { EvaluationOptions } from './language-model';
import { LlamaModel } from './llama-model';

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

/**
 * Loads a Hugging Face Llama-family checkpoint folder: `config.json` (validated),
 * `model.safetensors` or a sharded `model.safetensors.index.json` (read tensor by tensor,
 * BF16/F16 widened to f32), tied embeddings, and `tokenizer.json` + `tokenizer_config.json`.
 * Pickled weights (`.bin`, `.pt`) are refused. Uses the current tfjs backend
 * (call {@link initBackend} first).
 *
 * @example
 * ```ts
 * await initBackend('auto');
 * const { model, tokenizer } = await loadModel('./TinyLlama-1.1B-Chat-v1.0');
 * await model.generateGreedy(tokenizer!.encode('Once upon a time'), 16);
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
  const config = parseLlamaConfig(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')));
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
  const tensors = new Map<string, tf.Tensor>();
  let model: LlamaModel;
  try {
    for (const name of reader.names) {
      const entry = await reader.read(name);
      tensors.set(name, tf.tensor(toFloat32(entry), entry.shape, 'float32'));
    }
    model = LlamaModel.fromTensors(config, (name) => tensors.get(name));
  } catch (error) {
    for (const tensor of tensors.values()) tensor.dispose();
    throw error;
  } finally {
    await reader.close();
  }
  const used = new Set(model.namedWeights().keys());
  const unusedWeights = [...tensors.keys()].filter((name) => !used.has(name));
  for (const name of unusedWeights) tensors.get(name)?.dispose();

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
  return { model, config, tokenizer, unusedWeights };
}
