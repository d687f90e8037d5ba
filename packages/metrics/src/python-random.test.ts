import { readFileSync } from 'node:fs';
import { fixturePath } from '@qlora/test-utils';
import { describe, expect, it } from 'vitest';
import { MetricsError } from './errors';
import { PythonRandom } from './python-random';

interface Vector {
  seed: string;
  uint32: number[];
  random: string[];
  getrandbits: [number, string][];
  randbelow: [number, number][];
  shuffle: number[][];
  sample: [number, number, number[]][];
  choice: string[];
  randint: number[];
}

const fixture = JSON.parse(
  readFileSync(fixturePath('bench-core', 'python-random.json'), 'utf8'),
) as { vectors: Vector[]; gsm8kFewshotIndices: number[][]; sample1000k11: number[][] };

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe('PythonRandom against CPython 3.11 random.Random', () => {
  it('matches the spec test vectors', () => {
    const r = new PythonRandom(1234);
    expect([r.nextUint32(), r.nextUint32(), r.nextUint32()]).toEqual([
      4150886329, 3342196574, 1892932127,
    ]);
    const s = new PythonRandom(1234);
    const docs = range(1319).map(() => s.sample(range(7473), 5));
    expect(docs[0]).toEqual([6374, 3610, 957, 61, 742]);
    expect(docs[1]).toEqual([7462, 6610, 4769, 286, 5501]);
    expect(docs[2]).toEqual([5677, 687, 806, 6279, 2905]);
    expect(docs[1318]).toEqual([220, 4179, 6064, 5599, 5541]);
  });

  it('reproduces all 1319 gsm8k few-shot draws and k+1 draws', () => {
    const r = new PythonRandom(1234);
    const pool = range(7473);
    expect(fixture.gsm8kFewshotIndices.map(() => r.sample(pool, 5))).toEqual(
      fixture.gsm8kFewshotIndices,
    );
    const q = new PythonRandom(1234);
    expect(fixture.sample1000k11.map(() => q.sample(range(1000), 11))).toEqual(
      fixture.sample1000k11,
    );
  });

  for (const v of fixture.vectors) {
    it(`seed ${v.seed}: outputs, random(), getrandbits, randbelow, shuffle, sample, choice`, () => {
      const seed = BigInt(v.seed);
      let r = new PythonRandom(seed);
      expect(v.uint32.map(() => r.getrandbits(32))).toEqual(v.uint32);
      r = new PythonRandom(seed);
      expect(v.random.map(() => r.random())).toEqual(v.random.map(Number));
      r = new PythonRandom(seed);
      expect(v.getrandbits.map(([k]) => r.getrandbits(k, true).toString())).toEqual(
        v.getrandbits.map(([, x]) => x),
      );
      r = new PythonRandom(seed);
      expect(v.randbelow.map(([n]) => r.randbelow(n))).toEqual(v.randbelow.map(([, x]) => x));
      r = new PythonRandom(seed);
      expect(v.shuffle.map((xs) => r.shuffle(range(xs.length)))).toEqual(v.shuffle);
      r = new PythonRandom(seed);
      expect(v.sample.map(([n, k]) => r.sample(range(n), k))).toEqual(v.sample.map(([, , x]) => x));
      r = new PythonRandom(seed);
      expect(v.choice.map(() => r.choice([...'abcdefghij']))).toEqual(v.choice);
      expect(v.randint.map(() => r.randint(1, 6))).toEqual(v.randint);
    });
  }

  it('round-trips its state', () => {
    const a = new PythonRandom(99);
    a.random();
    const b = new PythonRandom();
    b.setState(a.getState());
    expect(b.sample(range(500), 7)).toEqual(a.sample(range(500), 7));
  });

  it('rejects bad arguments with MetricsError', () => {
    const r = new PythonRandom(1);
    expect(() => r.sample([1, 2], 3)).toThrow(MetricsError);
    expect(() => r.randbelow(0)).toThrow(/expected a positive integer/);
    expect(() => new PythonRandom(0.5)).toThrow(/safe integer/);
    expect(() => r.getrandbits(64)).toThrow(/bigint/);
  });
});
