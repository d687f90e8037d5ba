import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePath } from '@qlora/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsError } from './errors';
import { openSafetensors, openSafetensorsDir, writeFileAtomic, writeSafetensors } from './fs';
import { parseSafetensors } from './parse';
import { serializeSafetensors } from './serialize';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'qlora-safetensors-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function rejection(promise: Promise<unknown>): Promise<SafetensorsError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(SafetensorsError);
    return error as SafetensorsError;
  }
  throw new Error('expected a rejection');
}

describe('openSafetensors', () => {
  it('reads each tensor lazily with the same result as parseSafetensors', async () => {
    const path = fixturePath('safetensors', 'all-dtypes.safetensors');
    const whole = parseSafetensors(new Uint8Array(await readFile(path)));
    const file = await openSafetensors(path);
    try {
      expect(file.metadata).toEqual({ format: 'pt' });
      expect(file.names).toEqual(Object.keys(whole.tensors));
      for (const name of file.names) {
        const entry = await file.read(name);
        expect(entry).toEqual(whole.tensors[name]);
        expect(entry.data.byteLength).toBe(entry.data.buffer.byteLength); // its own buffer, not a file-sized one
      }
    } finally {
      await file.close();
    }
  });

  it('suggests a close name for a missing tensor, and refuses reads after close', async () => {
    const file = await openSafetensors(fixturePath('safetensors', 'all-dtypes.safetensors'));
    const missing = await rejection(file.read('bf17'));
    expect(missing.code).toBe('TENSOR_NOT_FOUND');
    expect(missing.message).toContain('Did you mean "bf16"?');
    await file.close();
    await file.close();
    expect((await rejection(file.read('bf16'))).code).toBe('IO');
  });

  it('refuses a header length beyond the file without allocating it', async () => {
    const path = join(work, 'huge-claim.safetensors');
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setBigUint64(0, 99_000_000n, true);
    await writeFile(path, bytes);
    expect((await rejection(openSafetensors(path))).code).toBe('INVALID_HEADER_LENGTH');
  });

  it('refuses a header whose tensors claim bytes past the end', async () => {
    const path = join(work, 'past-end.safetensors');
    const good = serializeSafetensors({
      a: { dtype: 'F32', shape: [4], data: new Float32Array(4) },
    });
    await writeFile(path, good.subarray(0, good.length - 1));
    expect((await rejection(openSafetensors(path))).code).toBe('INCOMPLETE_BUFFER');
  });

  it('reports a missing file as IO', async () => {
    expect((await rejection(openSafetensors(join(work, 'nope.safetensors')))).code).toBe('IO');
  });
});

describe('openSafetensorsDir', () => {
  async function copySharded(name: string): Promise<string> {
    const dir = join(work, name);
    await mkdir(dir);
    for (const f of await readdir(fixturePath('safetensors', 'sharded'))) {
      await copyFile(fixturePath('safetensors', 'sharded', f), join(dir, f));
    }
    return dir;
  }

  it('opens a single model.safetensors without an index', async () => {
    const dir = join(work, 'single');
    await mkdir(dir);
    await copyFile(fixturePath('safetensors', 'numpy.safetensors'), join(dir, 'model.safetensors'));
    const model = await openSafetensorsDir(dir);
    expect(model.shards).toEqual(['model.safetensors']);
    expect(await model.read('x')).toEqual({
      dtype: 'F32',
      shape: [2, 3],
      data: new Float32Array([0, 1, 2, 3, 4, 5]),
    });
    await model.close();
  });

  it('refuses an index whose shard is missing', async () => {
    const dir = await copySharded('missing-shard');
    await rm(join(dir, 'model-00002-of-00002.safetensors'));
    const error = await rejection(openSafetensorsDir(dir));
    expect(error.code).toBe('INVALID_INDEX');
    expect(error.rule).toBe('index-files-exist');
  });

  it('refuses an index that maps a name the shard does not hold', async () => {
    const dir = await copySharded('extra-name');
    const indexPath = join(dir, 'model.safetensors.index.json');
    const index = JSON.parse(await readFile(indexPath, 'utf8'));
    index.weight_map['model.layers.9.mlp.up_proj.weight'] = 'model-00001-of-00002.safetensors';
    await writeFile(indexPath, JSON.stringify(index));
    const error = await rejection(openSafetensorsDir(dir));
    expect(error.rule).toBe('index-names-agree');
    expect(error.tensor).toBe('model.layers.9.mlp.up_proj.weight');
  });

  it('refuses an index that omits a tensor of a shard, or maps it to another shard', async () => {
    const dir = await copySharded('omitted-name');
    const indexPath = join(dir, 'model.safetensors.index.json');
    const index = JSON.parse(await readFile(indexPath, 'utf8'));
    const [first] =
      Object.entries(index.weight_map as Record<string, string>).find(([, f]) =>
        f.includes('00001'),
      ) ?? [];
    index.weight_map[first as string] = 'model-00002-of-00002.safetensors';
    await writeFile(indexPath, JSON.stringify(index));
    const error = await rejection(openSafetensorsDir(dir));
    expect(error.rule).toBe('index-names-agree');
  });

  it('refuses weight_map paths that leave the directory', async () => {
    const dir = join(work, 'escape');
    await mkdir(dir);
    await writeFile(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ weight_map: { a: '../x.safetensors' } }),
    );
    expect((await rejection(openSafetensorsDir(dir))).rule).toBe('index-format');
  });

  it('names the missing checkpoint when there is neither index nor model.safetensors', async () => {
    const dir = join(work, 'empty-dir');
    await mkdir(dir);
    const error = await rejection(openSafetensorsDir(dir));
    expect(error.message).toContain('model.safetensors.index.json');
  });
});

describe('writeSafetensors', () => {
  const tensors = {
    w: { dtype: 'BF16' as const, shape: [2], data: new Uint16Array([0x3f80, 0x4000]) },
    b: { dtype: 'F32' as const, shape: [], data: new Float32Array([0.5]) },
  };

  it('writes exactly the bytes serializeSafetensors gives, leaving no temp file', async () => {
    const dir = join(work, 'write');
    await mkdir(dir);
    const path = join(dir, 'adapter_model.safetensors');
    await writeSafetensors(path, tensors, { format: 'pt' });
    expect(new Uint8Array(await readFile(path))).toEqual(
      serializeSafetensors(tensors, { format: 'pt' }),
    );
    expect(await readdir(dir)).toEqual(['adapter_model.safetensors']);
  });

  it('leaves the previous file untouched when writing fails', async () => {
    const dir = join(work, 'write-fail');
    await mkdir(dir);
    const path = join(dir, 'model.safetensors');
    await writeSafetensors(path, tensors);
    const before = await readFile(path);
    // invalid input fails before any byte is written
    await rejection(
      writeSafetensors(path, { x: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }),
    );
    // a data view whose buffer is detached mid-way fails during the write
    const buffer = new ArrayBuffer(8);
    const view = new Float32Array(buffer);
    const detaching = { x: { dtype: 'F32' as const, shape: [2], data: view } };
    const pending = writeSafetensors(path, detaching);
    structuredClone(buffer, { transfer: [buffer] });
    await pending.catch(() => undefined);
    expect(await readFile(path)).toEqual(before);
    expect(await readdir(dir)).toEqual(['model.safetensors']);
  });

  it('refuses to write into a missing directory with IO', async () => {
    const error = await rejection(
      writeSafetensors(join(work, 'no', 'such', 'dir', 'm.safetensors'), tensors),
    );
    expect(error.code).toBe('IO');
  });
});

describe('writeFileAtomic', () => {
  it('writes text as UTF-8 and bytes as given, replacing the file and leaving no temp file', async () => {
    const dir = join(work, 'atomic');
    await mkdir(dir);
    const path = join(dir, 'config.json');
    await writeFileAtomic(path, 'first');
    await writeFileAtomic(path, '{"é": 1}\n');
    expect(await readFile(path, 'utf8')).toBe('{"é": 1}\n');
    await writeFileAtomic(join(dir, 'b.bin'), new Uint8Array([0, 255, 7]));
    expect(new Uint8Array(await readFile(join(dir, 'b.bin')))).toEqual(new Uint8Array([0, 255, 7]));
    expect((await readdir(dir)).sort()).toEqual(['b.bin', 'config.json']);
  });

  it('fails with IO, the cause attached, in a missing directory', async () => {
    const error = await rejection(writeFileAtomic(join(work, 'no', 'such', 'x.json'), '{}'));
    expect(error.code).toBe('IO');
    expect((error.cause as NodeJS.ErrnoException).code).toBe('ENOENT');
  });
});
