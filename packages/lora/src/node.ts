import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseSafetensors, type TensorEntry } from '@qlora/safetensors';
import { writeFileAtomic, writeSafetensors } from '@qlora/safetensors/node';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  type AdapterConfigOptions,
  adapterConfig,
  adapterTensors,
  applyAdapter,
  formatAdapterConfig,
  type LoadedAdapter,
} from './adapter';
import { LoraError } from './errors';
import type { LoraTargetModel } from './linear';

async function writeTextAtomic(path: string, text: string): Promise<void> {
  try {
    await writeFileAtomic(path, text);
  } catch (error) {
    // Report the file-system failure itself (the SafetensorsError wrapping it is about another package).
    const cause = ((error as Error).cause ?? error) as Error;
    throw new LoraError('E_IO', `cannot write ${path}: ${cause.message}`, { cause: error });
  }
}

/**
 * Saves the adapter as PEFT's `save_pretrained(dir, safe_serialization=True)` does:
 * `adapter_config.json` (PEFT 0.21's field set, sorted, indent 2) and
 * `adapter_model.safetensors` (F32 lora_A/lora_B under `base_model.model.…` keys,
 * `__metadata__ {"format": "pt"}`). Both files are written atomically (temp file + rename).
 * The folder is created if needed.
 *
 * @example
 * ```ts
 * import { saveAdapter } from '@qlora/lora/node';
 * await saveAdapter(model, './outputs/adapter', { baseModelNameOrPath: 'unsloth/Llama-3.2-1B-Instruct' });
 * // PeftModel.from_pretrained(base, './outputs/adapter') loads it
 * ```
 */
export async function saveAdapter(
  model: LoraTargetModel,
  dir: string,
  options: AdapterConfigOptions = {},
): Promise<void> {
  const config = formatAdapterConfig(adapterConfig(model, options));
  const tensors = adapterTensors(model);
  await mkdir(dir, { recursive: true });
  await writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), tensors, { format: 'pt' });
  await writeTextAtomic(join(dir, ADAPTER_CONFIG_FILE), config);
}

/**
 * Loads a PEFT adapter folder (`adapter_config.json` validated, `adapter_model.safetensors` in
 * F32/F16/BF16) into `model`: injects LoRA layers on the configured targets and sets A and B.
 *
 * @example
 * ```ts
 * import { loadAdapter } from '@qlora/lora/node';
 * const { config, parameters } = await loadAdapter(model, './bunnycore-lora');
 * parameters.summary; // 'trainable params: 11,272,192 || all params: …'
 * ```
 */
export async function loadAdapter(
  model: LoraTargetModel,
  dir: string,
  options: { baseParameters?: number } = {},
): Promise<LoadedAdapter> {
  const read = async (name: string): Promise<Buffer> => {
    try {
      return await readFile(join(dir, name));
    } catch (error) {
      const hint =
        name === ADAPTER_WEIGHTS_FILE
          ? ' Hint: legacy adapter_model.bin (pickle) is not read; re-save with safe_serialization=True.'
          : '';
      throw new LoraError(
        'E_IO',
        `cannot read adapter file: expected ${join(dir, name)}, got ${(error as Error).message}.${hint}`,
        { cause: error },
      );
    }
  };
  const configText = (await read(ADAPTER_CONFIG_FILE)).toString('utf8');
  let configJson: unknown;
  try {
    configJson = JSON.parse(configText);
  } catch (error) {
    throw new LoraError(
      'E_ADAPTER_CONFIG',
      `${join(dir, ADAPTER_CONFIG_FILE)}: expected JSON, got unparsable text (${(error as Error).message})`,
      { cause: error },
    );
  }
  const bytes = await read(ADAPTER_WEIGHTS_FILE);
  let tensors: Record<string, TensorEntry>;
  try {
    ({ tensors } = parseSafetensors(
      new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    ));
  } catch (error) {
    // One error class per package: a corrupt weights file is an adapter-weights error.
    throw new LoraError(
      'E_ADAPTER_WEIGHTS',
      `${join(dir, ADAPTER_WEIGHTS_FILE)}: expected a valid safetensors file, got ${(error as Error).message.replace('[@qlora/safetensors] ', '')}`,
      { cause: error },
    );
  }
  return applyAdapter(model, configJson, tensors, options);
}
