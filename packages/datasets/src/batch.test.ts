import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import {
  collateBatch,
  makeBatches,
  packSequences,
  segmentCausalMask,
  type TokenSequence,
} from './batch';
import { IGNORE_INDEX } from './sft';

function seq(ids: number[], promptLength = 1): TokenSequence {
  return { inputIds: ids, labels: ids.map((id, i) => (i < promptLength ? IGNORE_INDEX : id)) };
}

describe('collateBatch', () => {
  it('pads right to the longest; labels -100; mask from lengths (pad = EOS kept visible)', () => {
    const eos = 2;
    const batch = collateBatch([seq([1, 5, 6, eos]), seq([1, 7, eos])], { padTokenId: eos });
    expect(batch.seqLength).toBe(4);
    expect([...batch.inputIds]).toEqual([1, 5, 6, 2, 1, 7, 2, 2]);
    expect([...batch.labels]).toEqual([-100, 5, 6, 2, -100, 7, 2, -100]);
    expect([...batch.attentionMask]).toEqual([1, 1, 1, 1, 1, 1, 1, 0]);
    expect([...batch.positionIds]).toEqual([0, 1, 2, 3, 0, 1, 2, 0]);
    expect([...batch.segmentIds]).toEqual([1, 1, 1, 1, 1, 1, 1, 0]);
    expect(batch.tokenCount).toBe(7);
    expect(batch.labelCount).toBe(5);
    expect(collateBatch([seq([1, 2, 3])], { padTokenId: 0, padToMultipleOf: 8 }).seqLength).toBe(8);
  });
});

describe('packing without cross-contamination', () => {
  it('segments, restarting positions, masked segment starts, block-diagonal mask', () => {
    const rows = packSequences(
      [seq([1, 10, 11, 2], 2), seq([1, 20, 2], 1), seq([1, 30, 31, 32, 2], 1)],
      {
        maxLength: 8,
      },
    );
    expect(rows).toHaveLength(2);
    const [row] = rows;
    expect(row?.inputIds).toEqual([1, 10, 11, 2, 1, 20, 2]);
    expect(row?.segmentIds).toEqual([1, 1, 1, 1, 2, 2, 2]);
    expect(row?.positionIds).toEqual([0, 1, 2, 3, 0, 1, 2]);
    expect(row?.labels).toEqual([-100, -100, 11, 2, -100, 20, 2]);
    const mask = segmentCausalMask([1, 1, 2, 0]);
    expect([...mask]).toEqual([1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
    const batch = collateBatch(rows, { padTokenId: 0 });
    expect(batch.seqLength).toBe(7);
    expect([...batch.segmentIds.subarray(7, 14)]).toEqual([1, 1, 1, 1, 1, 0, 0]);
    expect(() => packSequences([seq([1, 2, 3])], { maxLength: 2 })).toThrow(
      /expected at most 2 tokens/,
    );
  });

  const arbSeqs = fc.array(
    fc.array(fc.integer({ min: 3, max: 1000 }), { minLength: 1, maxLength: 20 }),
    {
      minLength: 1,
      maxLength: 30,
    },
  );

  test.prop([arbSeqs], { seed: 3407 })(
    'packing keeps every token, in order, within maxLength',
    (lists) => {
      const rows = packSequences(
        lists.map((l) => seq(l, 1)),
        { maxLength: 24 },
      );
      expect(rows.flatMap((r) => [...r.inputIds])).toEqual(lists.flat());
      for (const r of rows) {
        expect(r.inputIds.length).toBeLessThanOrEqual(24);
        const segs = r.segmentIds ?? [];
        const pos = r.positionIds ?? [];
        for (let t = 0; t < segs.length; t++) {
          const start = t === 0 || segs[t] !== segs[t - 1];
          expect(pos[t] === 0).toBe(start);
          if (start) expect(r.labels[t]).toBe(IGNORE_INDEX);
        }
      }
    },
  );
});

describe('makeBatches', () => {
  const examples = Array.from({ length: 203 }, (_, i) =>
    seq(Array.from({ length: 1 + ((i * 37) % 61) }, (_, k) => k + 3)),
  );

  it('plain, seeded and length-grouped batching cover every example once', () => {
    for (const options of [{}, { seed: 1 }, { seed: 1, groupByLength: true }]) {
      const batches = makeBatches(examples, { batchSize: 8, padTokenId: 0, ...options });
      expect(batches).toHaveLength(26);
      expect(batches.reduce((n, b) => n + b.tokenCount, 0)).toBe(
        examples.reduce((n, e) => n + e.inputIds.length, 0),
      );
    }
    expect(makeBatches(examples, { batchSize: 8, padTokenId: 0, dropLast: true })).toHaveLength(25);
  });

  it('length grouping reduces padding and is deterministic', () => {
    const padded = (bs: ReturnType<typeof makeBatches>) =>
      bs.reduce((n, b) => n + b.batchSize * b.seqLength - b.tokenCount, 0);
    const random = makeBatches(examples, { batchSize: 8, padTokenId: 0, seed: 1 });
    const grouped = makeBatches(examples, {
      batchSize: 8,
      padTokenId: 0,
      seed: 1,
      groupByLength: true,
    });
    expect(padded(grouped)).toBeLessThan(padded(random) / 3);
    const again = makeBatches(examples, {
      batchSize: 8,
      padTokenId: 0,
      seed: 1,
      groupByLength: true,
    });
    expect(again.map((b) => [...b.inputIds])).toEqual(grouped.map((b) => [...b.inputIds]));
    expect(() =>
      makeBatches(examples, { batchSize: 8, padTokenId: 0, groupByLength: true }),
    ).toThrow(/expected options.seed/);
  });

  it('packed batches', () => {
    const batches = makeBatches(examples, {
      batchSize: 4,
      padTokenId: 0,
      seed: 2,
      packToLength: 128,
    });
    expect(batches.every((b) => b.seqLength <= 128)).toBe(true);
    expect(batches.reduce((n, b) => n + b.tokenCount, 0)).toBe(
      examples.reduce((n, e) => n + e.inputIds.length, 0),
    );
  });
});
