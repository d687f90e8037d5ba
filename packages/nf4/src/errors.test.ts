import { describe, expect, it } from 'vitest';
import {
  dequantize4bit,
  fromBnbTensors,
  Nf4Error,
  type Nf4ErrorCode,
  quantize4bit,
  type TensorRecord,
  toBnbTensors,
  unpackNibbles,
} from './index';

function expectNf4Error(fn: () => unknown, code: Nf4ErrorCode, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(Nf4Error);
  expect((caught as Nf4Error).code).toBe(code);
  expect((caught as Nf4Error).message).toMatch(/^\[@qlora\/nf4\] /);
  expect((caught as Nf4Error).message).toMatch(message);
}

const x = new Float32Array(128).map((_, i) => Math.sin(i));

describe('bad arguments say what was expected and what came', () => {
  it('unsupported blocksize', () => {
    expectNf4Error(
      () => quantize4bit(x, { blocksize: 48 }),
      'INVALID_BLOCKSIZE',
      /expected one of 32, 64.*got 48/,
    );
  });
  it('shape / length mismatch', () => {
    expectNf4Error(
      () => quantize4bit(x, { shape: [3, 64] }),
      'INVALID_SHAPE',
      /\[3, 64\] to hold 192 elements, got 128/,
    );
    expectNf4Error(
      () => quantize4bit(x, { shape: [-1, 128] }),
      'INVALID_SHAPE',
      /non-negative integer/,
    );
    expectNf4Error(() => quantize4bit(new Float32Array(0)), 'INVALID_SHAPE', /at least 1 element/);
  });
  it('unknown quant type', () => {
    expectNf4Error(
      () => quantize4bit(x, { quantType: 'int4' as never }),
      'INVALID_QUANT_TYPE',
      /'nf4' or 'fp4', got "int4"/,
    );
  });
  it('input dtype', () => {
    expectNf4Error(
      () => quantize4bit(new Uint16Array(4)),
      'INVALID_INPUT',
      /'bfloat16' or 'float16' for a Uint16Array/,
    );
    expectNf4Error(
      () => quantize4bit(x, { dtype: 'bfloat16' }),
      'INVALID_INPUT',
      /Uint16Array.*got a Float32Array/,
    );
    expectNf4Error(
      () => quantize4bit([1, 2] as never),
      'INVALID_INPUT',
      /Float32Array or a Uint16Array/,
    );
  });
  it('NaN / Infinity policy: refused with the flat index', () => {
    const bad = x.slice();
    bad[70] = Number.NaN;
    expectNf4Error(() => quantize4bit(bad), 'NON_FINITE', /got NaN at flat index 70/);
    bad[70] = 0;
    bad[127] = Number.NEGATIVE_INFINITY;
    expectNf4Error(() => quantize4bit(bad), 'NON_FINITE', /got -Infinity at flat index 127/);
    // bf16 Infinity (0x7f80) is caught too.
    const bits = new Uint16Array(64);
    bits[5] = 0x7f80;
    expectNf4Error(
      () => quantize4bit(bits, { dtype: 'bfloat16' }),
      'NON_FINITE',
      /Infinity at flat index 5/,
    );
  });
  it('packed length mismatch', () => {
    const q = quantize4bit(x);
    expectNf4Error(
      () => dequantize4bit({ ...q, packed: q.packed.subarray(1) }),
      'INVALID_PACKED',
      /expected ceil\(128 \/ 2\) = 64 bytes.*got 63/,
    );
    expectNf4Error(
      () => dequantize4bit({ ...q, state: { ...q.state, absmax: new Float32Array(1) } }),
      'INVALID_PACKED',
      /Float32Array\(2\)/,
    );
    expectNf4Error(
      () => unpackNibbles(new Uint8Array(3), 8),
      'INVALID_PACKED',
      /ceil\(count \/ 2\)/,
    );
  });
});

describe('hostile checkpoints → Nf4Error, never a huge allocation', () => {
  const good = (): Record<string, TensorRecord> =>
    toBnbTensors(quantize4bit(x, { doubleQuant: true }), 'm');
  const blobKey = 'm.weight.quant_state.bitsandbytes__nf4';
  const withJson = (text: string): Record<string, TensorRecord> => {
    const t = good();
    const bytes = new TextEncoder().encode(text);
    t[blobKey] = { dtype: 'U8', shape: [bytes.length], data: bytes };
    return t;
  };
  const json = (overrides: Record<string, unknown>): string =>
    JSON.stringify({
      quant_type: 'nf4',
      blocksize: 64,
      dtype: 'float32',
      shape: [128],
      nested_blocksize: 256,
      nested_dtype: 'float32',
      nested_offset: 0.5,
      ...overrides,
    });

  it('reads the good one', () => {
    expect(fromBnbTensors(good(), 'm').state.shape).toEqual([128]);
  });
  it('bad JSON', () => {
    expectNf4Error(
      () => fromBnbTensors(withJson('{"quant_type": '), 'm'),
      'INVALID_CHECKPOINT',
      /expected UTF-8 JSON/,
    );
    expectNf4Error(
      () => fromBnbTensors(withJson('[1, 2]'), 'm'),
      'INVALID_CHECKPOINT',
      /a JSON object/,
    );
    const t = good();
    t[blobKey] = { dtype: 'U8', shape: [2], data: new Uint8Array([0xff, 0xfe]) };
    expectNf4Error(() => fromBnbTensors(t, 'm'), 'INVALID_CHECKPOINT', /UTF-8 JSON/);
  });
  it('wrong types and unknown keys', () => {
    expectNf4Error(
      () => fromBnbTensors(withJson(json({ blocksize: '64' })), 'm'),
      'INVALID_CHECKPOINT',
      /blocksize: expected one of/,
    );
    expectNf4Error(
      () => fromBnbTensors(withJson(json({ dtype: 'int8' })), 'm'),
      'INVALID_CHECKPOINT',
      /dtype: expected float32/,
    );
    expectNf4Error(
      () => fromBnbTensors(withJson(json({ quant_type: 'fp4' })), 'm'),
      'INVALID_CHECKPOINT',
      /"nf4" \(from the key\)/,
    );
    expectNf4Error(
      () => fromBnbTensors(withJson(json({ nested_offset: 'x' })), 'm'),
      'INVALID_CHECKPOINT',
      /nested_offset/,
    );
    expectNf4Error(
      () => fromBnbTensors(withJson(json({ evil: 1 })), 'm'),
      'INVALID_CHECKPOINT',
      /got evil/,
    );
    expectNf4Error(
      () => fromBnbTensors(withJson(json({ shape: [1.5] })), 'm'),
      'INVALID_CHECKPOINT',
      /non-negative integer/,
    );
  });
  it('shapes that claim huge sizes are checked against the bytes present', () => {
    expectNf4Error(
      () => fromBnbTensors(withJson(json({ shape: [2 ** 40, 2 ** 20] })), 'm'),
      'INVALID_CHECKPOINT',
      /2\^53/,
    );
    expectNf4Error(
      () => fromBnbTensors(withJson(json({ shape: [1e9, 1e6] })), 'm'),
      'INVALID_CHECKPOINT',
      /bytes: expected ceil\(1000000000000000 \/ 2\)/,
    );
    const t = good();
    t['m.weight.absmax'] = { dtype: 'U8', shape: [1e12], data: new Uint8Array(2) };
    expectNf4Error(
      () => fromBnbTensors(t, 'm'),
      'INVALID_CHECKPOINT',
      /data: expected a typed array of 1000000000000 elements/,
    );
    expectNf4Error(
      () => fromBnbTensors(withJson(' '.repeat(70_000)), 'm'),
      'INVALID_CHECKPOINT',
      /at most 65536 bytes/,
    );
  });
  it('missing, duplicated or unexpected tensors', () => {
    const t = good();
    t['m.weight.quant_state.bitsandbytes__fp4'] = t[blobKey] as TensorRecord;
    expectNf4Error(() => fromBnbTensors(t, 'm'), 'INVALID_CHECKPOINT', /exactly one/);
    expectNf4Error(() => fromBnbTensors(good(), 'other'), 'INVALID_CHECKPOINT', /got none/);
    const u = good();
    delete u['m.weight.nested_quant_map'];
    expectNf4Error(
      () => fromBnbTensors(u, 'm'),
      'INVALID_CHECKPOINT',
      /nested_quant_map: expected a F32 tensor of 256 elements, got nothing/,
    );
    const v = good();
    v['m.weight.SCB'] = { dtype: 'F32', shape: [1], data: new Float32Array(1) };
    expectNf4Error(() => fromBnbTensors(v, 'm'), 'INVALID_CHECKPOINT', /one of absmax/);
    const w = good();
    w['m.weight.absmax'] = { dtype: 'F32', shape: [2], data: new Float32Array(2) };
    expectNf4Error(
      () => fromBnbTensors(w, 'm'),
      'INVALID_CHECKPOINT',
      /absmax: expected a U8 tensor/,
    );
  });
  it('reads a weight stored with a float quant_storage dtype as its bytes', () => {
    const t = good();
    const bytes = (t['m.weight'] as TensorRecord).data as Uint8Array;
    t['m.weight'] = {
      dtype: 'F32',
      shape: [bytes.length / 4, 1],
      data: new Float32Array(bytes.slice().buffer),
    };
    expect(fromBnbTensors(t, 'm').packed).toEqual(bytes);
  });
});
