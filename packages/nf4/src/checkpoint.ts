import { pythonJsonDumps } from './_python-json';
import { BLOCKSIZES, describe, FLOAT_DTYPES, shapeSize } from './_validate';
import { Nf4Error } from './errors';
import { checkQuantized } from './quantize';
import type { FloatDtype, Quantized4bit, QuantState, QuantType, TensorRecord } from './types';

/** Largest JSON blob we decode; bitsandbytes writes about 200 bytes. */
const MAX_BLOB_BYTES = 64 * 1024;

/** Leaf keys bitsandbytes' `QuantState.from_dict` accepts (after stripping the prefix). */
const TENSOR_LEAVES = ['absmax', 'quant_map', 'nested_absmax', 'nested_quant_map'];
const JSON_KEYS = [
  'quant_type',
  'blocksize',
  'dtype',
  'shape',
  'nested_blocksize',
  'nested_dtype',
  'nested_offset',
];

function weightPrefix(prefix: string): string {
  if (typeof prefix !== 'string') {
    throw new Nf4Error(
      'INVALID_INPUT',
      `prefix: expected a string such as 'model.layers.0.mlp.up_proj', got ${describe(prefix)}`,
    );
  }
  return prefix === '' || prefix.endsWith('.') ? `${prefix}weight` : `${prefix}.weight`;
}

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/**
 * The JSON text bitsandbytes packs into `weight.quant_state.bitsandbytes__<type>`: Python
 * `json.dumps` with default separators, keys in `QuantState.as_dict` order, floats as Python
 * `repr` prints them.
 *
 * @example
 * ```ts
 * import { quantStateJson, quantize4bit } from '@qlora/nf4';
 * quantStateJson(quantize4bit(new Float32Array(128), { shape: [2, 64] }).state);
 * // '{"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [2, 64]}'
 * ```
 */
export function quantStateJson(state: QuantState): string {
  const entries: Parameters<typeof pythonJsonDumps>[0] = [
    ['quant_type', state.quantType],
    ['blocksize', state.blocksize],
    ['dtype', state.dtype],
    ['shape', state.shape],
  ];
  if (state.nested) {
    entries.push(
      ['nested_blocksize', state.nested.blocksize],
      ['nested_dtype', state.nested.dtype],
      ['nested_offset', { float: state.nested.offset }],
    );
  }
  return pythonJsonDumps(entries);
}

/**
 * The tensors bitsandbytes' `Linear4bit` writes into a state_dict for this weight (bias not
 * included), keyed `<prefix>.weight`, `<prefix>.weight.absmax`, `<prefix>.weight.quant_map`,
 * (`.nested_absmax`, `.nested_quant_map` with double quantization) and
 * `<prefix>.weight.quant_state.bitsandbytes__nf4|fp4` (the UTF-8 JSON blob), with bitsandbytes'
 * dtypes and shapes and in its order. Feed them to any safetensors writer.
 *
 * @example
 * ```ts
 * import { quantize4bit, toBnbTensors } from '@qlora/nf4';
 * const q = quantize4bit(new Float32Array(128), { shape: [2, 64] });
 * Object.keys(toBnbTensors(q, 'model.layers.0.mlp.up_proj'));
 * // ['model.layers.0.mlp.up_proj.weight', '….weight.absmax', '….weight.quant_map',
 * //  '….weight.quant_state.bitsandbytes__nf4']
 * ```
 */
export function toBnbTensors(q: Quantized4bit, prefix: string): Record<string, TensorRecord> {
  checkQuantized(q);
  const w = weightPrefix(prefix);
  const { state, packed } = q;
  const out: Record<string, TensorRecord> = {};
  out[w] = { dtype: 'U8', shape: [packed.length, 1], data: packed.slice() };
  out[`${w}.absmax`] = {
    dtype: state.nested ? 'U8' : 'F32',
    shape: [state.absmax.length],
    data: state.absmax.slice(),
  };
  out[`${w}.quant_map`] = { dtype: 'F32', shape: [16], data: state.code.slice() };
  if (state.nested) {
    out[`${w}.nested_absmax`] = {
      dtype: 'F32',
      shape: [state.nested.absmax.length],
      data: state.nested.absmax.slice(),
    };
    out[`${w}.nested_quant_map`] = {
      dtype: 'F32',
      shape: [state.nested.code.length],
      data: state.nested.code.slice(),
    };
  }
  const blob = utf8(quantStateJson(state));
  out[`${w}.quant_state.bitsandbytes__${state.quantType}`] = {
    dtype: 'U8',
    shape: [blob.length],
    data: blob,
  };
  return out;
}

function fail(what: string, expected: string, got: unknown): never {
  throw new Nf4Error(
    'INVALID_CHECKPOINT',
    `${what}: expected ${expected}, got ${typeof got === 'string' ? got : describe(got)}`,
  );
}

/** Element count of a tensor record after checking that its shape and data agree. */
function recordSize(key: string, record: TensorRecord): number {
  if (record === null || typeof record !== 'object')
    fail(key, 'a { dtype, shape, data } record', record);
  const n = shapeSize(record.shape, 'INVALID_CHECKPOINT');
  if (!ArrayBuffer.isView(record.data) || (record.data as Uint8Array).length !== n) {
    fail(
      `${key} data`,
      `a typed array of ${n} elements (shape ${describe(record.shape)})`,
      record.data,
    );
  }
  return n;
}

function expectF32(key: string, record: TensorRecord | undefined, length: number): Float32Array {
  if (!record) fail(key, `a F32 tensor of ${length} elements`, 'nothing');
  const n = recordSize(key, record);
  if (record.dtype !== 'F32' || !(record.data instanceof Float32Array) || n !== length) {
    fail(
      key,
      `a F32 tensor (Float32Array) of ${length} elements`,
      `${record.dtype} ${describe(record.shape)}`,
    );
  }
  return record.data.slice();
}

function expectU8(key: string, record: TensorRecord | undefined, length?: number): Uint8Array {
  if (!record) fail(key, 'a U8 tensor', 'nothing');
  const n = recordSize(key, record);
  if (
    record.dtype !== 'U8' ||
    !(record.data instanceof Uint8Array) ||
    (length !== undefined && n !== length)
  ) {
    fail(
      key,
      `a U8 tensor (Uint8Array)${length === undefined ? '' : ` of ${length} elements`}`,
      `${record.dtype} ${describe(record.shape)}`,
    );
  }
  return record.data;
}

function parseBlob(key: string, bytes: Uint8Array): Record<string, unknown> {
  if (bytes.length > MAX_BLOB_BYTES)
    fail(key, `at most ${MAX_BLOB_BYTES} bytes of JSON`, `${bytes.length} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw new Nf4Error('INVALID_CHECKPOINT', `${key}: expected UTF-8 JSON, got unparsable bytes`, {
      cause: error,
    });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    fail(key, 'a JSON object', value);
  const unknownKey = Object.keys(value).find((k) => !JSON_KEYS.includes(k));
  if (unknownKey !== undefined) fail(`${key} key`, JSON_KEYS.join(', '), unknownKey);
  return value as Record<string, unknown>;
}

/**
 * Reads one bitsandbytes 4-bit weight back from state_dict/safetensors tensors, as
 * `QuantState.from_dict` does: exactly one `<prefix>.weight.quant_state.bitsandbytes__nf4|fp4`
 * blob, double quantization detected by `nested_absmax`. Every length is checked against the
 * data actually present before anything is allocated, so a hostile file cannot trigger a huge
 * allocation; any inconsistency throws `Nf4Error` (`INVALID_CHECKPOINT`). The stored weight may
 * use any dtype (bitsandbytes' `quant_storage`): its bytes are read as uint8.
 *
 * @example
 * ```ts
 * import { fromBnbTensors, quantize4bit, toBnbTensors } from '@qlora/nf4';
 * const q = quantize4bit(new Float32Array([1, -1, 0, 0.5]));
 * const back = fromBnbTensors(toBnbTensors(q, 'layer'), 'layer');
 * back.packed; // Uint8Array [0xf0, 0x7c]
 * ```
 */
export function fromBnbTensors(
  tensors: Record<string, TensorRecord>,
  prefix: string,
): Quantized4bit {
  if (tensors === null || typeof tensors !== 'object') {
    throw new Nf4Error(
      'INVALID_CHECKPOINT',
      `tensors: expected a record of tensors, got ${describe(tensors)}`,
    );
  }
  const w = weightPrefix(prefix);
  const stateKeys = Object.keys(tensors).filter((k) => k.startsWith(`${w}.`));
  const blobKeys = stateKeys.filter((k) => k.startsWith(`${w}.quant_state.`));
  if (blobKeys.length !== 1) {
    fail(
      `${w}.quant_state.*`,
      `exactly one of ${w}.quant_state.bitsandbytes__nf4 / __fp4`,
      blobKeys.length === 0 ? 'none' : blobKeys.join(', '),
    );
  }
  const blobKey = blobKeys[0] as string;
  const typeFromKey = blobKey.slice(`${w}.quant_state.bitsandbytes__`.length);
  if (
    !blobKey.startsWith(`${w}.quant_state.bitsandbytes__`) ||
    (typeFromKey !== 'nf4' && typeFromKey !== 'fp4')
  ) {
    fail('quant_state key', `${w}.quant_state.bitsandbytes__nf4 or __fp4`, blobKey);
  }
  for (const k of stateKeys) {
    const leaf = k.slice(w.length + 1);
    if (k !== blobKey && !TENSOR_LEAVES.includes(leaf))
      fail(`${k}`, `one of ${TENSOR_LEAVES.join(', ')}`, leaf);
  }
  const json = parseBlob(blobKey, expectU8(blobKey, tensors[blobKey]));

  const quantType = json.quant_type;
  if (quantType !== typeFromKey)
    fail(`${blobKey} quant_type`, `"${typeFromKey}" (from the key)`, quantType);
  const blocksize = json.blocksize;
  if (typeof blocksize !== 'number' || !BLOCKSIZES.includes(blocksize)) {
    fail(`${blobKey} blocksize`, `one of ${BLOCKSIZES.join(', ')}`, blocksize);
  }
  const dtype = json.dtype;
  if (typeof dtype !== 'string' || !(FLOAT_DTYPES as readonly string[]).includes(dtype)) {
    fail(`${blobKey} dtype`, FLOAT_DTYPES.join(', '), dtype);
  }
  const shape = json.shape;
  const n = shapeSize(shape, 'INVALID_CHECKPOINT');
  if (n === 0) fail(`${blobKey} shape`, 'at least 1 element', shape);

  const weight = tensors[w];
  if (!weight) fail(w, 'the packed 4-bit weight tensor', 'nothing');
  recordSize(w, weight);
  const data = weight.data;
  const packedView = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (packedView.length !== Math.ceil(n / 2)) {
    fail(
      `${w} bytes`,
      `ceil(${n} / 2) = ${Math.ceil(n / 2)} for shape ${describe(shape)}`,
      packedView.length,
    );
  }
  const blocks = Math.ceil(n / blocksize);
  const code = expectF32(`${w}.quant_map`, tensors[`${w}.quant_map`], 16);
  const base = {
    quantType: quantType as QuantType,
    blocksize,
    shape: (shape as number[]).slice(),
    dtype: dtype as FloatDtype,
    code,
  };
  const packed = packedView.slice();

  if (!(`${w}.nested_absmax` in tensors)) {
    const absmax = expectF32(`${w}.absmax`, tensors[`${w}.absmax`], blocks);
    return { packed, state: { ...base, absmax } };
  }
  const nestedBlocksize = json.nested_blocksize;
  if (
    typeof nestedBlocksize !== 'number' ||
    !Number.isSafeInteger(nestedBlocksize) ||
    nestedBlocksize < 1 ||
    nestedBlocksize > 4096
  ) {
    fail(
      `${blobKey} nested_blocksize`,
      'an integer 1…4096 (bitsandbytes writes 256)',
      nestedBlocksize,
    );
  }
  if (json.nested_dtype !== 'float32')
    fail(`${blobKey} nested_dtype`, '"float32"', json.nested_dtype);
  const offset = json.nested_offset;
  if (typeof offset !== 'number' || !Number.isFinite(offset))
    fail(`${blobKey} nested_offset`, 'a finite number', offset);
  const absmax = expectU8(`${w}.absmax`, tensors[`${w}.absmax`], blocks).slice();
  const nestedAbsmax = expectF32(
    `${w}.nested_absmax`,
    tensors[`${w}.nested_absmax`],
    Math.ceil(blocks / nestedBlocksize),
  );
  const nestedCode = expectF32(`${w}.nested_quant_map`, tensors[`${w}.nested_quant_map`], 256);
  const state: QuantState = {
    ...base,
    absmax,
    nested: {
      offset: Math.fround(offset),
      absmax: nestedAbsmax,
      code: nestedCode,
      blocksize: nestedBlocksize,
      dtype: 'float32',
    },
  };
  return { packed, state };
}
