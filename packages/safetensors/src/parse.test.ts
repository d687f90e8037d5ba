import { readFileSync } from 'node:fs';
import { fc, test } from '@fast-check/vitest';
import { fixturePath } from '@qlora/test-utils';
import { describe, expect, it } from 'vitest';
import { SAFETENSORS_DTYPES, type SafetensorsDtype, type TensorEntry } from './dtypes';
import { SafetensorsError } from './errors';
import { parseSafetensors } from './parse';
import { serializeSafetensors } from './serialize';

const encoder = new TextEncoder();

/** A file from a raw header string and a data buffer, padded like nothing: exactly as given. */
function fileOf(header: string, dataLength: number): Uint8Array {
  const json = encoder.encode(header);
  const out = new Uint8Array(8 + json.length + dataLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof SafetensorsError) return `${error.code}:${error.rule}`;
    throw error;
  }
  return 'ok';
}

const allMutationsSeed = { seed: 20261128, numRuns: 1000 };

describe('validation rules (each a SafetensorsError naming the rule)', () => {
  it.each([
    ['short file', new Uint8Array(3), 'HEADER_TOO_SMALL:header-length-present'],
    [
      'length over 100 MB',
      (() => {
        const b = new Uint8Array(16);
        new DataView(b.buffer).setBigUint64(0, 100_000_001n, true);
        return b;
      })(),
      'HEADER_TOO_LARGE:header-length-max',
    ],
    [
      'length 2^64-1',
      (() => {
        const b = new Uint8Array(16);
        new DataView(b.buffer).setBigUint64(0, (1n << 64n) - 1n, true);
        return b;
      })(),
      'HEADER_TOO_LARGE:header-length-max',
    ],
    [
      'length past the file',
      (() => {
        const b = new Uint8Array(16);
        b[0] = 9;
        return b;
      })(),
      'INVALID_HEADER_LENGTH:header-within-file',
    ],
  ])('%s', (_, bytes, code) => {
    expect(codeOf(() => parseSafetensors(bytes))).toBe(code);
  });

  it.each([
    ['not JSON', '{"a":', 0, 'INVALID_HEADER_JSON:header-json'],
    ['array header', '[]', 0, 'INVALID_HEADER_JSON:header-object'],
    ['trailing garbage', '{}x', 0, 'INVALID_HEADER_JSON:header-json'],
    [
      'duplicate tensor',
      '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}',
      2,
      'INVALID_HEADER_JSON:no-duplicate-keys',
    ],
    [
      'duplicate field',
      '{"a":{"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]}}',
      1,
      'INVALID_HEADER_JSON:no-duplicate-keys',
    ],
    [
      'unknown dtype',
      '{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,1]}}',
      1,
      'INVALID_TENSOR_INFO:tensor-info-types',
    ],
    [
      'shape of floats',
      '{"a":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}}',
      1,
      'INVALID_TENSOR_INFO:tensor-info-types',
    ],
    [
      'negative dim',
      '{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}',
      1,
      'INVALID_TENSOR_INFO:tensor-info-types',
    ],
    [
      'missing shape',
      '{"a":{"dtype":"U8","data_offsets":[0,1]}}',
      1,
      'INVALID_TENSOR_INFO:tensor-info-types',
    ],
    [
      'three offsets',
      '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}',
      1,
      'INVALID_TENSOR_INFO:tensor-info-types',
    ],
    [
      'offset over u64',
      '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,18446744073709551616]}}',
      1,
      'INVALID_TENSOR_INFO:tensor-info-types',
    ],
    ['entry not an object', '{"a":3}', 0, 'INVALID_TENSOR_INFO:tensor-info-types'],
    ['metadata not strings', '{"__metadata__":{"n":1}}', 0, 'INVALID_METADATA:metadata-string-map'],
    [
      'metadata nested',
      '{"__metadata__":{"n":{"x":"y"}}}',
      0,
      'INVALID_METADATA:metadata-string-map',
    ],
    ['metadata array', '{"__metadata__":["x"]}', 0, 'INVALID_METADATA:metadata-string-map'],
    [
      'gap at start',
      '{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}',
      2,
      'INVALID_OFFSETS:offsets-contiguous',
    ],
    [
      'overlap',
      '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}',
      3,
      'INVALID_OFFSETS:offsets-contiguous',
    ],
    [
      'gap between',
      '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}',
      3,
      'INVALID_OFFSETS:offsets-contiguous',
    ],
    [
      'end before begin',
      '{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,0]}}',
      1,
      'INVALID_OFFSETS:offsets-contiguous',
    ],
    [
      'shape vs bytes',
      '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}',
      4,
      'SIZE_MISMATCH:size-matches-offsets',
    ],
    [
      '[2^40, 2^40] F32',
      '{"a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}}',
      4,
      'SIZE_MISMATCH:size-no-overflow',
    ],
    [
      '[2^26, 2^26] F32',
      '{"a":{"dtype":"F32","shape":[67108864,67108864],"data_offsets":[0,4]}}',
      4,
      'SIZE_MISMATCH:size-matches-offsets',
    ],
    [
      'u64 overflow',
      '{"a":{"dtype":"F32","shape":[4294967296,4294967296,2],"data_offsets":[0,4]}}',
      4,
      'SIZE_MISMATCH:size-no-overflow',
    ],
    [
      'odd F4 count',
      '{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}',
      2,
      'SIZE_MISMATCH:size-whole-bytes',
    ],
    [
      'trailing bytes',
      '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
      2,
      'INCOMPLETE_BUFFER:buffer-fully-covered',
    ],
    [
      'missing bytes',
      '{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}',
      3,
      'INCOMPLETE_BUFFER:buffer-fully-covered',
    ],
    ['BOM', '\ufeff{}', 0, 'INVALID_HEADER_JSON:header-json'],
    [
      'lone surrogate escape',
      '{"\\ud800":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}',
      0,
      'INVALID_HEADER_JSON:header-json',
    ],
    [
      'deep nesting',
      `{"__metadata__":${'['.repeat(100_000)}}`,
      0,
      'INVALID_HEADER_JSON:header-json',
    ],
  ])('%s', (_, header, dataLength, code) => {
    expect(codeOf(() => parseSafetensors(fileOf(header, dataLength)))).toBe(code);
  });

  it('names the tensor that broke the rule', () => {
    const bytes = fileOf(
      '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"wq":{"dtype":"F32","shape":[3],"data_offsets":[1,5]}}',
      5,
    );
    try {
      parseSafetensors(bytes);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(SafetensorsError);
      expect((error as SafetensorsError).tensor).toBe('wq');
      expect((error as SafetensorsError).message).toMatch(
        /^\[@qlora\/safetensors\] Tensor "wq" .*expected 12 bytes.*got 4/,
      );
    }
  });

  it('rejects invalid UTF-8 in the header', () => {
    const bytes = fileOf('{"a":{}}', 0);
    bytes[10] = 0xff;
    expect(codeOf(() => parseSafetensors(bytes))).toBe('INVALID_HEADER_UTF8:header-utf8');
  });

  it('accepts what the Rust crate accepts: leading whitespace, any header order, unknown fields, zero-size tensors', () => {
    const header =
      '  {"b":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"extra":[1,{"x":null}]},"e":{"dtype":"F32","shape":[0,5],"data_offsets":[2,2]},"__metadata__":{"k":"v"}}';
    const parsed = parseSafetensors(fileOf(header, 2));
    expect(Object.keys(parsed.tensors)).toEqual(['b', 'e']);
    expect(parsed.metadata).toEqual({ k: 'v' });
    expect(parsed.tensors.e?.data).toEqual(new Float32Array(0));
  });

  it('keeps a tensor named __proto__ as an ordinary entry', () => {
    const parsed = parseSafetensors(
      serializeSafetensors({
        ['__proto__']: { dtype: 'U8', shape: [1], data: new Uint8Array([7]) },
      } as never),
    );
    expect(Object.keys(parsed.tensors)).toEqual(['__proto__']);
  });

  it('copies tensors whose offset is unaligned, views the rest', () => {
    const file = serializeSafetensors({
      a: { dtype: 'F32', shape: [2], data: new Float32Array([1.5, -2]) },
      b: { dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 3]) },
    });
    const shifted = new Uint8Array(file.length + 1).subarray(1);
    shifted.set(file);
    const parsed = parseSafetensors(shifted);
    expect(parsed.tensors.a?.data).toEqual(new Float32Array([1.5, -2]));
    expect(parsed.tensors.a?.data.buffer).not.toBe(shifted.buffer);
    expect(parsed.tensors.b?.data.buffer).toBe(shifted.buffer);
  });
});

describe('serializeSafetensors', () => {
  it('matches the Rust crate test vectors', () => {
    // safetensors/src/tensor.rs test_serialization / test_empty
    const out = serializeSafetensors({
      'attn.0': { dtype: 'F32', shape: [1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) },
    });
    expect(Array.from(out.subarray(0, 8))).toEqual([64, 0, 0, 0, 0, 0, 0, 0]);
    expect(new TextDecoder().decode(out.subarray(8, 72))).toBe(
      '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}',
    );
    expect(Array.from(serializeSafetensors({}))).toEqual([
      8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32,
    ]);
    expect(serializeSafetensors({}, { framework: 'pt' }).length).toBe(48);
  });

  it('orders names by code point (UTF-8 byte order), not UTF-16 units', () => {
    const u8 = (x: number) => ({ dtype: 'U8' as const, shape: [1], data: new Uint8Array([x]) });
    const out = parseSafetensors(serializeSafetensors({ '😀': u8(1), '\ue000': u8(2), a: u8(3) }));
    expect(Object.keys(out.tensors)).toEqual(['a', '\ue000', '😀']);
  });

  it.each([
    ['wrong data length', { a: { dtype: 'F32', shape: [2], data: new Float32Array(3) } }],
    ['unknown dtype', { a: { dtype: 'F128', shape: [1], data: new Uint8Array(16) } }],
    ['fractional dim', { a: { dtype: 'U8', shape: [1.5], data: new Uint8Array(1) } }],
    [
      '__metadata__ as a name',
      { __metadata__: { dtype: 'U8', shape: [1], data: new Uint8Array(1) } },
    ],
    ['not a view', { a: { dtype: 'U8', shape: [1], data: [1] } }],
  ])('refuses %s', (_, tensors) => {
    expect(codeOf(() => serializeSafetensors(tensors as never))).toBe(
      'INVALID_TENSOR:tensor-input',
    );
  });

  it('refuses non-string metadata', () => {
    expect(codeOf(() => serializeSafetensors({}, { n: 1 } as never))).toBe(
      'INVALID_METADATA:metadata-string-map',
    );
  });
});

// ---- properties ---------------------------------------------------------------------------------

const BYTES: Record<SafetensorsDtype, number> = {
  BOOL: 1,
  F4: 0.5,
  F6_E2M3: 0.75,
  F6_E3M2: 0.75,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  F8_E8M0: 1,
  F8_E4M3FNUZ: 1,
  F8_E5M2FNUZ: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  C64: 8,
  F64: 8,
  I64: 8,
  U64: 8,
};

const tensorArb = fc
  .record({
    dtype: fc.constantFrom(...SAFETENSORS_DTYPES),
    shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }),
  })
  .chain(({ dtype, shape }) => {
    const elements = shape.reduce((a, b) => a * b, 1);
    // sub-byte dtypes need whole bytes: make the count a multiple of 4
    const fixedShape = BYTES[dtype] < 1 ? [...shape, 4] : shape;
    const length = BYTES[dtype] < 1 ? elements * 4 * BYTES[dtype] : elements * BYTES[dtype];
    return fc
      .uint8Array({ minLength: length, maxLength: length })
      .map((data) => ({ dtype, shape: fixedShape, data }));
  });

const tensorsArb = fc
  .dictionary(fc.string({ maxLength: 6, unit: 'grapheme' }), tensorArb, { maxKeys: 6 })
  .filter((d) => !('__metadata__' in d));
const metadataArb = fc.option(
  fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
  {
    nil: undefined,
  },
);

const bytesOf = (entry: TensorEntry) =>
  Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength);

test.prop([tensorsArb, metadataArb], { seed: 7, numRuns: 200 })(
  'parse(serialize(x)) = x for every dtype',
  (tensors, metadata) => {
    const parsed = parseSafetensors(serializeSafetensors(tensors, metadata));
    expect(parsed.metadata === undefined ? undefined : { ...parsed.metadata }).toEqual(metadata);
    expect(Object.keys(parsed.tensors).sort()).toEqual(Object.keys(tensors).sort());
    for (const [name, tensor] of Object.entries(tensors)) {
      const entry = parsed.tensors[name] as TensorEntry;
      expect(entry.dtype).toBe(tensor.dtype);
      expect(entry.shape).toEqual(tensor.shape);
      expect(bytesOf(entry).equals(Buffer.from(tensor.data))).toBe(true);
      // typed arrays of the right kind, aligned views (the writer aligns)
      expect(entry.data.byteOffset % (entry.data as Uint8Array).BYTES_PER_ELEMENT).toBe(0);
    }
    // and serializing what was read gives the same bytes again
    expect(serializeSafetensors(parsed.tensors, parsed.metadata)).toEqual(
      serializeSafetensors(tensors, metadata),
    );
  },
);

const seedFiles = [
  'all-dtypes.safetensors',
  'mixed-order.safetensors',
  'numpy.safetensors',
  'multi-meta.safetensors',
].map((f) => new Uint8Array(readFileSync(fixturePath('safetensors', f))));

/** Anything but a SafetensorsError (or a successful parse) fails the property. */
function parseOnlyThrowsSafetensorsError(bytes: Uint8Array): void {
  try {
    const parsed = parseSafetensors(bytes);
    // a successful parse must describe bytes that exist: touch every tensor's end
    for (const entry of Object.values(parsed.tensors)) {
      expect(entry.data.byteOffset + entry.data.byteLength).toBeLessThanOrEqual(
        entry.data.buffer.byteLength,
      );
    }
  } catch (error) {
    if (!(error instanceof SafetensorsError)) throw error;
  }
}

describe('mutations of valid files end only in SafetensorsError', () => {
  const fileArb = fc.constantFrom(...seedFiles);

  test.prop(
    [
      fileArb,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 8,
      }),
    ],
    allMutationsSeed,
  )('byte flips anywhere (weighted to the header)', (file, flips) => {
    const bytes = file.slice();
    const headerEnd = 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true));
    for (const [at, value] of flips) {
      const index = at % 3 === 0 ? at % bytes.length : at % headerEnd;
      bytes[index] = value;
    }
    parseOnlyThrowsSafetensorsError(bytes);
  });

  test.prop([fileArb, fc.nat()], allMutationsSeed)('truncation', (file, cut) => {
    const bytes = file.slice(0, cut % file.length);
    expect(() => parseSafetensors(bytes)).toThrow(SafetensorsError);
  });

  test.prop([fileArb, fc.nat(), fc.string({ maxLength: 12 })], allMutationsSeed)(
    'header rewrites (text spliced into the JSON, length fixed up)',
    (file, at, insert) => {
      const n = Number(new DataView(file.buffer).getBigUint64(0, true));
      const header = new TextDecoder().decode(file.subarray(8, 8 + n));
      const cut = at % header.length;
      const rewritten = header.slice(0, cut) + insert + header.slice(cut + (at % 3));
      const json = encoder.encode(rewritten);
      const out = new Uint8Array(8 + json.length + file.length - 8 - n);
      new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
      out.set(json, 8);
      out.set(file.subarray(8 + n), 8 + json.length);
      parseOnlyThrowsSafetensorsError(out);
    },
  );

  const numberArb = fc.oneof(
    fc.constantFrom(
      '0',
      '1',
      '-1',
      '1.5',
      '1e3',
      '18446744073709551615',
      '18446744073709551616',
      '9007199254740993',
      '4294967296',
    ),
    fc.nat().map(String),
  );
  const headerArb = fc
    .array(
      fc.record({
        name: fc.oneof(fc.string({ maxLength: 4 }), fc.constant('__metadata__'), fc.constant('a')),
        dtype: fc.oneof(fc.constantFrom(...SAFETENSORS_DTYPES), fc.string({ maxLength: 4 })),
        shape: fc.array(numberArb, { maxLength: 4 }),
        offsets: fc.array(numberArb, { maxLength: 3 }),
      }),
      { maxLength: 5 },
    )
    .map(
      (entries) =>
        `{${entries
          .map(
            (e) =>
              `${JSON.stringify(e.name)}:{"dtype":${JSON.stringify(e.dtype)},"shape":[${e.shape.join(',')}],"data_offsets":[${e.offsets.join(',')}]}`,
          )
          .join(',')}}`,
    );

  test.prop(
    [fc.oneof(headerArb, fc.json(), fc.string({ maxLength: 40 })), fc.nat({ max: 64 })],
    allMutationsSeed,
  )('random headers', (header, dataLength) => {
    parseOnlyThrowsSafetensorsError(fileOf(header, dataLength));
  });

  test.prop(
    [fc.uint8Array({ maxLength: 64 }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })],
    allMutationsSeed,
  )('random bytes after a random length prefix', (body, n) => {
    const bytes = new Uint8Array(8 + body.length);
    new DataView(bytes.buffer).setBigUint64(0, n % 3n === 0n ? BigInt(body.length) : n, true);
    bytes.set(body, 8);
    parseOnlyThrowsSafetensorsError(bytes);
  });
});

describe('package boundaries', () => {
  it('the main entry imports no node:* module (only the ./node entry may)', async () => {
    const { readdirSync, readFileSync: read } = await import('node:fs');
    const here = new URL('.', import.meta.url);
    for (const file of readdirSync(here)) {
      if (
        !file.endsWith('.ts') ||
        file.endsWith('.test.ts') ||
        file === 'fs.ts' ||
        file === 'node.ts'
      )
        continue;
      expect(read(new URL(file, here), 'utf8')).not.toMatch(
        /^(import|export)[^\n]*from '(node:|fs'|path'|os')/m,
      );
    }
  });
});
