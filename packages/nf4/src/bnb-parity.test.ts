// Parity with bitsandbytes itself: fixtures made by tools/reference/nf4_bnb.py (bitsandbytes'
// pure-PyTorch default backend on CPU, versions in test-fixtures/nf4/versions.json).
import { readFileSync } from 'node:fs';
import { fixturePath } from '@qlora/test-utils';
import { describe, expect, it } from 'vitest';
import { pythonFloatRepr } from './_python-json';
import { torchMeanFloat32 } from './_torch-mean';
import {
  blockAbsmax,
  DYNAMIC_CODE,
  dequantize4bit,
  type FloatDtype,
  FP4_CODE,
  fromBnbTensors,
  NF4_CODE,
  type QuantType,
  quantize4bit,
  type TensorRecord,
  toBnbTensors,
} from './index';

interface Entry {
  offset: number;
  bytes: number;
  dtype: 'F32' | 'U8' | 'BF16' | 'F16';
  count: number;
}
interface Case {
  name: string;
  quantType: QuantType;
  blocksize: number;
  dtype: FloatDtype;
  shape: number[];
  doubleQuant: boolean;
  input: Entry;
  packed: Entry;
  packedShape: number[];
  absmax: Entry;
  dequant: Entry;
  dequantF32: Entry;
  nestedAbsmax?: Entry;
  nestedBlocksize?: number;
  offset?: Entry;
  offsetRepr?: string;
  absmaxReconstructed?: Entry;
}
interface Index {
  tables: Record<string, Entry | number[]>;
  cases: Case[];
}

const index = JSON.parse(readFileSync(fixturePath('nf4', 'cases.json'), 'utf8')) as Index;
const bin = readFileSync(fixturePath('nf4', 'cases.bin'));
const blob = new Uint8Array(bin.buffer, bin.byteOffset, bin.byteLength);

function bytesOf(e: Entry): Uint8Array {
  return blob.slice(e.offset, e.offset + e.bytes);
}
function f32(e: Entry): Float32Array {
  return new Float32Array(bytesOf(e).buffer);
}
function u16(e: Entry): Uint16Array {
  return new Uint16Array(bytesOf(e).buffer);
}
function bitsOf(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}
/**
 * null when both arrays hold the same bytes, else where they first differ (a fast check: vitest's
 * deep equality on 100k-element typed arrays costs seconds).
 */
function firstDifference(
  actual: Float32Array | Uint8Array | Uint16Array | Uint32Array,
  expected: Float32Array | Uint8Array | Uint16Array | Uint32Array,
): string | null {
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const b = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  if (a.length === b.length && a.equals(b)) return null;
  if (actual.length !== expected.length) return `length ${actual.length} vs ${expected.length}`;
  for (let i = 0; i < actual.length; i++) {
    if (!Object.is(actual[i], expected[i])) return `index ${i}: ${actual[i]} vs ${expected[i]}`;
  }
  return 'differ';
}

function inputOf(c: Case): Float32Array | Uint16Array {
  return c.dtype === 'float32' ? f32(c.input) : u16(c.input);
}

describe('codebooks equal the tables bitsandbytes builds', () => {
  it('NF4, FP4 and the dynamic map, bit for bit', () => {
    expect(firstDifference(NF4_CODE, f32(index.tables.nf4 as Entry))).toBeNull();
    expect(firstDifference(FP4_CODE, f32(index.tables.fp4 as Entry))).toBeNull();
    expect(firstDifference(DYNAMIC_CODE, f32(index.tables.dynamic as Entry))).toBeNull();
  });
});

describe.each(index.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
  const q = quantize4bit(inputOf(c), {
    shape: c.shape,
    blocksize: c.blocksize,
    quantType: c.quantType,
    doubleQuant: c.doubleQuant,
    dtype: c.dtype,
  });

  it('packed bytes equal bitsandbytes byte for byte', () => {
    expect(c.packedShape).toEqual([q.packed.length, 1]);
    expect(firstDifference(q.packed, bytesOf(c.packed))).toBeNull();
  });

  it('absmax equals bitsandbytes (float32 bits, or uint8 codes + nested absmax + offset)', () => {
    if (!c.doubleQuant) {
      expect(firstDifference(q.state.absmax as Float32Array, f32(c.absmax))).toBeNull();
      return;
    }
    const nested = q.state.nested;
    expect(nested).toBeDefined();
    expect(Math.fround(nested?.offset ?? Number.NaN)).toBe(f32(c.offset as Entry)[0] as number);
    expect(firstDifference(q.state.absmax, bytesOf(c.absmax))).toBeNull();
    expect(
      firstDifference(nested?.absmax as Float32Array, f32(c.nestedAbsmax as Entry)),
    ).toBeNull();
    expect(nested?.blocksize).toBe(c.nestedBlocksize);
    expect(firstDifference(blockAbsmax(q.state), f32(c.absmaxReconstructed as Entry))).toBeNull();
  });

  it('dequantized values equal bitsandbytes bit for bit (float32 and the original dtype)', () => {
    expect(firstDifference(dequantize4bit(q), f32(c.dequantF32))).toBeNull();
    if (c.dtype === 'float32') {
      expect(firstDifference(dequantize4bit(q, { dtype: 'float32' }), f32(c.dequant))).toBeNull();
    } else {
      expect(firstDifference(dequantize4bit(q, { dtype: c.dtype }), u16(c.dequant))).toBeNull();
    }
  });

  it('dequantizes bitsandbytes’ own stored state bit for bit', () => {
    const tensors: Record<string, TensorRecord> = toBnbTensors(q, 'p');
    // Replace our tensors with bitsandbytes' ones; the JSON blob carries shape/dtype/offset.
    const packed = bytesOf(c.packed);
    tensors['p.weight'] = { dtype: 'U8', shape: [packed.length, 1], data: packed };
    if (c.doubleQuant) {
      tensors['p.weight.absmax'] = {
        dtype: 'U8',
        shape: [c.absmax.count],
        data: bytesOf(c.absmax),
      };
      const nested = f32(c.nestedAbsmax as Entry);
      tensors['p.weight.nested_absmax'] = { dtype: 'F32', shape: [nested.length], data: nested };
    } else {
      tensors['p.weight.absmax'] = { dtype: 'F32', shape: [c.absmax.count], data: f32(c.absmax) };
    }
    const theirs = fromBnbTensors(tensors, 'p');
    expect(firstDifference(dequantize4bit(theirs), f32(c.dequantF32))).toBeNull();
  });
});

describe('double-quantization offset = torch CPU float32 mean', () => {
  const means = JSON.parse(readFileSync(fixturePath('nf4', 'means.json'), 'utf8')) as {
    n: number;
    bits: number;
  }[];
  const versions = JSON.parse(readFileSync(fixturePath('nf4', 'versions.json'), 'utf8')) as {
    torch_num_threads: number;
  };
  it.each(means.map((m) => [m.n, m] as const))('n = %i', (n, m) => {
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      v[i] = Number((BigInt(i) * 2654435761n) % 2n ** 32n) / 2 ** 32;
    }
    const mean = torchMeanFloat32(v, { threads: versions.torch_num_threads });
    expect(bitsOf(new Float32Array([mean]))[0]).toBe(m.bits >>> 0);
  });
});

/** Minimal safetensors reader for the fixture (the package itself imports nothing). */
function readSafetensors(path: string): Record<string, TensorRecord> {
  const file = readFileSync(path);
  const headerLength = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + headerLength).toString('utf8')) as Record<
    string,
    { dtype: TensorRecord['dtype']; shape: number[]; data_offsets: [number, number] }
  >;
  const out: Record<string, TensorRecord> = {};
  for (const [key, info] of Object.entries(header)) {
    if (key === '__metadata__') continue;
    const [begin, end] = info.data_offsets;
    const bytes = new Uint8Array(file.subarray(8 + headerLength + begin, 8 + headerLength + end));
    const copy = bytes.slice().buffer;
    const data =
      info.dtype === 'F32'
        ? new Float32Array(copy)
        : info.dtype === 'BF16' || info.dtype === 'F16'
          ? new Uint16Array(copy)
          : new Uint8Array(copy);
    out[key] = { dtype: info.dtype, shape: info.shape, data };
  }
  return out;
}

describe('Linear4bit state_dict saved by bitsandbytes + safetensors', () => {
  const file = readSafetensors(fixturePath('nf4', 'linear4bit.safetensors'));
  const versions = JSON.parse(readFileSync(fixturePath('nf4', 'versions.json'), 'utf8')) as {
    linear4bit: Record<string, { blocksize: number; keys: string[] }>;
  };
  const layers: Record<string, { quantType: QuantType; doubleQuant: boolean; dtype: FloatDtype }> =
    {
      q_proj: { quantType: 'nf4', doubleQuant: true, dtype: 'bfloat16' },
      v_proj: { quantType: 'fp4', doubleQuant: false, dtype: 'float32' },
      o_proj: { quantType: 'nf4', doubleQuant: false, dtype: 'float16' },
    };
  it.each(Object.entries(layers))(
    '%s: toBnbTensors writes the same keys, dtypes, shapes, bytes and JSON',
    (name, cfg) => {
      const source = file[`source.${name}`] as TensorRecord;
      const info = versions.linear4bit[name] as { blocksize: number; keys: string[] };
      const q = quantize4bit(source.data as Float32Array | Uint16Array, {
        shape: source.shape,
        dtype: cfg.dtype,
        quantType: cfg.quantType,
        doubleQuant: cfg.doubleQuant,
        blocksize: info.blocksize,
      });
      const ours = toBnbTensors(q, name);
      // Same keys in the state_dict order bitsandbytes produced (bias is the layer's, not ours).
      expect(Object.keys(ours)).toEqual(info.keys.filter((k) => k !== `${name}.bias`));
      for (const [key, record] of Object.entries(ours)) {
        const theirs = file[key] as TensorRecord;
        expect({ key, dtype: record.dtype, shape: record.shape }).toEqual({
          key,
          dtype: theirs.dtype,
          shape: theirs.shape,
        });
        expect(
          firstDifference(record.data as Uint8Array, theirs.data as Uint8Array),
          key,
        ).toBeNull();
      }
      const blobKey = `${name}.weight.quant_state.bitsandbytes__${cfg.quantType}`;
      const json = new TextDecoder().decode((file[blobKey] as TensorRecord).data as Uint8Array);
      expect(new TextDecoder().decode(ours[blobKey]?.data as Uint8Array)).toBe(json);
    },
  );

  it.each(Object.keys(layers))('%s: fromBnbTensors reads the bitsandbytes file', (name) => {
    const q = fromBnbTensors(file, name);
    const again = toBnbTensors(q, name);
    for (const [key, record] of Object.entries(again)) {
      expect(
        firstDifference(record.data as Uint8Array, (file[key] as TensorRecord).data as Uint8Array),
        key,
      ).toBeNull();
    }
  });
});

describe('a checkpoint written by @qlora/nf4 reads back in bitsandbytes', () => {
  // tools/reference/nf4_write_checkpoint.ts wrote ts-written.safetensors; nf4_bnb.py verify loaded
  // it with QuantState.from_dict + dequantize_4bit and re-quantized the sources with bitsandbytes.
  const report = JSON.parse(readFileSync(fixturePath('nf4', 'bnb-reads-ts.json'), 'utf8')) as {
    ok: boolean;
    layers: Record<
      string,
      { ok: boolean; dequantBitExact: boolean; jsonOurs: string; jsonBnb: string }
    >;
  };
  const file = readSafetensors(fixturePath('nf4', 'ts-written.safetensors'));
  const header = readFileSync(fixturePath('nf4', 'ts-written.safetensors'));
  const meta = JSON.parse(
    (
      JSON.parse(header.subarray(8, 8 + Number(header.readBigUInt64LE(0))).toString('utf8')) as {
        __metadata__: { layers: string };
      }
    ).__metadata__.layers,
  ) as Record<
    string,
    { shape: number[]; blocksize: number; doubleQuant: boolean; quantType: QuantType }
  >;

  it('bitsandbytes reported every layer bit-exact, with identical tensors and JSON', () => {
    expect(report.ok).toBe(true);
    expect(Object.keys(report.layers).sort()).toEqual(Object.keys(meta).sort());
    for (const layer of Object.values(report.layers)) {
      expect(layer.ok && layer.dequantBitExact).toBe(true);
      expect(layer.jsonOurs).toBe(layer.jsonBnb);
    }
  });

  it.each(Object.entries(meta))(
    '%s: the verified file is what the current code writes',
    (name, info) => {
      const source = file[`source.${name}`] as TensorRecord;
      const dtype: FloatDtype =
        source.dtype === 'F32' ? 'float32' : source.dtype === 'BF16' ? 'bfloat16' : 'float16';
      const q = quantize4bit(source.data as Float32Array | Uint16Array, { ...info, dtype });
      for (const [key, record] of Object.entries(toBnbTensors(q, name))) {
        expect(
          firstDifference(
            record.data as Uint8Array,
            (file[key] as TensorRecord).data as Uint8Array,
          ),
          key,
        ).toBeNull();
      }
      const ours = dequantize4bit(q, { dtype });
      expect(
        firstDifference(ours, (file[`ts_dequant.${name}`] as TensorRecord).data as Uint16Array),
      ).toBeNull();
    },
  );
});

describe('Python float repr in the JSON blob', () => {
  const withRepr = index.cases.filter((c) => c.offsetRepr !== undefined);
  it.each(withRepr.map((c) => [c.name, c] as const))(
    '%s: nested_offset prints as Python repr',
    (_n, c) => {
      const offset = f32(c.offset as Entry)[0] as number;
      expect(pythonFloatRepr(offset)).toBe(c.offsetRepr);
    },
  );
  it('switches to exponent notation where Python does', () => {
    // Python: repr(1e-05), repr(0.0001), repr(1e16), repr(1e15), repr(-2.5), repr(5e-324)
    expect(pythonFloatRepr(1e-5)).toBe('1e-05');
    expect(pythonFloatRepr(0.0001)).toBe('0.0001');
    expect(pythonFloatRepr(1.5e-7)).toBe('1.5e-07');
    expect(pythonFloatRepr(1e16)).toBe('1e+16');
    expect(pythonFloatRepr(1e15)).toBe('1000000000000000.0');
    expect(pythonFloatRepr(123.0)).toBe('123.0');
    expect(pythonFloatRepr(-2.5)).toBe('-2.5');
    expect(pythonFloatRepr(5e-324)).toBe('5e-324');
    expect(pythonFloatRepr(1.7976931348623157e308)).toBe('1.7976931348623157e+308');
    expect(pythonFloatRepr(0)).toBe('0.0');
  });
});
