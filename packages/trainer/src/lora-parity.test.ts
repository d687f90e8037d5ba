// Model-level parity of @qlora/lora with PEFT 0.21 / transformers 5.17 / bitsandbytes on a tiny
// random Llama. Fixtures: tools/reference/peft_ref.py (make, verify); our side of the round trip:
// tools/reference/lora_write_ts.ts (see _lora-artifacts.ts).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  injectLora,
  type Linear,
  loraLayers,
  mergeAdapter,
  mergeAndUnload,
  Nf4Linear,
  nf4LinearFromBnbTensors,
  quantizedStateDict,
  quantizeProjections,
  unmergeAdapter,
} from '@qlora/lora';
import { loadAdapter, saveAdapter } from '@qlora/lora/node';
import type { TensorRecord } from '@qlora/nf4';
import {
  parseSafetensors,
  serializeSafetensors,
  type TensorEntry,
  toFloat32,
} from '@qlora/safetensors';
import { fixturePath } from '@qlora/test-utils';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TS_ADAPTER_OPTIONS, writeTsArtifacts } from './_lora-artifacts';
import { relativeError } from './_test-fixtures';
import { initBackend } from './backend';
import type { LlamaModel } from './llama-model';
import { loadModel } from './load-model';

const dir = (...parts: string[]) => fixturePath('lora', ...parts);
const info = JSON.parse(readFileSync(dir('model.json'), 'utf8')) as {
  ids: number[][];
  plain_trainable: { trainable: number; all: number };
  rslora_trainable: { trainable: number; all: number };
};

function readTensors(path: string): Record<string, TensorEntry> {
  const bytes = readFileSync(path);
  return parseSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).tensors;
}
const reference = readTensors(dir('logits.safetensors'));
const expected = (name: string): Float32Array => toFloat32(reference[name] as TensorEntry);

async function tiny(): Promise<LlamaModel> {
  return (await loadModel(dir('tiny'), { skipTokenizer: true })).model;
}
function logits(model: LlamaModel): Float32Array {
  const out = model.forward(info.ids);
  const data = out.dataSync() as Float32Array;
  out.dispose();
  return data;
}

describe('LoRA on the trainer Llama against PEFT 0.21 + transformers 5.17', () => {
  const temp = mkdtempSync(join(tmpdir(), 'lora-parity-'));
  beforeAll(async () => {
    await initBackend('cpu');
  });
  afterAll(() => rmSync(temp, { recursive: true, force: true }));

  it('base logits match (sanity)', async () => {
    const model = await tiny();
    expect(relativeError(logits(model), expected('base'))).toBeLessThan(1e-4);
    model.dispose();
  });

  it('loads the PEFT plain adapter (7 modules): logits, parameter counts, merge, unmerge', async () => {
    const model = await tiny();
    const { config, parameters } = await loadAdapter(model, dir('adapter-plain'));
    expect(config.r).toBe(4);
    expect(parameters.trainable).toBe(info.plain_trainable.trainable);
    expect(parameters.total).toBe(info.plain_trainable.all);
    expect(parameters.summary).toBe(
      'trainable params: 4,096 || all params: 30,880 || trainable%: 13.2642',
    );
    const rel = relativeError(logits(model), expected('plain'));
    expect(rel).toBeLessThan(1e-4);
    const report = mergeAdapter(model);
    expect(report).toEqual({ merged: 14, warnings: [] });
    expect(relativeError(logits(model), expected('plain_merged'))).toBeLessThan(1e-4);
    unmergeAdapter(model);
    expect(relativeError(logits(model), expected('plain'))).toBeLessThan(1e-4);
    mergeAndUnload(model);
    expect(loraLayers(model)).toHaveLength(0);
    expect(relativeError(logits(model), expected('plain_merged'))).toBeLessThan(1e-4);
    model.dispose();
  });

  it('loads the PEFT rsLoRA adapter with a regex target_modules string', async () => {
    const model = await tiny();
    const { parameters } = await loadAdapter(model, dir('adapter-rslora'));
    expect(parameters.modules).toEqual([
      'model.layers.0.self_attn.q_proj',
      'model.layers.0.self_attn.v_proj',
      'model.layers.0.mlp.down_proj',
      'model.layers.1.self_attn.q_proj',
      'model.layers.1.self_attn.v_proj',
      'model.layers.1.mlp.down_proj',
    ]);
    expect(parameters.trainable).toBe(info.rslora_trainable.trainable);
    expect(parameters.total).toBe(info.rslora_trainable.all);
    expect(loraLayers(model)[0]?.scaling).toBeCloseTo(16 / Math.sqrt(8), 12);
    expect(relativeError(logits(model), expected('rslora'))).toBeLessThan(1e-4);
    model.dispose();
  });

  it('NF4 projections (quantizeProjections) match transformers on bitsandbytes-dequantized weights', async () => {
    const model = await tiny();
    const report = quantizeProjections(model, {
      quantType: 'nf4',
      blocksize: 64,
      doubleQuant: true,
    });
    expect(report.quantized).toBe(14);
    expect(relativeError(logits(model), expected('nf4_dequantized'))).toBeLessThan(1e-4);
    // bitsandbytes read our checkpoint (QuantState.from_dict + dequantize_4bit) to these logits.
    const bnbRead = toFloat32(
      readTensors(dir('ts-verify.safetensors')).ts_nf4_logits as TensorEntry,
    );
    expect(relativeError(logits(model), bnbRead)).toBeLessThan(1e-4);
    // The state dict we write is byte-identical to the checkpoint bitsandbytes wrote.
    const ours = serializeSafetensors(quantizedStateDict(model), { format: 'pt' });
    expect(
      Buffer.compare(Buffer.from(ours), readFileSync(dir('tiny-bnb', 'model.safetensors'))),
    ).toBe(0);
    model.dispose();
  });

  it('a pre-quantized bitsandbytes checkpoint (nf4LinearFromBnbTensors) gives the same logits', async () => {
    const model = await tiny();
    const bnb = readTensors(dir('tiny-bnb', 'model.safetensors')) as unknown as Record<
      string,
      TensorRecord
    >;
    model.mapProjections((linear: Linear) => {
      const nf4 = nf4LinearFromBnbTensors(bnb, linear.name);
      linear.dispose();
      return nf4;
    });
    expect(relativeError(logits(model), expected('nf4_dequantized'))).toBeLessThan(1e-4);
    model.dispose();
  });

  it('QLoRA: the PEFT adapter over NF4 bases; merging returns the warning and unmerge restores NF4', async () => {
    const model = await tiny();
    quantizeProjections(model);
    await loadAdapter(model, dir('adapter-plain'));
    expect(relativeError(logits(model), expected('plain_on_nf4_dequantized'))).toBeLessThan(1e-4);
    const { warnings } = mergeAdapter(model);
    expect(warnings).toHaveLength(14);
    expect(warnings[0]).toMatch(/Merge lora module to 4-bit linear may get different generations/);
    expect(relativeError(logits(model), expected('plain_on_nf4_dequantized'))).toBeLessThan(1e-4);
    unmergeAdapter(model);
    expect(loraLayers(model).every((l) => l.base instanceof Nf4Linear)).toBe(true);
    expect(relativeError(logits(model), expected('plain_on_nf4_dequantized'))).toBeLessThan(1e-4);
    model.dispose();
  });

  it('our adapter files are reproducible and PEFT loads them to our logits', async () => {
    // Same bytes as the committed ts-adapter that peft_ref.py verify loaded with PEFT.
    await writeTsArtifacts(temp);
    for (const file of ['adapter_config.json', 'adapter_model.safetensors']) {
      expect(
        Buffer.compare(
          readFileSync(join(temp, 'ts-adapter', file)),
          readFileSync(dir('ts-adapter', file)),
        ),
        file,
      ).toBe(0);
    }
    expect(
      Buffer.compare(
        readFileSync(join(temp, 'ts-nf4', 'model.safetensors')),
        readFileSync(dir('tiny-bnb', 'model.safetensors')),
      ),
    ).toBe(0);
    const model = await tiny();
    injectLora(model, TS_ADAPTER_OPTIONS);
    const ours = logits(model);
    // PEFT's PeftModel.from_pretrained on ts-adapter (peft_ref.py verify) gave these logits.
    const verified = readTensors(dir('ts-verify.safetensors'));
    const peft = toFloat32(verified.ts_adapter_logits as TensorEntry);
    expect(relativeError(ours, peft)).toBeLessThan(1e-4);
    // Save → load round trip inside our code as well.
    await saveAdapter(model, join(temp, 'again'));
    const other = await tiny();
    await loadAdapter(other, join(temp, 'again'));
    expect(relativeError(logits(other), ours)).toBeLessThan(1e-6);
    model.dispose();
    other.dispose();
  });

  it('writes adapter_config.json with the exact fields and formatting PEFT 0.21 writes', async () => {
    const model = await tiny();
    injectLora(model, {
      r: 4,
      alpha: 8,
      targetModules: ['k_proj', 'up_proj', 'gate_proj', 'q_proj', 'o_proj', 'v_proj', 'down_proj'],
    });
    await saveAdapter(model, join(temp, 'cfg'), { baseModelNameOrPath: '/tmp/peft_ref_work/tiny' });
    expect(readFileSync(join(temp, 'cfg', 'adapter_config.json'), 'utf8')).toBe(
      readFileSync(dir('adapter-plain', 'adapter_config.json'), 'utf8'),
    );
    const saved = readTensors(join(temp, 'cfg', 'adapter_model.safetensors'));
    const peft = readTensors(dir('adapter-plain', 'adapter_model.safetensors'));
    expect(Object.keys(saved).sort()).toEqual(Object.keys(peft).sort());
    for (const [key, entry] of Object.entries(peft)) {
      expect([saved[key]?.dtype, saved[key]?.shape], key).toEqual([entry.dtype, entry.shape]);
    }
    model.dispose();
  });

  it('leaves no tensors behind in a forward pass with LoRA over NF4', async () => {
    const model = await tiny();
    quantizeProjections(model);
    injectLora(model, { r: 2, alpha: 4 });
    logits(model);
    const before = tf.memory().numTensors;
    logits(model);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});
