import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { parseSafetensors, type TensorEntry } from '@qlora/safetensors';
import { openSafetensors, writeSafetensors } from '@qlora/safetensors/node';
import { fixturePath } from '@qlora/test-utils';
import { describe, expect, it } from 'vitest';
import { qlora, useTempDir } from './_test-helpers';
import { runQuantize } from './commands/quantize';
import { createBufferedIo } from './io';

const dir = useTempDir();
const reference = JSON.parse(
  readFileSync(fixturePath('cli', 'quantization-config.json'), 'utf8'),
) as Record<string, { to_dict: Record<string, unknown>; config_json: string }>;

/** A model folder from the tiny Llama fixture, with `weights` as its model.safetensors. */
function makeModel(name: string, weights: string): string {
  const model = join(dir, name);
  mkdirSync(model, { recursive: true });
  const src = fixturePath('trainer', 'llama3-gqa-tied');
  copyFileSync(join(src, 'config.json'), join(model, 'config.json'));
  copyFileSync(join(src, 'generation_config.json'), join(model, 'generation_config.json'));
  copyFileSync(weights, join(model, 'model.safetensors'));
  return model;
}

const load = (path: string) => parseSafetensors(readFileSync(path)).tensors;
const bytes = (t: TensorEntry) =>
  new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);

/** Every tensor of `actual` equals bitsandbytes' state_dict in `expected`: names, dtypes, shapes, bytes. */
function expectSameTensors(
  actual: Record<string, TensorEntry>,
  expected: Record<string, TensorEntry>,
) {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
  for (const [name, e] of Object.entries(expected)) {
    const a = actual[name] as TensorEntry;
    expect({ name, dtype: a.dtype, shape: a.shape }).toEqual({
      name,
      dtype: e.dtype,
      shape: e.shape,
    });
    expect(Buffer.from(bytes(a)).equals(Buffer.from(bytes(e))), name).toBe(true);
  }
}

describe('qlora quantize against bitsandbytes + transformers (tools/reference/cli_quantize.py)', () => {
  it('float32 → nf4 + double quant, blocksize 64: tensors and config.json as bnb/transformers write them', async () => {
    const model = makeModel('f32', fixturePath('trainer', 'llama3-gqa-tied', 'model.safetensors'));
    const out = join(dir, 'f32-nf4');
    const { status, stdout, stderr } = await qlora([
      'quantize',
      model,
      '--out',
      out,
      '--double-quant',
    ]);
    expect(stderr).toContain('quantize: ');
    expect(status).toBe(0);
    expect(stdout).toMatch(/^wrote .*: 14 weights as nf4 \+ double quant \(blocksize 64\)/);
    expectSameTensors(
      load(join(out, 'model.safetensors')),
      load(fixturePath('cli', 'expected-nf4-dq64.safetensors')),
    );
    expect(readFileSync(join(out, 'config.json'), 'utf8')).toBe(
      reference['nf4-dq-bf16']?.config_json,
    );
    expect(readdirSync(out).sort()).toEqual([
      'config.json',
      'generation_config.json',
      'model.safetensors',
    ]);
  });

  it('bfloat16 → fp4, blocksize 128, no double quant, float32 compute dtype', async () => {
    const model = makeModel('bf16', fixturePath('cli', 'bf16-model.safetensors'));
    const out = join(dir, 'bf16-fp4');
    const { status } = await qlora([
      'quantize',
      model,
      '--out',
      out,
      '--quant-type',
      'fp4',
      '--blocksize',
      '128',
      '--compute-dtype',
      'float32',
      '--json',
    ]);
    expect(status).toBe(0);
    expectSameTensors(
      load(join(out, 'model.safetensors')),
      load(fixturePath('cli', 'expected-fp4-bf16-128.safetensors')),
    );
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config.quantization_config).toEqual(reference['fp4-float32']?.to_dict);
  });

  it('keeps shards: a two-shard checkpoint gives two shards and an index', async () => {
    const src = await openSafetensors(
      fixturePath('trainer', 'llama3-gqa-tied', 'model.safetensors'),
    );
    const model = join(dir, 'sharded');
    mkdirSync(model, { recursive: true });
    copyFileSync(
      fixturePath('trainer', 'llama3-gqa-tied', 'config.json'),
      join(model, 'config.json'),
    );
    const names = [...src.names];
    const half = Math.ceil(names.length / 2);
    const weightMap: Record<string, string> = {};
    for (const [i, part] of [names.slice(0, half), names.slice(half)].entries()) {
      const shard = `model-0000${i + 1}-of-00002.safetensors`;
      const tensors: Record<string, TensorEntry> = {};
      for (const n of part) {
        tensors[n] = await src.read(n);
        weightMap[n] = shard;
      }
      await writeSafetensors(join(model, shard), tensors, { format: 'pt' });
    }
    await src.close();
    writeFileSync(
      join(model, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }),
    );
    const out = join(dir, 'sharded-nf4');
    expect((await qlora(['quantize', model, '--out', out, '--double-quant'])).status).toBe(0);
    const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8'));
    const merged = {
      ...load(join(out, 'model-00001-of-00002.safetensors')),
      ...load(join(out, 'model-00002-of-00002.safetensors')),
    };
    expect(Object.keys(index.weight_map).sort()).toEqual(Object.keys(merged).sort());
    expectSameTensors(merged, load(fixturePath('cli', 'expected-nf4-dq64.safetensors')));
  });

  it('refuses an existing output folder (exit 2) unless --force, and an already quantized model (exit 3)', async () => {
    const model = makeModel(
      'again',
      fixturePath('trainer', 'llama3-gqa-tied', 'model.safetensors'),
    );
    const out = join(dir, 'again-out');
    expect((await qlora(['quantize', model, '--out', out])).status).toBe(0);
    const second = await qlora(['quantize', model, '--out', out]);
    expect(second.status).toBe(2);
    expect(second.stderr).toContain('pass --force');
    expect((await qlora(['quantize', model, '--out', out, '--force'])).status).toBe(0);
    const requantize = await qlora(['quantize', out, '--out', join(dir, 'twice')]);
    expect(requantize.status).toBe(3);
    expect(requantize.stderr).toContain('already quantized');
    const bad = await qlora(['quantize', model, '--out', join(dir, 'x'), '--blocksize', '48']);
    expect(bad.status).toBe(2);
  });

  it('an interrupted run exits 130 and leaves no output folder', async () => {
    const model = makeModel(
      'interrupt',
      fixturePath('trainer', 'llama3-gqa-tied', 'model.safetensors'),
    );
    const out = join(dir, 'interrupted');
    const io = createBufferedIo();
    const controller = new AbortController();
    controller.abort();
    io.signal = controller.signal;
    await expect(runQuantize({ model, out }, io)).rejects.toMatchObject({
      code: 'INTERRUPTED',
      exitCode: 130,
    });
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((n) => n.includes('partial'))).toEqual([]);
  });
});
