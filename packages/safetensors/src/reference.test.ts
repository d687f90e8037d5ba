import { readFileSync } from 'node:fs';
import { fixturePath } from '@qlora/test-utils';
import { describe, expect, it } from 'vitest';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, toFloat32 } from './convert';
import type { SafetensorsDtype, TensorEntry } from './dtypes';
import { openSafetensorsDir } from './fs';
import { parseSafetensors } from './parse';
import { serializeSafetensors } from './serialize';

// Fixtures written by the Python safetensors library (tools/reference/safetensors_ref.py).
interface ManifestTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  data_offsets: [number, number];
  hex: string;
  values: Array<number | string>;
}
interface ManifestFile {
  file: string;
  header_length: number;
  file_length: number;
  metadata_in_header_order: Array<[string, string]> | null;
  tensors: ManifestTensor[];
}
interface Manifest {
  files: ManifestFile[];
  written_dtypes: string[];
  sharded: {
    files: string[];
    tensors: Record<
      string,
      { shape: number[]; dtype: string; sum_f32: number; first: number | string }
    >;
  };
}

const dir = (...parts: string[]) => fixturePath('safetensors', ...parts);
const manifest = JSON.parse(readFileSync(dir('manifest.json'), 'utf8')) as Manifest;

function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function toHex(view: ArrayBufferView): string {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('hex');
}

function expectedNumber(value: number | string): number {
  if (value === 'nan') return Number.NaN;
  if (value === 'inf') return Number.POSITIVE_INFINITY;
  if (value === '-inf') return Number.NEGATIVE_INFINITY;
  return Number(value);
}

/** Values as torch printed them: bigint for 64-bit integers, f32-decoded numbers otherwise. */
function actualValues(entry: TensorEntry): Array<number | string> {
  switch (entry.dtype) {
    case 'I64':
    case 'U64':
      return Array.from(entry.data as BigInt64Array, (v) => v.toString());
    case 'U32':
      return Array.from(entry.data as Uint32Array, (v) => String(v));
    case 'C64':
      return Array.from(entry.data as Float32Array);
    case 'BOOL':
    case 'U8':
    case 'I8':
    case 'I16':
    case 'U16':
    case 'I32':
      return Array.from(entry.data as Int32Array);
    default:
      return Array.from(toFloat32(entry));
  }
}

const UNDECODED = new Set<string>();

describe('files written by the Python safetensors library', () => {
  it('covers every dtype the issue asks for', () => {
    for (const dtype of [
      'F64',
      'F32',
      'F16',
      'BF16',
      'I64',
      'I32',
      'I16',
      'I8',
      'U8',
      'BOOL',
      'F8_E4M3',
      'F8_E5M2',
    ]) {
      expect(manifest.written_dtypes).toContain(dtype);
    }
  });

  for (const file of manifest.files) {
    describe(file.file, () => {
      const bytes = new Uint8Array(readFileSync(dir(file.file)));

      it('parses to the dtypes, shapes, bytes, values and metadata torch wrote', () => {
        const parsed = parseSafetensors(bytes);
        expect(Object.keys(parsed.tensors)).toEqual(
          // null-prototype records still enumerate integer-like keys first; none here
          file.tensors.map((t) => t.name),
        );
        expect(parsed.metadata === undefined ? null : Object.entries(parsed.metadata)).toEqual(
          file.metadata_in_header_order,
        );
        for (const t of file.tensors) {
          const entry = parsed.tensors[t.name] as TensorEntry;
          expect(entry.dtype).toBe(t.dtype);
          expect(entry.shape).toEqual(t.shape);
          expect(toHex(entry.data)).toBe(t.hex);
          if (UNDECODED.has(t.dtype)) continue;
          const actual = actualValues(entry);
          expect(actual.length).toBe(t.values.length);
          t.values.forEach((v, i) => {
            if (typeof actual[i] === 'string') expect(actual[i]).toBe(v);
            else
              expect(
                Object.is(actual[i], expectedNumber(v)) || actual[i] === expectedNumber(v),
              ).toBe(true);
          });
        }
      });

      it('reads aligned tensors as views, without copying', () => {
        const parsed = parseSafetensors(bytes);
        for (const entry of Object.values(parsed.tensors))
          expect(entry.data.buffer).toBe(bytes.buffer);
      });

      it('serializing the same tensors and metadata gives the identical file', () => {
        // Built from the manifest (torch's bytes, names, shapes), in a shuffled order.
        const tensors = new Map<
          string,
          { dtype: SafetensorsDtype; shape: number[]; data: Uint8Array }
        >();
        for (const t of [...file.tensors].reverse()) {
          tensors.set(t.name, { dtype: t.dtype, shape: t.shape, data: fromHex(t.hex) });
        }
        const metadata =
          file.metadata_in_header_order === null
            ? undefined
            : new Map(file.metadata_in_header_order);
        const out = serializeSafetensors(tensors, metadata);
        expect(out.length).toBe(file.file_length);
        expect(Buffer.from(out).equals(Buffer.from(bytes))).toBe(true);
      });
    });
  }
});

describe('bf16 / f16 conversions against torch', () => {
  const conv = parseSafetensors(
    new Uint8Array(readFileSync(dir('conversions.safetensors'))),
  ).tensors;
  const get = (name: string) => conv[name] as TensorEntry;
  const src = get('src_f32').data as Float32Array;

  const expectSameBits = (
    actual: Uint16Array | Uint32Array,
    expected: Uint16Array | Uint32Array,
    isNan: (i: number) => boolean,
  ) => {
    let mismatches = 0;
    for (let i = 0; i < expected.length; i++) {
      if (isNan(i)) continue;
      if (actual[i] !== expected[i]) mismatches++;
    }
    expect(mismatches).toBe(0);
  };

  it('f32ToBf16 matches torch .to(bfloat16) bit for bit (NaN stays NaN)', () => {
    const ours = f32ToBf16(src);
    const torch = get('to_bf16').data as Uint16Array;
    expectSameBits(ours, torch, (i) => Number.isNaN(src[i]));
    const back = bf16ToF32(ours);
    for (let i = 0; i < src.length; i++) if (Number.isNaN(src[i])) expect(back[i]).toBeNaN();
  });

  it('f32ToF16 matches torch .to(float16) bit for bit (subnormals, overflow, ties; NaN stays NaN)', () => {
    const ours = f32ToF16(src);
    const torch = get('to_f16').data as Uint16Array;
    expectSameBits(ours, torch, (i) => Number.isNaN(src[i]));
    const back = f16ToF32(ours);
    for (let i = 0; i < src.length; i++) if (Number.isNaN(src[i])) expect(back[i]).toBeNaN();
  });

  it('f16ToF32 decodes all 65,536 patterns like torch', () => {
    const patterns = get('f16_patterns').data as Uint16Array;
    const ours = f16ToF32(patterns);
    const torch = get('f16_patterns_to_f32').data as Float32Array;
    const oursBits = new Uint32Array(ours.buffer);
    const torchBits = new Uint32Array(torch.buffer, torch.byteOffset, torch.length);
    expectSameBits(oursBits, torchBits, (i) => Number.isNaN(torch[i]));
    for (let i = 0; i < torch.length; i++) if (Number.isNaN(torch[i])) expect(ours[i]).toBeNaN();
  });

  it('bf16ToF32 decodes patterns like torch', () => {
    const patterns = get('bf16_patterns').data as Uint16Array;
    const ours = new Uint32Array(bf16ToF32(patterns).buffer);
    const torch = get('bf16_patterns_to_f32').data as Float32Array;
    const torchBits = new Uint32Array(torch.buffer, torch.byteOffset, torch.length);
    expectSameBits(ours, torchBits, (i) => Number.isNaN(torch[i]));
  });
});

describe('sharded checkpoint written by transformers save_pretrained', () => {
  it('opens as one view whose tensors match the model state dict', async () => {
    const model = await openSafetensorsDir(dir('sharded'));
    try {
      expect([...model.shards].sort()).toEqual(
        manifest.sharded.files.filter((f) => f.endsWith('.safetensors')),
      );
      expect([...model.names].sort()).toEqual(Object.keys(manifest.sharded.tensors).sort());
      expect(model.indexMetadata?.total_size).toBe(13472);
      for (const [name, expected] of Object.entries(manifest.sharded.tensors)) {
        const entry = await model.read(name);
        expect(entry.dtype).toBe('BF16');
        expect(entry.shape).toEqual(expected.shape);
        const values = toFloat32(entry);
        let sum = 0;
        for (const v of values) sum += v;
        expect(sum).toBeCloseTo(expected.sum_f32, 3);
        expect(values[0]).toBe(expectedNumber(expected.first));
      }
    } finally {
      await model.close();
    }
  });
});

describe('8-bit float decoding against torch', () => {
  const conv = parseSafetensors(
    new Uint8Array(readFileSync(dir('conversions.safetensors'))),
  ).tensors;
  const patterns = conv.byte_patterns as TensorEntry;
  it.each([
    ['F8_E4M3', 'f8_e4m3'],
    ['F8_E5M2', 'f8_e5m2'],
    ['F8_E4M3FNUZ', 'f8_e4m3fnuz'],
    ['F8_E5M2FNUZ', 'f8_e5m2fnuz'],
    ['F8_E8M0', 'f8_e8m0'],
  ] as const)('toFloat32 of every %s pattern equals torch .float()', (dtype, label) => {
    const ours = toFloat32({ dtype, shape: [256], data: patterns.data as Uint8Array });
    const torch = (conv[`${label}_patterns_to_f32`] as TensorEntry).data as Float32Array;
    for (let b = 0; b < 256; b++) {
      if (Number.isNaN(torch[b])) expect(ours[b]).toBeNaN();
      else expect(Object.is(ours[b], torch[b])).toBe(true);
    }
  });
});
