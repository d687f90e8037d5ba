// Quantized loading and saving against checkpoints written by bitsandbytes/transformers:
// test-fixtures/lora (tools/reference/peft_ref.py: tiny Llama, its bnb nf4 state dict, logits of
// transformers on the bnb-dequantized weights, PEFT merges) and test-fixtures/cli
// (tools/reference/cli_quantize.py: bnb nf4/fp4 checkpoints of llama3-gqa-tied and the
// config.json transformers writes with quantization_config).
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  injectLora,
  mergeAndUnload,
  Nf4Linear,
  type QuantizeProjectionsOptions,
  quantizeProjections,
} from '@qlora/lora';
import { loadAdapter } from '@qlora/lora/node';
import { f32ToBf16, parseSafetensors, type TensorEntry, toFloat32 } from '@qlora/safetensors';
import { fixturePath } from '@qlora/test-utils';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readReference, relativeError } from './_test-fixtures';
import { initBackend } from './backend';
import type { LlamaModel } from './llama-model';
import { type LoadModelOptions, loadModel } from './load-model';
import { saveModel, saveQuantized } from './save-model';

const lora = (...parts: string[]) => fixturePath('lora', ...parts);
const cli = (...parts: string[]) => fixturePath('cli', ...parts);
const ids = (JSON.parse(readFileSync(lora('model.json'), 'utf8')) as { ids: number[][] }).ids;
const NF4_DQ64 = { quantType: 'nf4', blocksize: 64, doubleQuant: true } as const;

function readTensors(path: string): Record<string, TensorEntry> {
  const bytes = readFileSync(path);
  return parseSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).tensors;
}
const reference = readTensors(lora('logits.safetensors'));
const expected = (name: string): Float32Array => toFloat32(reference[name] as TensorEntry);
const cliConfigs = JSON.parse(readFileSync(cli('quantization-config.json'), 'utf8')) as Record<
  string,
  { to_dict: Record<string, unknown>; config_json: string }
>;

function logits(model: LlamaModel, rows: number[][] = ids): Float32Array {
  const out = model.forward(rows);
  const data = out.dataSync() as Float32Array;
  out.dispose();
  return data;
}
async function load(dir: string, options: LoadModelOptions = {}) {
  return loadModel(dir, { skipTokenizer: true, ...options });
}

describe('quantized loading and saving', () => {
  const temp = mkdtempSync(join(tmpdir(), 'trainer-quantized-'));
  let folders = 0;
  /** A model folder from a config object and one safetensors file. */
  function folder(config: Record<string, unknown>, weights: string): string {
    const dir = join(temp, `m${folders++}`);
    mkdirSync(dir);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    copyFileSync(weights, join(dir, 'model.safetensors'));
    return dir;
  }
  const tinyConfig = JSON.parse(readFileSync(lora('tiny', 'config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const bnbQuantization = cliConfigs['nf4-dq-bf16']?.to_dict as Record<string, unknown>;
  /** The bitsandbytes-written tiny checkpoint with transformers' quantization_config. */
  const tinyBnb = (quantization: Record<string, unknown> = bnbQuantization) =>
    folder(
      { ...tinyConfig, quantization_config: quantization },
      lora('tiny-bnb', 'model.safetensors'),
    );

  beforeAll(async () => {
    await initBackend('cpu');
  });
  afterAll(() => rmSync(temp, { recursive: true, force: true }));

  it('loads the bitsandbytes 4-bit checkpoint as Nf4Linear: transformers’ logits on the dequantized weights', async () => {
    const { model, quantization, unusedWeights, weightBytes } = await load(tinyBnb());
    expect(quantization).toEqual({ source: 'checkpoint', ...NF4_DQ64, projections: 14 });
    expect(unusedWeights).toEqual([]);
    expect(model.layers.every((l) => l.qProj instanceof Nf4Linear)).toBe(true);
    expect(relativeError(logits(model), expected('nf4_dequantized'))).toBeLessThan(1e-6);
    // 14 projections, 18,432 parameters: 0.5 B each + one f32 absmax per 64; the rest f32.
    const dense = (128 * 32 * 2 + 32 * 5) * 4;
    expect(weightBytes).toBe(dense + 18432 / 2 + (18432 / 64) * 4);
    model.dispose();
  });

  it('validates quantization_config against the tensors and refuses 8-bit', async () => {
    const before = tf.memory().numTensors;
    const wrongType = tinyBnb({ ...bnbQuantization, bnb_4bit_quant_type: 'fp4' });
    await expect(load(wrongType)).rejects.toMatchObject({
      code: 'E_QUANTIZED_WEIGHTS',
      message: expect.stringMatching(
        /disagrees with quantization_config: expected bnb_4bit_quant_type fp4.*got nf4/,
      ),
    });
    const noDouble = tinyBnb({ ...bnbQuantization, bnb_4bit_use_double_quant: false });
    await expect(load(noDouble)).rejects.toThrow(/double quant false, got nf4, double quant true/);
    const eightBit = tinyBnb({
      ...bnbQuantization,
      load_in_4bit: false,
      _load_in_4bit: false,
      load_in_8bit: true,
      _load_in_8bit: true,
    });
    await expect(load(eightBit)).rejects.toMatchObject({
      code: 'E_CONFIG_UNSUPPORTED',
      message: expect.stringMatching(/got load_in_8bit \(LLM.int8\)/),
    });
    await expect(load(tinyBnb({ quant_method: 'gptq', bits: 4 }))).rejects.toThrow(
      /expected quant_method "bitsandbytes", got "gptq"/,
    );
    // A dense checkpoint under a 4-bit config.
    const dense = folder(
      { ...tinyConfig, quantization_config: bnbQuantization },
      lora('tiny', 'model.safetensors'),
    );
    await expect(load(dense)).rejects.toThrow(
      /q_proj: expected a bitsandbytes 4-bit weight .*bitsandbytes__nf4.*got model.layers.0.self_attn.q_proj.weight$/,
    );
    // Asking to requantize a 4-bit checkpoint differently.
    await expect(load(tinyBnb(), { quantize: { quantType: 'fp4' } })).rejects.toMatchObject({
      code: 'E_QUANTIZATION',
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('quantize on load equals quantizeProjections after a dense load, bit for bit (nf4 and fp4)', async () => {
    const settings: QuantizeProjectionsOptions[] = [
      NF4_DQ64,
      { quantType: 'fp4', blocksize: 128, doubleQuant: false },
    ];
    for (const options of settings) {
      const onLoad = await load(lora('tiny'), { quantize: options });
      expect(onLoad.quantization).toEqual({ source: 'load', ...options, projections: 14 });
      const { model: dense } = await load(lora('tiny'));
      quantizeProjections(dense, options);
      expect(logits(onLoad.model)).toEqual(logits(dense));
      expect(onLoad.weightBytes).toBe(dense.weightBytes());
      onLoad.model.dispose();
      dense.dispose();
    }
  });

  it('quantize on load: transformers’ logits on bnb weights, and the error against the dense model', async () => {
    const bytesBefore = tf.memory().numBytes;
    const { model, weightBytes } = await load(lora('tiny'), { quantize: NF4_DQ64 });
    // Nothing but the 4-bit model stays on the backend (no f32 projection was ever uploaded).
    expect(tf.memory().numBytes - bytesBefore).toBe(weightBytes);
    const { model: dense, weightBytes: denseBytes } = await load(lora('tiny'));
    expect(relativeError(logits(model), expected('nf4_dequantized'))).toBeLessThan(1e-6);
    // 4-bit noise is large on this random 32-wide model: transformers on the bnb-dequantized
    // weights is 0.604 (max |Δlogit| / max |logit|) away from its dense logits; ours the same.
    const theirs = relativeError(expected('nf4_dequantized'), expected('base'));
    const ours = relativeError(logits(model), logits(dense));
    expect(theirs).toBeCloseTo(0.604, 3);
    expect(Math.abs(ours - theirs)).toBeLessThan(1e-5);
    expect(denseBytes).toBe(26784 * 4); // the base's parameters (PEFT's all-params minus LoRA)
    expect(weightBytes).toBe(denseBytes - 18432 * 4 + 18432 / 2 + (18432 / 64) * 4);
    model.dispose();
    dense.dispose();
  });

  it('saveQuantized writes bitsandbytes’ bytes and transformers’ config; loadModel reads back the same logits', async () => {
    const { model } = await load(lora('tiny'), { quantize: NF4_DQ64 });
    const out = join(temp, 'saved-nf4');
    const saved = await saveQuantized(model, out, { copyFrom: lora('tiny') });
    expect(saved.files).toEqual(['model.safetensors', 'generation_config.json', 'config.json']);
    expect(
      Buffer.compare(
        readFileSync(join(out, 'model.safetensors')),
        readFileSync(lora('tiny-bnb', 'model.safetensors')),
      ),
    ).toBe(0);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    // transformers' BitsAndBytesConfig(nf4, double quant).to_dict(), compute dtype float32.
    expect(config.quantization_config).toEqual({
      ...bnbQuantization,
      bnb_4bit_compute_dtype: 'float32',
    });
    const back = await load(out);
    expect(back.quantization?.source).toBe('checkpoint');
    expect(logits(back.model)).toEqual(logits(model));
    model.dispose();
    back.model.dispose();
    expect(readdirSync(temp).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('matches the config.json and tensors transformers + bitsandbytes wrote for llama3-gqa-tied', async () => {
    const { dir } = readReference('llama3-gqa-tied');
    const { model } = await load(dir, { quantize: NF4_DQ64 });
    const out = join(temp, 'gqa-nf4');
    await saveQuantized(model, out, { computeDtype: 'bfloat16' });
    const reference = cliConfigs['nf4-dq-bf16']?.config_json as string;
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'))).toEqual(
      JSON.parse(reference),
    );
    const ours = readTensors(join(out, 'model.safetensors'));
    const bnb = readTensors(cli('expected-nf4-dq64.safetensors'));
    expect(Object.keys(ours).sort()).toEqual(Object.keys(bnb).sort());
    for (const [name, entry] of Object.entries(bnb)) {
      const mine = ours[name] as TensorEntry;
      expect([mine.dtype, mine.shape], name).toEqual([entry.dtype, entry.shape]);
      expect(Buffer.from(mine.data.buffer, mine.data.byteOffset, mine.data.byteLength)).toEqual(
        Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength),
      );
    }
    // bitsandbytes' own file loads to the same logits.
    const bnbDir = folder(JSON.parse(reference), cli('expected-nf4-dq64.safetensors'));
    const { model: fromBnb } = await load(bnbDir);
    const rows = [[1, 17, 42, 99, 3, 64, 120, 7]];
    expect(logits(fromBnb, rows)).toEqual(logits(model, rows));
    model.dispose();
    fromBnb.dispose();
  });

  it('reads the fp4 / blocksize 128 / BF16 checkpoint bitsandbytes wrote: same logits as quantizing its BF16 source on load', async () => {
    const fp4 = cliConfigs['fp4-float32']?.config_json as string;
    const bnbDir = folder(JSON.parse(fp4), cli('expected-fp4-bf16-128.safetensors'));
    const { model, quantization } = await load(bnbDir);
    expect(quantization).toEqual({
      source: 'checkpoint',
      quantType: 'fp4',
      blocksize: 128,
      doubleQuant: false,
      projections: 14,
    });
    const config = JSON.parse(fp4);
    delete config.quantization_config;
    const bf16Dir = folder(config, cli('bf16-model.safetensors'));
    const { model: onLoad } = await load(bf16Dir, {
      quantize: { quantType: 'fp4', blocksize: 128, doubleQuant: false },
    });
    const rows = [[1, 5, 9, 200, 31, 7]];
    expect(logits(model, rows)).toEqual(logits(onLoad, rows));
    model.dispose();
    onLoad.dispose();
  });

  it('saveModel after mergeAndUnload: loadModel gives PEFT’s merged logits (dense and NF4 bases, F32 and BF16)', async () => {
    const { model } = await load(lora('tiny'));
    await loadAdapter(model, lora('adapter-plain'));
    await expect(saveModel(model, join(temp, 'refused'))).rejects.toMatchObject({
      code: 'E_SAVE',
      message: expect.stringMatching(/got a LoRA layer.*mergeAndUnload/),
    });
    mergeAndUnload(model);
    const merged = logits(model);
    await saveModel(model, join(temp, 'merged'));
    const back = await load(join(temp, 'merged'));
    expect(back.quantization).toBeNull();
    expect(logits(back.model)).toEqual(merged);
    expect(relativeError(logits(back.model), expected('plain_merged'))).toBeLessThan(5e-6);
    back.model.dispose();

    await saveModel(model, join(temp, 'merged-bf16'), { dtype: 'BF16' });
    const written = readTensors(join(temp, 'merged-bf16', 'model.safetensors'));
    for (const [name, tensor] of model.namedWeights()) {
      expect(written[name]?.data, name).toEqual(f32ToBf16(tensor.dataSync() as Float32Array));
    }
    const bf16 = await load(join(temp, 'merged-bf16'));
    // bf16 rounding alone; this random 32-wide model amplifies weight noise (NF4 gives 0.6).
    expect(relativeError(logits(bf16.model), merged)).toBeLessThan(0.05);
    bf16.model.dispose();
    model.dispose();

    const { model: qlora } = await load(lora('tiny'), { quantize: NF4_DQ64 });
    await expect(saveModel(qlora, join(temp, 'refused'))).rejects.toThrow(/a 4-bit Nf4Linear/);
    await loadAdapter(qlora, lora('adapter-plain'));
    mergeAndUnload(qlora);
    const mergedNf4 = logits(qlora);
    expect(relativeError(mergedNf4, expected('plain_on_nf4_dequantized'))).toBeLessThan(5e-6);
    await expect(saveQuantized(qlora, join(temp, 'refused'))).rejects.toThrow(
      /expected an Nf4Linear projection, got a dense one/,
    );
    await saveModel(qlora, join(temp, 'merged-nf4'));
    const config = JSON.parse(readFileSync(join(temp, 'merged-nf4', 'config.json'), 'utf8'));
    expect(config.quantization_config).toBeUndefined();
    const again = await load(join(temp, 'merged-nf4'));
    expect(logits(again.model)).toEqual(mergedNf4);
    again.model.dispose();
    qlora.dispose();
  });

  it('saves atomically: refuses a non-empty folder, replaces files with overwrite, writes a config for a model without one', async () => {
    const { model } = await load(lora('tiny'));
    const out = join(temp, 'occupied');
    mkdirSync(out);
    writeFileSync(join(out, 'notes.txt'), 'keep');
    await expect(saveModel(model, out)).rejects.toMatchObject({ code: 'E_MODEL_DIR' });
    expect(readdirSync(out)).toEqual(['notes.txt']);
    model.hfConfig = null; // as for LlamaModel.fromTensors: config.json rebuilt from LlamaConfig
    await saveModel(model, out, { overwrite: true });
    expect(readdirSync(out).sort()).toEqual(['config.json', 'model.safetensors', 'notes.txt']);
    const back = await load(out);
    expect(back.config).toEqual(model.config);
    expect(logits(back.model)).toEqual(logits(model));
    back.model.dispose();
    model.dispose();
  });

  it('dispose releases every tensor: LoRA A/B over dense and NF4 bases, quantized loads', async () => {
    const before = tf.memory().numTensors;
    const { model } = await load(lora('tiny'));
    injectLora(model, { r: 2, alpha: 4 });
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
    const { model: quantized } = await load(lora('tiny'), { quantize: NF4_DQ64 });
    injectLora(quantized, { r: 2, alpha: 4 });
    logits(quantized);
    quantized.dispose();
    expect(tf.memory().numTensors).toBe(before);
    const { model: bnb } = await load(tinyBnb());
    bnb.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
