import { type QuantType, quantize4bit } from '@qlora/nf4';
import type * as tf from '@tensorflow/tfjs-core';
import { denseWeightOf } from './dense-linear';
import { LoraError } from './errors';
import { projectionsOf } from './inject';
import type { Linear, LoraTargetModel } from './linear';
import { LoraLinear } from './lora-linear';
import { Nf4Linear } from './nf4-linear';

/**
 * Options of {@link quantizeProjections} (transformers' `BitsAndBytesConfig` in QLoRA form).
 *
 * @example
 * ```ts
 * const options: QuantizeProjectionsOptions = { quantType: 'nf4', blocksize: 64, doubleQuant: true };
 * ```
 */
export interface QuantizeProjectionsOptions {
  /** Default `'nf4'`. */
  quantType?: QuantType;
  /** Default 64. */
  blocksize?: number;
  /** Quantize the absmax values again (bnb_4bit_use_double_quant). Default true. */
  doubleQuant?: boolean;
}

/**
 * What {@link quantizeProjections} reports.
 *
 * @example
 * ```ts
 * const { quantized, parameters }: QuantizeReport = quantizeProjections(model);
 * ```
 */
export interface QuantizeReport {
  /** Projections replaced. */
  quantized: number;
  /** Parameters now held in 4 bits. */
  parameters: number;
}

/**
 * Replaces every dense projection by an {@link Nf4Linear}, one tensor at a time (the f32 weight
 * is freed right after its layer is quantized), as transformers does when loading with
 * `load_in_4bit`: embeddings, norms and `lm_head` stay dense. Quantization is `@qlora/nf4`'s
 * `quantize4bit` (bitsandbytes' default-backend arithmetic). Layers already 4-bit are kept.
 *
 * @example
 * ```ts
 * const { model } = await loadModel('./Llama-3.2-1B');
 * quantizeProjections(model, { quantType: 'nf4', blocksize: 64, doubleQuant: true });
 * // { quantized: 112, parameters: 973078528 }
 * ```
 */
export function quantizeProjections(
  model: LoraTargetModel,
  options: QuantizeProjectionsOptions = {},
): QuantizeReport {
  const quantType = options.quantType ?? 'nf4';
  const blocksize = options.blocksize ?? 64;
  const doubleQuant = options.doubleQuant ?? true;
  let quantized = 0;
  let parameters = 0;
  model.mapProjections((linear) => {
    if (linear instanceof LoraLinear) {
      throw new LoraError(
        'E_ALREADY_INJECTED',
        `quantizeProjections: expected a model without an adapter, got one on ${linear.name}. Hint: quantize before injectLora.`,
      );
    }
    if (linear instanceof Nf4Linear) return linear;
    const weight = denseWeightOf(linear);
    if (weight === undefined) {
      throw new LoraError(
        'E_BASE_WEIGHT',
        `quantizeProjections ${linear.name}: expected a dense f32 [${linear.outFeatures}, ${linear.inFeatures}] weight, got ${Object.keys(linear.weights()).join(', ') || 'none'}`,
      );
    }
    const q = quantize4bit(weight.dataSync() as Float32Array, {
      shape: [linear.outFeatures, linear.inFeatures],
      blocksize,
      quantType,
      doubleQuant,
    });
    const nf4 = new Nf4Linear(linear.name, q);
    linear.dispose();
    quantized++;
    parameters += linear.inFeatures * linear.outFeatures;
    return nf4;
  });
  return { quantized, parameters };
}

/**
 * A tensor for a safetensors writer (bitsandbytes dtypes).
 *
 * @example
 * ```ts
 * const absmax: StateTensor = { dtype: 'U8', shape: [64], data: new Uint8Array(64) };
 * ```
 */
export interface StateTensor {
  dtype: 'F32' | 'U8';
  shape: number[];
  data: Float32Array | Uint8Array;
}

/**
 * The model's weights in the transformers/bitsandbytes 4-bit checkpoint layout: 4-bit
 * projections as `Linear4bit` saves them (`<p>.weight` U8 `[n/2, 1]`, `.weight.absmax`,
 * `.weight.quant_map`, `.weight.nested_absmax`, `.weight.nested_quant_map`,
 * `.weight.quant_state.bitsandbytes__nf4`), everything else dense F32 under its Hugging Face
 * name. An adapter's frozen base is saved (not the adapter). Write it with `writeSafetensors`
 * and add {@link bnbQuantizationConfig} to config.json.
 *
 * @example
 * ```ts
 * await writeSafetensors('out/model.safetensors', quantizedStateDict(model), { format: 'pt' });
 * ```
 */
export function quantizedStateDict(model: LoraTargetModel): Map<string, StateTensor> {
  if (!model.namedWeights) {
    throw new LoraError(
      'E_OPTIONS',
      'quantizedStateDict: expected a model with namedWeights(), got none',
    );
  }
  const projections = new Map<string, Linear>();
  for (const linear of projectionsOf(model)) {
    projections.set(linear.name, linear instanceof LoraLinear ? linear.base : linear);
  }
  const out = new Map<string, StateTensor>();
  const dense = (name: string, tensor: tf.Tensor): void => {
    out.set(name, {
      dtype: 'F32',
      shape: [...tensor.shape],
      data: Float32Array.from(tensor.dataSync() as Float32Array),
    });
  };
  for (const [name, tensor] of model.namedWeights()) {
    const owner = [...projections.keys()].find((p) => name.startsWith(`${p}.`));
    if (owner === undefined) dense(name, tensor);
  }
  for (const [name, linear] of projections) {
    if (linear instanceof Nf4Linear) {
      for (const [key, record] of Object.entries(linear.toBnbTensors())) {
        out.set(key, {
          dtype: record.dtype as 'F32' | 'U8',
          shape: [...record.shape],
          data: record.data as Float32Array | Uint8Array,
        });
      }
    } else {
      for (const [suffix, tensor] of Object.entries(linear.weights())) {
        dense(`${name}.${suffix}`, tensor);
      }
    }
  }
  return out;
}

/**
 * The `quantization_config` transformers writes into config.json for a QLoRA-style 4-bit model.
 *
 * @example
 * ```ts
 * config.quantization_config = bnbQuantizationConfig({ doubleQuant: true });
 * ```
 */
export function bnbQuantizationConfig(
  options: QuantizeProjectionsOptions & { computeDtype?: string } = {},
): Record<string, unknown> {
  return {
    _load_in_4bit: true,
    _load_in_8bit: false,
    bnb_4bit_compute_dtype: options.computeDtype ?? 'float32',
    bnb_4bit_quant_storage: 'uint8',
    bnb_4bit_quant_type: options.quantType ?? 'nf4',
    bnb_4bit_use_double_quant: options.doubleQuant ?? true,
    llm_int8_enable_fp32_cpu_offload: false,
    llm_int8_has_fp16_weight: false,
    llm_int8_skip_modules: null,
    llm_int8_threshold: 6.0,
    load_in_4bit: true,
    load_in_8bit: false,
    quant_method: 'bitsandbytes',
  };
}
