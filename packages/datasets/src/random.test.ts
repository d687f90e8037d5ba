import { readFileSync } from 'node:fs';
import { fc, test } from '@fast-check/vitest';
import { fixturePath, sharedDataPath } from '@qlora/test-utils';
import { describe, expect, it } from 'vitest';
import { gsm8kToAlpaca } from './convert';
import { loadAlpaca, loadGsm8k } from './datasets';
import { createRandom, mixDatasets, sampleIndices, sampleSubset, shuffle } from './random';

// Computed by tools/reference/datasets_ref.py, an independent Python implementation of the
// documented algorithm (xoshiro128** seeded by splitmix32, forward Fisher–Yates, rejection sampling).
const prng = JSON.parse(readFileSync(fixturePath('datasets', 'prng.json'), 'utf8')) as {
  u32: { seed: number; values: number[] }[];
  subsets: { length: number; n: number; seed: number; indices: number[] }[];
};

describe('seeded generator', () => {
  it('matches the Python reference stream', () => {
    for (const { seed, values } of prng.u32) {
      const rng = createRandom(seed);
      expect(values.map(() => rng.nextUint32())).toEqual(values);
    }
  });

  it('matches the Python reference subsets (same subset and order)', () => {
    for (const { length, n, seed, indices } of prng.subsets) {
      expect(sampleIndices(length, n, seed)).toEqual(indices);
    }
  });

  it('Alpaca subset with seed 3407: fixed indices', async () => {
    const alpaca = await loadAlpaca(sharedDataPath('alpaca', 'alpaca_5000.json'));
    const subset = sampleSubset(alpaca, 10, 3407);
    expect(subset).toEqual(
      [4993, 3322, 3289, 3436, 2480, 4141, 1927, 3659, 1243, 1466].map((i) => alpaca[i]),
    );
    expect(sampleSubset(alpaca, 10, 3407)).toEqual(subset);
    expect(sampleSubset(alpaca, 10, 3408)).not.toEqual(subset);
  });

  it('n > length throws (no silent clamp)', () => {
    expect(() => sampleSubset([1, 2, 3], 4, 0)).toThrow(/cannot sample 4 of 3 records/);
    expect(sampleSubset([1, 2, 3], 0, 0)).toEqual([]);
  });

  test.prop([fc.integer({ min: 0, max: 300 }), fc.nat(), fc.nat()], { seed: 3407 })(
    'indices are distinct, in range, and a prefix of the full shuffle',
    (length, k, seed) => {
      const n = length === 0 ? 0 : k % (length + 1);
      const picked = sampleIndices(length, n, seed);
      expect(new Set(picked).size).toBe(n);
      expect(picked.every((i) => i >= 0 && i < length)).toBe(true);
      expect(sampleIndices(length, length, seed).slice(0, n)).toEqual(picked);
    },
  );

  it('below(n) is unbiased enough over 60k draws', () => {
    const rng = createRandom(1);
    const counts = new Array(6).fill(0) as number[];
    for (let i = 0; i < 60000; i++) {
      const k = rng.below(6);
      counts[k] = (counts[k] ?? 0) + 1;
    }
    for (const c of counts) expect(Math.abs(c - 10000)).toBeLessThan(500);
  });

  it('shuffle is a permutation', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i);
    const s = shuffle(xs, 5);
    expect([...s].sort((a, b) => a - b)).toEqual(xs);
    expect(s).not.toEqual(xs);
  });
});

describe('mixing GSM8K into Alpaca', () => {
  it('weights are fractions of size (largest remainder), counts are exact', async () => {
    const alpaca = await loadAlpaca(sharedDataPath('alpaca', 'alpaca_5000.json'));
    const gsm8k = (await loadGsm8k(sharedDataPath('gsm8k', 'train.jsonl'))).map((r) =>
      gsm8kToAlpaca(r),
    );
    const mix = mixDatasets(
      [
        { records: alpaca, weight: 0.9 },
        { records: gsm8k, weight: 0.1 },
      ],
      { seed: 3407, size: 5000 },
    );
    expect(mix.counts).toEqual([4500, 500]);
    expect(mix.records).toHaveLength(5000);
    mix.origins.forEach((o, i) => {
      expect(mix.records[i]).toBe(o.source === 0 ? alpaca[o.index] : gsm8k[o.index]);
    });
    expect(new Set(mix.origins.map((o) => `${o.source}:${o.index}`)).size).toBe(5000);
    // Interleaved, not concatenated.
    expect(mix.origins.slice(0, 100).some((o) => o.source === 1)).toBe(true);
    // Deterministic.
    expect(
      mixDatasets(
        [
          { records: alpaca, weight: 0.9 },
          { records: gsm8k, weight: 0.1 },
        ],
        { seed: 3407, size: 5000 },
      ).origins,
    ).toEqual(mix.origins);

    const thirds = mixDatasets(
      [
        { records: alpaca, weight: 1 },
        { records: alpaca, weight: 1 },
        { records: alpaca, weight: 1 },
      ],
      { seed: 1, size: 100 },
    );
    expect(thirds.counts).toEqual([34, 33, 33]);
    const fixed = mixDatasets(
      [
        { records: alpaca, count: 10 },
        { records: gsm8k, count: 3 },
      ],
      { seed: 1 },
    );
    expect(fixed.counts).toEqual([10, 3]);
  });

  it('rejects ambiguous or impossible mixes', () => {
    expect(() => mixDatasets([{ records: [1], weight: 1 }], { seed: 0 })).toThrow(
      /expected options.size/,
    );
    expect(() => mixDatasets([{ records: [1], weight: 1, count: 1 }], { seed: 0 })).toThrow(
      /exactly one of count and weight/,
    );
    expect(() => mixDatasets([{ records: [1, 2], weight: 1 }], { seed: 0, size: 3 })).toThrow(
      /too small/,
    );
  });

  it('gsm8kToAlpaca strips calculator annotations and keeps "#### N"', () => {
    const record = { question: 'Q?', answer: 'Half is 48/2 = <<48/2=24>>24.\n#### 24' };
    expect(gsm8kToAlpaca(record)).toEqual({
      instruction: 'Q?',
      input: '',
      output: 'Half is 48/2 = 24.\n#### 24',
    });
    expect(gsm8kToAlpaca(record, { stripCalculatorAnnotations: false }).output).toBe(record.answer);
    expect(gsm8kToAlpaca(record, { instruction: 'Solve the math problem.' })).toMatchObject({
      instruction: 'Solve the math problem.',
      input: 'Q?',
    });
  });
});
