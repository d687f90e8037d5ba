import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, toFloat32 } from '@qlora/safetensors';
import { openSafetensors, writeSafetensors } from '@qlora/safetensors/node';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readReference } from './_test-fixtures';
import { initBackend } from './backend';
import { loadModel } from './load-model';

const { dir } = readReference('mqa-untied');

describe('loadModel', () => {
  const temp = mkdtempSync(join(tmpdir(), 'trainer-load-'));
  let weights: Map<string, Float32Array>;
  let shapes: Map<string, number[]>;

  beforeAll(async () => {
    await initBackend('cpu');
    const file = await openSafetensors(join(dir, 'model.safetensors'));
    weights = new Map();
    shapes = new Map();
    for (const name of file.names) {
      const entry = await file.read(name);
      weights.set(name, toFloat32(entry));
      shapes.set(name, entry.shape);
    }
    await file.close();
  });
  afterAll(() => rmSync(temp, { recursive: true, force: true }));

  async function writeSharded(target: string, dtype: 'BF16' | 'F16'): Promise<void> {
    const names = [...weights.keys()];
    const half = Math.ceil(names.length / 2);
    const shards = [names.slice(0, half), names.slice(half)];
    const weightMap: Record<string, string> = {};
    for (const [i, shard] of shards.entries()) {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      const tensors = Object.fromEntries(
        shard.map((name) => {
          const data =
            dtype === 'BF16' ? f32ToBf16(weights.get(name)!) : f32ToF16(weights.get(name)!);
          weightMap[name] = file;
          return [name, { dtype, shape: shapes.get(name)!, data }];
        }),
      );
      await writeSafetensors(join(target, file), tensors, { format: 'pt' });
    }
    writeFileSync(
      join(target, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }),
    );
    writeFileSync(join(target, 'config.json'), readFileSync(join(dir, 'config.json')));
  }

  it.each(['BF16', 'F16'] as const)(
    'reads a sharded %s checkpoint, widened to f32',
    async (dtype) => {
      const target = mkdtempSync(join(temp, `${dtype}-`));
      await writeSharded(target, dtype);
      const { model, unusedWeights } = await loadModel(target);
      expect(unusedWeights).toEqual([]);
      const name = 'model.layers.1.self_attn.k_proj.weight';
      const rounded =
        dtype === 'BF16'
          ? bf16ToF32(f32ToBf16(weights.get(name)!))
          : f16ToF32(f32ToF16(weights.get(name)!));
      expect(model.namedWeights().get(name)!.dataSync()).toEqual(rounded);
      model.dispose();
    },
  );

  it('refuses pickled weights and names safetensors', async () => {
    const target = mkdtempSync(join(temp, 'pickle-'));
    writeFileSync(join(target, 'config.json'), readFileSync(join(dir, 'config.json')));
    writeFileSync(join(target, 'pytorch_model.bin'), 'not read');
    await expect(loadModel(target)).rejects.toThrow(
      /pickled weights \(pytorch_model.bin\).*safetensors/s,
    );
  });

  it('names a missing weight', async () => {
    const target = mkdtempSync(join(temp, 'missing-'));
    writeFileSync(join(target, 'config.json'), readFileSync(join(dir, 'config.json')));
    const tensors = Object.fromEntries(
      [...weights]
        .filter(([name]) => name !== 'lm_head.weight')
        .map(([name, data]) => [name, { dtype: 'F32' as const, shape: shapes.get(name)!, data }]),
    );
    await writeSafetensors(join(target, 'model.safetensors'), tensors);
    const before = tf.memory().numTensors;
    await expect(loadModel(target)).rejects.toThrow(/missing weight: expected lm_head.weight/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('releases every tensor on dispose', async () => {
    const before = tf.memory().numTensors;
    const { model } = await loadModel(dir, { skipTokenizer: true });
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
