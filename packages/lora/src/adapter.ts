import { type TensorEntry, toFloat32 } from '@qlora/safetensors';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { LoraError } from './errors';
import {
  forgetLoraSettings,
  injectLora,
  type LoraSettings,
  loraLayers,
  loraSettingsOf,
  removeLora,
  type TrainableParameters,
} from './inject';
import type { LoraTargetModel } from './linear';

/**
 * The config file name PEFT's `save_pretrained` uses.
 *
 * @example
 * ```ts
 * readFileSync(join(dir, ADAPTER_CONFIG_FILE), 'utf8');
 * ```
 */
export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
/**
 * The weights file name PEFT's `save_pretrained(safe_serialization=True)` uses.
 *
 * @example
 * ```ts
 * parseSafetensors(readFileSync(join(dir, ADAPTER_WEIGHTS_FILE)));
 * ```
 */
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

/** PEFT's key prefix: `PeftModel.base_model` (LoraModel) `.model` (the causal LM). */
const KEY_PREFIX = 'base_model.model.';

const nullish = <T extends z.ZodType>(schema: T) => schema.nullish();

/**
 * The `adapter_config.json` fields we act on, validated as PEFT would need them for a plain
 * LoRA on linear layers. Unknown keys pass through (PEFT drops them with a warning).
 *
 * @example
 * ```ts
 * adapterConfigSchema.safeParse({ peft_type: 'LORA', r: 8, lora_alpha: 8, target_modules: 'q_proj' }).success; // true
 * ```
 */
export const adapterConfigSchema = z
  .object({
    peft_type: z.literal('LORA'),
    r: z.number().int().positive(),
    lora_alpha: z.number().refine(Number.isFinite, 'a finite number'),
    lora_dropout: z.number().min(0).lt(1).default(0),
    target_modules: z.union([z.array(z.string()).nonempty(), z.string().min(1)]),
    use_rslora: z.boolean().default(false),
    fan_in_fan_out: z.literal(false).default(false),
    bias: z.literal('none').default('none'),
    modules_to_save: nullish(z.null()),
    use_dora: nullish(z.literal(false)),
    lora_bias: nullish(z.literal(false)),
    layers_to_transform: nullish(z.null()),
    layer_replication: nullish(z.null()),
    rank_pattern: nullish(z.object({}).strict()),
    alpha_pattern: nullish(z.object({}).strict()),
    init_lora_weights: z.union([z.boolean(), z.string()]).default(true),
    base_model_name_or_path: z.string().nullish(),
    task_type: z.string().nullish(),
  })
  .loose();

/**
 * A validated adapter config (PEFT field names).
 *
 * @example
 * ```ts
 * const config: AdapterConfig = parseAdapterConfig(json);
 * ```
 */
export type AdapterConfig = z.output<typeof adapterConfigSchema>;

const HINTS: Record<string, string> = {
  peft_type: 'only LoRA adapters are supported',
  fan_in_fan_out: 'Conv1D (GPT-2 style) adapters are not supported',
  bias: 'adapters that train biases are not supported',
  modules_to_save: 'adapters that also save full modules (e.g. lm_head) are not supported',
  use_dora: 'DoRA adapters are not supported',
  lora_bias: 'LoRA biases are not supported',
  rank_pattern: 'per-module ranks are not supported',
  alpha_pattern: 'per-module alphas are not supported',
  layers_to_transform: 'layer subsets are not supported',
  target_modules: 'a list of module names or one regular expression string',
};

/**
 * Validates a parsed `adapter_config.json` (r, lora_alpha, target_modules as a list or regex
 * string, use_rslora, and that fan_in_fan_out, bias, modules_to_save, DoRA, patterns are at
 * their plain-LoRA values). Throws {@link LoraError} `E_ADAPTER_CONFIG` naming the field.
 *
 * @example
 * ```ts
 * parseAdapterConfig({ peft_type: 'LORA', r: 8, lora_alpha: 16, target_modules: ['q_proj'] }).r; // 8
 * ```
 */
export function parseAdapterConfig(json: unknown): AdapterConfig {
  const result = adapterConfigSchema.safeParse(json);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue?.path.join('.') || '(root)';
  const got =
    json !== null && typeof json === 'object' && issue?.path.length
      ? JSON.stringify((json as Record<string, unknown>)[String(issue.path[0])])
      : JSON.stringify(json)?.slice(0, 80);
  const hint = HINTS[field];
  throw new LoraError(
    'E_ADAPTER_CONFIG',
    `adapter_config.json field ${field}: expected ${issue?.message ?? 'a valid value'}, got ${got ?? 'undefined'}${hint ? `. Hint: ${hint}.` : ''}`,
  );
}

/**
 * Options of {@link adapterConfig} and `saveAdapter`.
 *
 * @example
 * ```ts
 * const options: AdapterConfigOptions = { baseModelNameOrPath: 'unsloth/Llama-3.2-1B-Instruct' };
 * ```
 */
export interface AdapterConfigOptions {
  /** `base_model_name_or_path`, e.g. `unsloth/Llama-3.2-1B-Instruct`. Default null. */
  baseModelNameOrPath?: string | null;
}

function settingsOrThrow(model: LoraTargetModel, what: string): LoraSettings {
  const settings = loraSettingsOf(model);
  if (settings === undefined || loraLayers(model).length === 0) {
    throw new LoraError(
      'E_NO_ADAPTER',
      `${what}: expected a model with a LoRA adapter, got none. Hint: injectLora or loadAdapter first.`,
    );
  }
  return settings;
}

/**
 * The `adapter_config.json` object PEFT 0.21 writes for these settings: the full `LoraConfig`
 * field set, `inference_mode: true`, `peft_type: "LORA"`, `task_type: "CAUSAL_LM"`.
 *
 * @example
 * ```ts
 * adapterConfig(model, { baseModelNameOrPath: 'unsloth/Llama-3.2-1B-Instruct' }).r; // 16
 * ```
 */
export function adapterConfig(
  model: LoraTargetModel,
  options: AdapterConfigOptions = {},
): Record<string, unknown> {
  const s = settingsOrThrow(model, 'adapterConfig');
  return {
    alora_invocation_tokens: null,
    alpha_pattern: {},
    arrow_config: null,
    auto_mapping: null,
    base_model_name_or_path: options.baseModelNameOrPath ?? null,
    bias: 'none',
    corda_config: null,
    ensure_weight_tying: false,
    eva_config: null,
    exclude_modules: null,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: s.initLoraWeights,
    kasa_config: null,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: s.alpha,
    lora_bias: false,
    lora_dropout: s.dropout,
    lora_ga_config: null,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    monteclora_config: null,
    peft_type: 'LORA',
    peft_version: '0.21.0',
    qalora_group_size: 16,
    r: s.r,
    rank_pattern: {},
    revision: null,
    target_modules: typeof s.targetModules === 'string' ? s.targetModules : [...s.targetModules],
    target_parameters: null,
    task_type: 'CAUSAL_LM',
    trainable_token_indices: null,
    use_bdlora: null,
    use_dora: false,
    use_qalora: false,
    use_rslora: s.useRslora,
    velora_config: null,
  };
}

// Fields PEFT declares as float: Python's json writes them with a decimal point.
const FLOAT_FIELDS = new Set(['lora_dropout']);

/**
 * Formats a config as Python's `json.dumps(indent=2, sort_keys=True)` does (ASCII-escaped,
 * floats with a decimal point), so the file matches what PEFT writes.
 *
 * @example
 * ```ts
 * formatAdapterConfig({ r: 8, lora_dropout: 0 }); // '{\n  "lora_dropout": 0.0,\n  "r": 8\n}'
 * ```
 */
export function formatAdapterConfig(config: Record<string, unknown>): string {
  const write = (value: unknown, indent: string, key?: string): string => {
    if (value === null || value === undefined) return 'null';
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) return value > 0 ? 'Infinity' : value < 0 ? '-Infinity' : 'NaN';
      return key !== undefined && FLOAT_FIELDS.has(key) && Number.isInteger(value)
        ? `${value}.0`
        : String(value);
    }
    if (typeof value === 'string') {
      return JSON.stringify(value).replace(
        /[\u007f-\uffff]/g,
        (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
      );
    }
    if (typeof value === 'boolean') return String(value);
    const inner = `${indent}  `;
    if (Array.isArray(value)) {
      if (value.length === 0) return '[]';
      return `[\n${value.map((v) => inner + write(v, inner)).join(',\n')}\n${indent}]`;
    }
    const keys = Object.keys(value as object).sort();
    if (keys.length === 0) return '{}';
    const entries = keys.map(
      (k) =>
        `${inner}${write(k, inner)}: ${write((value as Record<string, unknown>)[k], inner, k)}`,
    );
    return `{\n${entries.join(',\n')}\n${indent}}`;
  };
  return write(config, '');
}

/**
 * One adapter tensor ready for a safetensors writer.
 *
 * @example
 * ```ts
 * const t: AdapterTensor = { dtype: 'F32', shape: [4, 32], data: new Float32Array(128) };
 * ```
 */
export interface AdapterTensor {
  dtype: 'F32';
  shape: number[];
  data: Float32Array;
}

/**
 * The adapter's tensors under PEFT's keys
 * (`base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight` `[r, in]`, `…lora_B.weight`
 * `[out, r]`), float32, ready for `writeSafetensors(path, tensors, { format: 'pt' })`.
 *
 * @example
 * ```ts
 * Object.keys(adapterTensors(model))[0]; // 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'
 * ```
 */
export function adapterTensors(model: LoraTargetModel): Record<string, AdapterTensor> {
  settingsOrThrow(model, 'adapterTensors');
  const out: Record<string, AdapterTensor> = {};
  for (const layer of loraLayers(model)) {
    for (const [suffix, variable] of Object.entries(layer.loraWeights())) {
      out[`${KEY_PREFIX}${layer.name}.${suffix}`] = {
        dtype: 'F32',
        shape: [...variable.shape],
        data: Float32Array.from(variable.dataSync() as Float32Array),
      };
    }
  }
  return out;
}

/**
 * What {@link applyAdapter} / `loadAdapter` return.
 *
 * @example
 * ```ts
 * const { config, parameters }: LoadedAdapter = await loadAdapter(model, dir);
 * ```
 */
export interface LoadedAdapter {
  config: AdapterConfig;
  parameters: TrainableParameters;
}

/**
 * The rank comes from the config file but sizes every LoRA matrix: check it against the lora_A
 * tensors actually present before anything is allocated, so `"r": 1099511627776` in a small
 * adapter fails at once instead of asking TensorFlow.js for terabytes.
 */
function checkRankAgainstTensors(r: number, tensors: Readonly<Record<string, TensorEntry>>): void {
  let seen = 0;
  for (const [key, entry] of Object.entries(tensors)) {
    if (!key.endsWith('.lora_A.weight')) continue;
    seen++;
    if (entry?.shape?.[0] !== r) {
      throw new LoraError(
        'E_ADAPTER_WEIGHTS',
        `adapter tensor ${key}: expected ${r} rows (adapter_config.json "r": ${r}), got shape [${entry?.shape?.join(', ')}]. Hint: the config and adapter_model.safetensors come from different adapters.`,
      );
    }
  }
  if (seen === 0) {
    throw new LoraError(
      'E_ADAPTER_WEIGHTS',
      'adapter tensors: expected lora_A/lora_B weights (keys ending in .lora_A.weight), got none. Hint: is adapter_model.safetensors empty or from another adapter type?',
    );
  }
}

/**
 * Injects an adapter described by a PEFT `adapter_config.json` object and sets A and B from its
 * tensors (F32, F16 or BF16; keys as PEFT saves them). Every targeted layer must find both
 * tensors with the right shapes and every tensor must belong to a targeted layer; otherwise
 * nothing is changed and {@link LoraError} `E_ADAPTER_WEIGHTS` says which key.
 *
 * @example
 * ```ts
 * const { tensors } = parseSafetensors(adapterBytes);
 * applyAdapter(model, JSON.parse(configText), tensors).parameters.trainable; // 4096
 * ```
 */
export function applyAdapter(
  model: LoraTargetModel,
  configJson: unknown,
  tensors: Readonly<Record<string, TensorEntry>>,
  options: { baseParameters?: number } = {},
): LoadedAdapter {
  const config = parseAdapterConfig(configJson);
  checkRankAgainstTensors(config.r, tensors);
  const initLoraWeights =
    config.init_lora_weights === 'gaussian' || typeof config.init_lora_weights === 'boolean'
      ? config.init_lora_weights
      : true;
  const parameters = injectLora(model, {
    r: config.r,
    alpha: config.lora_alpha,
    dropout: config.lora_dropout,
    targetModules: config.target_modules,
    useRslora: config.use_rslora,
    initLoraWeights,
    ...(options.baseParameters === undefined ? {} : { baseParameters: options.baseParameters }),
  });
  try {
    const layers = loraLayers(model);
    const expected = new Map<string, { variable: tf.Variable }>();
    for (const layer of layers) {
      for (const [suffix, variable] of Object.entries(layer.loraWeights())) {
        expected.set(`${KEY_PREFIX}${layer.name}.${suffix}`, { variable });
      }
    }
    const stray = Object.keys(tensors).find((k) => !expected.has(k));
    if (stray !== undefined) {
      throw new LoraError(
        'E_ADAPTER_WEIGHTS',
        `adapter tensor ${stray}: expected keys like ${expected.keys().next().value}, got a key no targeted module owns. Hint: only lora_A/lora_B of linear projections are supported.`,
      );
    }
    const values = new Map<tf.Variable, Float32Array>();
    for (const [key, { variable }] of expected) {
      const entry = tensors[key];
      if (entry === undefined) {
        throw new LoraError(
          'E_ADAPTER_WEIGHTS',
          `missing adapter tensor: expected ${key} [${variable.shape.join(', ')}], got none`,
        );
      }
      if (
        entry.shape.length !== variable.shape.length ||
        entry.shape.some((d, i) => d !== variable.shape[i])
      ) {
        throw new LoraError(
          'E_ADAPTER_WEIGHTS',
          `adapter tensor ${key}: expected shape [${variable.shape.join(', ')}], got [${entry.shape.join(', ')}]`,
        );
      }
      if (!['F32', 'F16', 'BF16'].includes(entry.dtype)) {
        throw new LoraError(
          'E_ADAPTER_WEIGHTS',
          `adapter tensor ${key}: expected dtype F32, F16 or BF16, got ${entry.dtype}`,
        );
      }
      values.set(variable, toFloat32(entry));
    }
    for (const [variable, data] of values) {
      tf.tidy(() => variable.assign(tf.tensor(data, variable.shape, 'float32')));
    }
  } catch (error) {
    removeLora(model);
    forgetLoraSettings(model);
    throw error;
  }
  return { config, parameters };
}
