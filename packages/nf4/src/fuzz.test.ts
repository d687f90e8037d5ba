// Issue 11 fuzzing: hostile bitsandbytes quant_state JSON blobs and state_dict tensors given to
// fromBnbTensors end only in Nf4Error, quickly, without allocating what the blob claims. CI runs
// the base counts; QLORA_FUZZ_RUNS multiplies them (tools/fuzz/run.ts runs ≥ 10,000).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyMutations,
  expectTyped,
  FUZZ_SEED,
  fuzzRuns,
  hostileValueArb,
  mutatedJsonArb,
  mutationsArb,
} from '../../../tools/fuzz/mutate';
import { fromBnbTensors, toBnbTensors } from './checkpoint';
import { Nf4Error } from './errors';
import { dequantize4bit, quantize4bit } from './quantize';
import type { TensorRecord } from './types';

const TYPED = [Nf4Error] as const;
const PREFIX = 'model.layers.0.mlp.up_proj';
const BLOB = (type: string) => `${PREFIX}.weight.quant_state.bitsandbytes__${type}`;

function weights(n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sin(i * 0.37) * (1 + (i % 7));
  return out;
}

const seeds: Record<string, TensorRecord>[] = [
  toBnbTensors(quantize4bit(weights(128), { shape: [2, 64] }), PREFIX),
  toBnbTensors(
    quantize4bit(weights(201), { shape: [3, 67], quantType: 'fp4', blocksize: 128 }),
    PREFIX,
  ),
  toBnbTensors(quantize4bit(weights(64 * 300), { shape: [300, 64], doubleQuant: true }), PREFIX),
];

/** Load, then dequantize what loaded (the path a model load takes). */
function loadAndDequantize(tensors: Record<string, TensorRecord>): void {
  dequantize4bit(fromBnbTensors(tensors, PREFIX));
}

function blobKeyOf(tensors: Record<string, TensorRecord>): string {
  return Object.keys(tensors).find((k) => k.includes('.quant_state.')) ?? BLOB('nf4');
}

const encoder = new TextEncoder();
const blobJson = seeds.map((t) =>
  JSON.parse(new TextDecoder().decode(t[blobKeyOf(t)]?.data as Uint8Array)),
);

/** A seed whose quant_state blob is replaced by `bytes`. */
function withBlob(
  seed: Record<string, TensorRecord>,
  bytes: Uint8Array,
): Record<string, TensorRecord> {
  return { ...seed, [blobKeyOf(seed)]: { dtype: 'U8', shape: [bytes.length], data: bytes } };
}

const typedArrayArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer({ min: 0, max: 64 }).map((n) => new Uint8Array(n)),
  fc.integer({ min: 0, max: 64 }).map((n) => new Float32Array(n)),
  fc.integer({ min: 0, max: 64 }).map((n) => new Uint16Array(n)),
  fc.constantFrom<unknown>(null, undefined, [1, 2, 3], 'data', {}),
);

/** Hostile record edits: a field replaced, a record removed or added under the prefix. */
const recordEditArb = fc.record({
  at: fc.nat(),
  op: fc.constantFrom('dtype', 'shape', 'data', 'delete', 'add', 'record'),
  value: fc.oneof(hostileValueArb, typedArrayArb),
  leaf: fc.constantFrom(
    'absmax',
    'quant_map',
    'nested_absmax',
    'nested_quant_map',
    'quant_state.bitsandbytes__fp4',
    'quant_state.bitsandbytes__nf4',
    'quant_state.x',
    'bias',
    '',
  ),
});

type RecordEdit = typeof recordEditArb extends fc.Arbitrary<infer E> ? E : never;

function editRecords(
  seed: Record<string, TensorRecord>,
  edits: readonly RecordEdit[],
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...seed };
  for (const edit of edits) {
    const keys = Object.keys(out);
    const key = keys[edit.at % keys.length] as string;
    const record = out[key] as Record<string, unknown> | undefined;
    if (edit.op === 'delete') delete out[key];
    else if (edit.op === 'add')
      out[`${PREFIX}.weight.${edit.leaf}`] = { dtype: 'U8', shape: [1], data: new Uint8Array(1) };
    else if (edit.op === 'record') out[key] = edit.value;
    else if (record !== null && typeof record === 'object')
      out[key] = { ...record, [edit.op]: edit.value };
  }
  return out;
}

describe('fuzz: fromBnbTensors', () => {
  it(`quant_state JSON blobs edited structurally (hostile sizes, types, keys), ${fuzzRuns(1500)} cases`, () => {
    fc.assert(
      fc.property(fc.constantFrom(...seeds.keys()), mutatedJsonArb(blobJson), (i, json) => {
        const bytes = encoder.encode(JSON.stringify(json) ?? '');
        expectTyped(TYPED, () =>
          loadAndDequantize(withBlob(seeds[i] as Record<string, TensorRecord>, bytes)),
        );
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(1500) },
    );
  });

  it(`quant_state blobs byte-mutated (invalid UTF-8, truncation, nesting), ${fuzzRuns(1000)} cases`, () => {
    fc.assert(
      fc.property(fc.constantFrom(...seeds.keys()), mutationsArb, (i, mutations) => {
        const seed = seeds[i] as Record<string, TensorRecord>;
        const bytes = applyMutations(seed[blobKeyOf(seed)]?.data as Uint8Array, mutations);
        expectTyped(TYPED, () => loadAndDequantize(withBlob(seed, bytes)));
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(1000) },
    );
  });

  it(`tensor records edited (dtype, shape, data, missing, extra), ${fuzzRuns(1000)} cases`, () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...seeds.keys()),
        fc.array(recordEditArb, { minLength: 1, maxLength: 3 }),
        (i, edits) => {
          const tensors = editRecords(seeds[i] as Record<string, TensorRecord>, edits);
          expectTyped(TYPED, () => loadAndDequantize(tensors as Record<string, TensorRecord>));
        },
      ),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(1000) },
    );
  });

  it('a blob declaring 2^40 elements over tiny tensors fails fast, allocating nothing', () => {
    const seed = seeds[0] as Record<string, TensorRecord>;
    for (const shape of [[1048576, 1048576], [2 ** 40], [2 ** 26, 2 ** 26, 2 ** 26]]) {
      const blob = encoder.encode(
        JSON.stringify({ quant_type: 'nf4', blocksize: 64, dtype: 'float32', shape }),
      );
      const start = performance.now();
      expect(() => fromBnbTensors(withBlob(seed, blob), PREFIX)).toThrow(Nf4Error);
      expect(performance.now() - start).toBeLessThan(50);
    }
    const huge = new Uint8Array(64 * 1024 + 1).fill(0x20);
    expect(() => fromBnbTensors(withBlob(seed, huge), PREFIX)).toThrow(/at most 65536 bytes/);
  });
});
