import type * as tf from '@tensorflow/tfjs-core';
import { LoraError } from './errors';
import type { Linear, LoraTargetModel } from './linear';
import { type LoraInit, LoraLinear } from './lora-linear';

/**
 * The seven Llama projections, PEFT/Unsloth's usual targets (injectLora's default).
 *
 * @example
 * ```ts
 * injectLora(model, { targetModules: LLAMA_PROJECTIONS.filter((m) => m !== 'o_proj') });
 * ```
 */
export const LLAMA_PROJECTIONS: readonly string[] = [
  'q_proj',
  'k_proj',
  'v_proj',
  'o_proj',
  'gate_proj',
  'up_proj',
  'down_proj',
];

/**
 * Options of {@link injectLora} (PEFT `LoraConfig` names in comments).
 *
 * @example
 * ```ts
 * const options: InjectLoraOptions = { r: 16, alpha: 16, dropout: 0, seed: 3407 };
 * ```
 */
export interface InjectLoraOptions {
  /** `r`. Default 8 (PEFT's default). */
  r?: number;
  /** `lora_alpha`. Default 8 (PEFT's default). */
  alpha?: number;
  /** `lora_dropout`. Default 0. */
  dropout?: number;
  /**
   * `target_modules`: module names matched as PEFT does (exact name or `.`-suffix), or one
   * regular expression string that must match the whole module name
   * (e.g. `model\.layers\.\d+\.self_attn\.(q|v)_proj`). Default: all seven Llama projections.
   */
  targetModules?: readonly string[] | string;
  /** `use_rslora`: scale by `alpha/√r`. Default false. */
  useRslora?: boolean;
  /** Seed of the initialisation and dropout streams. Default 0. */
  seed?: number;
  /** `init_lora_weights`. Default true. */
  initLoraWeights?: LoraInit;
  /** Total parameters of the base, when the model has no `namedWeights()` to count. */
  baseParameters?: number;
}

/**
 * The resolved settings an adapter was injected with (what `adapter_config.json` records).
 *
 * @example
 * ```ts
 * const settings: LoraSettings | undefined = loraSettingsOf(model); // { r: 16, alpha: 16, … }
 * ```
 */
export interface LoraSettings {
  r: number;
  alpha: number;
  dropout: number;
  targetModules: readonly string[] | string;
  useRslora: boolean;
  seed: number;
  initLoraWeights: LoraInit;
}

/**
 * What {@link injectLora} reports, as PEFT's `print_trainable_parameters`.
 *
 * @example
 * ```ts
 * const { trainable, total, summary }: TrainableParameters = injectLora(model);
 * ```
 */
export interface TrainableParameters {
  trainable: number;
  /** Base plus adapter parameters (PEFT's "all params"). */
  total: number;
  /** 100 · trainable / total. */
  percent: number;
  /** `trainable params: 4,096 || all params: 30,880 || trainable%: 13.2642`. */
  summary: string;
  /** Names of the wrapped projections. */
  modules: string[];
}

const SETTINGS = new WeakMap<object, LoraSettings>();

/**
 * The settings `model` was injected with, or undefined.
 *
 * @example
 * ```ts
 * injectLora(model, { r: 8 });
 * loraSettingsOf(model)?.r; // 8
 * ```
 */
export function loraSettingsOf(model: LoraTargetModel): LoraSettings | undefined {
  return SETTINGS.get(model);
}

/** Drops the recorded settings (after the adapter is removed). */
export function forgetLoraSettings(model: LoraTargetModel): void {
  SETTINGS.delete(model);
}

/** Records settings for a model whose adapter was built elsewhere (loadAdapter). */
export function rememberLoraSettings(model: LoraTargetModel, settings: LoraSettings): void {
  SETTINGS.set(model, settings);
}

/**
 * Whether module `name` is targeted, as PEFT's `check_target_module_exists`: a list matches the
 * exact name or a `.`-suffix; a string is a regular expression matching the whole name.
 *
 * @example
 * ```ts
 * isTargetModule('model.layers.0.self_attn.q_proj', ['q_proj']); // true
 * isTargetModule('model.layers.0.self_attn.q_proj', '.*\\.(q|v)_proj'); // true
 * ```
 */
export function isTargetModule(name: string, targets: readonly string[] | string): boolean {
  if (typeof targets === 'string') return fullMatch(targets).test(name);
  return targets.some((t) => name === t || name.endsWith(`.${t}`));
}

function fullMatch(pattern: string): RegExp {
  try {
    return new RegExp(`^(?:${pattern})$`);
  } catch (error) {
    throw new LoraError(
      'E_OPTIONS',
      `targetModules: expected a valid regular expression, got ${JSON.stringify(pattern)} (${(error as Error).message})`,
      { cause: error },
    );
  }
}

/** Every projection of the model, in layer order (reads via `mapProjections` without replacing). */
export function projectionsOf(model: LoraTargetModel): Linear[] {
  const out: Linear[] = [];
  model.mapProjections((linear) => {
    out.push(linear);
    return linear;
  });
  return out;
}

/**
 * The adapter layers of a model, in layer order.
 *
 * @example
 * ```ts
 * loraLayers(model).length; // 7 × layers after injectLora(model)
 * ```
 */
export function loraLayers(model: LoraTargetModel): LoraLinear[] {
  return projectionsOf(model).filter((l): l is LoraLinear => l instanceof LoraLinear);
}

function formatInt(n: number): string {
  return n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/**
 * Counts parameters as PEFT's `get_nb_trainable_parameters`: adapter parameters are trainable,
 * the total adds every base weight once (4-bit projections count as in·out, tied weights once).
 *
 * @example
 * ```ts
 * countParameters(model).summary; // 'trainable params: 4,096 || all params: 30,880 || trainable%: 13.2642'
 * ```
 */
export function countParameters(
  model: LoraTargetModel,
  baseParameters?: number,
): TrainableParameters {
  const projections = projectionsOf(model);
  const layers = projections.filter((l): l is LoraLinear => l instanceof LoraLinear);
  const trainable = layers.reduce((sum, l) => sum + l.r * (l.inFeatures + l.outFeatures), 0);
  let base = baseParameters;
  if (base === undefined) {
    if (!model.namedWeights) {
      throw new LoraError(
        'E_OPTIONS',
        'parameter count: expected a model with namedWeights() or the baseParameters option, got neither',
      );
    }
    const prefixes = projections.map((l) => `${l.name}.`);
    base = projections.reduce((sum, l) => sum + l.inFeatures * l.outFeatures, 0);
    for (const [name, tensor] of model.namedWeights()) {
      if (!prefixes.some((p) => name.startsWith(p))) base += tensor.size;
    }
  }
  const total = base + trainable;
  const percent = total === 0 ? 0 : (100 * trainable) / total;
  return {
    trainable,
    total,
    percent,
    summary: `trainable params: ${formatInt(trainable)} || all params: ${formatInt(total)} || trainable%: ${percent.toFixed(4)}`,
    modules: layers.map((l) => l.name),
  };
}

/**
 * Wraps the targeted projections of `model` in {@link LoraLinear} layers (PEFT's
 * `get_peft_model` with a `LoraConfig`) and reports the trainable parameters. Projections are
 * matched by their Hugging Face name (`model.layers.0.self_attn.q_proj`).
 *
 * @example
 * ```ts
 * const report = injectLora(model, { r: 16, alpha: 16, seed: 3407 });
 * report.summary; // 'trainable params: 11,272,192 || all params: 1,247,086,592 || trainable%: 0.9039'
 * const optimizer = tf.train.adam(2e-4);
 * optimizer.minimize(() => loss(model), false, trainableVariables(model));
 * ```
 */
export function injectLora(
  model: LoraTargetModel,
  options: InjectLoraOptions = {},
): TrainableParameters {
  const settings: LoraSettings = {
    r: options.r ?? 8,
    alpha: options.alpha ?? 8,
    dropout: options.dropout ?? 0,
    targetModules: options.targetModules ?? LLAMA_PROJECTIONS,
    useRslora: options.useRslora ?? false,
    seed: options.seed ?? 0,
    initLoraWeights: options.initLoraWeights ?? true,
  };
  if (typeof settings.targetModules === 'string') fullMatch(settings.targetModules);
  else if (settings.targetModules.length === 0) {
    throw new LoraError('E_OPTIONS', 'targetModules: expected at least one module name, got []');
  }
  const existing = projectionsOf(model).find((l) => l instanceof LoraLinear);
  if (existing) {
    throw new LoraError(
      'E_ALREADY_INJECTED',
      `injectLora: expected a model without an adapter, got one on ${existing.name}. Hint: mergeAndUnload(model) or removeLora(model) first.`,
    );
  }
  const names = projectionsOf(model).map((l) => l.name);
  const targeted = names.filter((n) => isTargetModule(n, settings.targetModules));
  if (targeted.length === 0) {
    throw new LoraError(
      'E_NO_TARGETS',
      `target modules ${JSON.stringify(settings.targetModules)} not found in the base model: expected names such as ${names.slice(0, 3).join(', ')}, got no match`,
    );
  }
  const created: LoraLinear[] = [];
  try {
    model.mapProjections((linear) => {
      if (!isTargetModule(linear.name, settings.targetModules)) return linear;
      const lora = new LoraLinear(linear, {
        r: settings.r,
        alpha: settings.alpha,
        dropout: settings.dropout,
        useRslora: settings.useRslora,
        seed: settings.seed,
        init: settings.initLoraWeights,
      });
      created.push(lora);
      return lora;
    });
  } catch (error) {
    // Undo a half-done injection (an invalid option throws on the first layer).
    model.mapProjections((linear) => (linear instanceof LoraLinear ? linear.base : linear));
    for (const lora of created) {
      lora.loraA.dispose();
      lora.loraB.dispose();
    }
    throw error;
  }
  SETTINGS.set(model, settings);
  return countParameters(model, options.baseParameters);
}

/**
 * The trainable variables (every A and B), for an optimizer's `varList` or `tf.variableGrads`.
 *
 * @example
 * ```ts
 * const { grads } = tf.variableGrads(() => loss(model), trainableVariables(model));
 * ```
 */
export function trainableVariables(model: LoraTargetModel): tf.Variable[] {
  return loraLayers(model).flatMap((l) => [l.loraA, l.loraB]);
}

/**
 * Switches LoRA dropout on (training) or off (evaluation) in every adapter layer.
 *
 * @example
 * ```ts
 * setLoraTraining(model, true); // before training steps
 * setLoraTraining(model, false); // before evaluation
 * ```
 */
export function setLoraTraining(model: LoraTargetModel, training: boolean): void {
  for (const layer of loraLayers(model)) layer.training = training;
}

/**
 * Removes the adapter without merging (PEFT's `unload`): the original projections come back and
 * A/B are disposed.
 *
 * @example
 * ```ts
 * removeLora(model); // model is the plain base again
 * ```
 */
export function removeLora(model: LoraTargetModel): void {
  model.mapProjections((linear) => {
    if (!(linear instanceof LoraLinear)) return linear;
    linear.unmerge();
    linear.loraA.dispose();
    linear.loraB.dispose();
    return linear.base;
  });
  SETTINGS.delete(model);
}
