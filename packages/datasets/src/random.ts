import { DatasetsError } from './errors';

/**
 * A seeded source of uniform 32-bit unsigned integers.
 *
 * @example
 * ```ts
 * const rng: Random = createRandom(1);
 * rng.below(10); // 0–9
 * ```
 */
export interface Random {
  /** Next uniform integer in [0, 2³²). */
  nextUint32(): number;
  /** Uniform integer in [0, n) for 1 ≤ n ≤ 2³², without modulo bias (rejection sampling). */
  below(n: number): number;
}

/**
 * A deterministic xoshiro128** generator (Blackman & Vigna), its 128-bit state filled by four
 * splitmix32 steps from `seed` (taken modulo 2³²). Plain 32-bit integer arithmetic, so the stream
 * is identical on every machine and JS engine. It is not Python's `random` (Mersenne Twister) and
 * does not reproduce Hugging Face `datasets.shuffle` orders.
 *
 * `below(n)` draws `u` and rejects `u ≥ 2³² − (2³² mod n)`, then returns `u mod n`.
 *
 * @example
 * ```ts
 * const rng = createRandom(3407);
 * rng.nextUint32(); // 3840369993
 * rng.below(6); // an integer 0–5
 * ```
 */
export function createRandom(seed: number): Random {
  if (!Number.isInteger(seed)) {
    throw new DatasetsError('INVALID_ARGUMENT', `bad seed: expected an integer, got ${seed}`);
  }
  let s = (seed % 2 ** 32) >>> 0;
  const state = new Uint32Array(4);
  for (let i = 0; i < 4; i++) {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    state[i] = (z ^ (z >>> 16)) >>> 0;
  }
  if (state.every((v) => v === 0)) state[0] = 1;
  const nextUint32 = (): number => {
    const s0 = state[0] as number;
    const s1 = state[1] as number;
    const s2 = state[2] as number;
    const s3 = state[3] as number;
    const x = Math.imul(s1, 5);
    const result = Math.imul((x << 7) | (x >>> 25), 9) >>> 0;
    const t = s1 << 9;
    const n2 = s2 ^ s0;
    const n3 = s3 ^ s1;
    state[1] = s1 ^ n2;
    state[0] = s0 ^ n3;
    state[2] = n2 ^ t;
    state[3] = (n3 << 11) | (n3 >>> 21);
    return result;
  };
  const below = (n: number): number => {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) {
      throw new DatasetsError(
        'INVALID_ARGUMENT',
        `bad range: expected an integer 1 ≤ n ≤ 2^32, got ${n}`,
      );
    }
    const limit = 2 ** 32 - (2 ** 32 % n);
    for (;;) {
      const u = nextUint32();
      if (u < limit) return u % n;
    }
  };
  return { nextUint32, below };
}

/**
 * `n` distinct indices of `[0, length)` in random order: the first `n` steps of a forward
 * Fisher–Yates shuffle (`for i < n: swap(i, i + below(length − i))`) with {@link createRandom}.
 * Throws when `n > length` (no silent clamping: pass `Math.min(n, length)` to clamp).
 *
 * @example
 * ```ts
 * sampleIndices(5000, 10, 3407);
 * // [4993, 3322, 3289, 3436, 2480, 4141, 1927, 3659, 1243, 1466]
 * ```
 */
export function sampleIndices(length: number, n: number, seed: number): number[] {
  if (!Number.isInteger(n) || n < 0 || n > length) {
    throw new DatasetsError(
      'INVALID_ARGUMENT',
      `cannot sample ${n} of ${length} records: expected an integer 0 ≤ n ≤ ${length}, got ${n}\nHint: pass Math.min(n, records.length) to take everything when the set is smaller.`,
    );
  }
  const rng = createRandom(seed);
  const index = new Uint32Array(length);
  for (let i = 0; i < length; i++) index[i] = i;
  for (let i = 0; i < n; i++) {
    const j = i + rng.below(length - i);
    const tmp = index[i] as number;
    index[i] = index[j] as number;
    index[j] = tmp;
  }
  return Array.from(index.subarray(0, n));
}

/**
 * A deterministic random subset of `n` records, in sampled order (see {@link sampleIndices} for the
 * algorithm). The same seed gives the same subset and order on every machine.
 *
 * @example
 * ```ts
 * const train = sampleSubset(alpaca, 1000, 3407); // 1000 distinct records
 * sampleSubset(alpaca, 1000, 3407)[0] === train[0]; // true
 * ```
 */
export function sampleSubset<T>(records: readonly T[], n: number, seed: number): T[] {
  return sampleIndices(records.length, n, seed).map((i) => records[i] as T);
}

/**
 * A seeded permutation of `records` (a full Fisher–Yates with {@link createRandom}).
 *
 * @example
 * ```ts
 * shuffle([1, 2, 3, 4], 7); // the same order for seed 7 everywhere
 * ```
 */
export function shuffle<T>(records: readonly T[], seed: number): T[] {
  return sampleSubset(records, records.length, seed);
}

/**
 * One input of {@link mixDatasets}: give exactly one of `count` and `weight`.
 *
 * @example
 * ```ts
 * const source: MixSource<AlpacaRecord> = { records: alpaca, weight: 0.9 };
 * ```
 */
export interface MixSource<T> {
  records: readonly T[];
  /** Exactly this many records, drawn without replacement. */
  count?: number;
  /** Relative share of the weighted part of the mixture (see {@link mixDatasets}). */
  weight?: number;
}

/**
 * Where each mixed record came from.
 *
 * @example
 * ```ts
 * mixDatasets(sources, { seed: 1, size: 100 }).origins[0]; // { source: 1, index: 4176 }
 * ```
 */
export interface MixOrigin {
  /** Index of the source in the `sources` array. */
  source: number;
  /** Index of the record inside that source. */
  index: number;
}

/**
 * What {@link mixDatasets} returns.
 *
 * @example
 * ```ts
 * const { records, origins, counts } = mixDatasets(sources, { seed: 1, size: 100 });
 * ```
 */
export interface MixResult<T> {
  records: T[];
  /** `origins[i]` is where `records[i]` came from. */
  origins: MixOrigin[];
  /** Records taken from each source. */
  counts: number[];
}

/** Derives an independent per-source seed from the mix seed. */
function deriveSeed(seed: number, stream: number): number {
  const rng = createRandom((seed ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0);
  return rng.nextUint32();
}

/**
 * Mixes datasets with a seed (the QLoRA paper's remedy for forgetting: mix some GSM8K train into
 * Alpaca). Each source contributes either an exact `count` or, with `weight`, a share of
 * `size − Σcounts`: shares are `weight / Σweights` of that remainder, rounded by the largest
 * remainder method (ties to the earlier source). Each source is sampled without replacement with
 * its own seed derived from `seed` (a share larger than the source throws), then the union is
 * shuffled with `seed`.
 *
 * @example
 * ```ts
 * const mix = mixDatasets(
 *   [{ records: alpaca, weight: 0.9 }, { records: gsm8k.map((r) => gsm8kToAlpaca(r)), weight: 0.1 }],
 *   { seed: 3407, size: 5000 },
 * );
 * mix.counts; // [4500, 500]
 * ```
 */
export function mixDatasets<T>(
  sources: readonly MixSource<T>[],
  options: { seed: number; size?: number },
): MixResult<T> {
  const counts: number[] = [];
  let fixed = 0;
  let weightSum = 0;
  sources.forEach((src, i) => {
    const hasCount = src.count !== undefined;
    const hasWeight = src.weight !== undefined;
    if (hasCount === hasWeight) {
      throw new DatasetsError(
        'INVALID_ARGUMENT',
        `bad mix source ${i}: expected exactly one of count and weight, got ${hasCount ? 'both' : 'neither'}`,
      );
    }
    if (hasCount) {
      const c = src.count as number;
      if (!Number.isInteger(c) || c < 0) {
        throw new DatasetsError(
          'INVALID_ARGUMENT',
          `bad count for mix source ${i}: expected an integer ≥ 0, got ${c}`,
        );
      }
      fixed += c;
    } else {
      const w = src.weight as number;
      if (!Number.isFinite(w) || w < 0) {
        throw new DatasetsError(
          'INVALID_ARGUMENT',
          `bad weight for mix source ${i}: expected a finite number ≥ 0, got ${w}`,
        );
      }
      weightSum += w;
    }
  });
  const weighted = sources.some((s) => s.weight !== undefined);
  if (weighted && options.size === undefined) {
    throw new DatasetsError(
      'INVALID_ARGUMENT',
      'cannot apportion weights: expected options.size (total records of the mixture), got none\nHint: or give every source an exact count.',
    );
  }
  const remaining = (options.size ?? fixed) - fixed;
  if (weighted && (remaining < 0 || !Number.isInteger(remaining) || weightSum <= 0)) {
    throw new DatasetsError(
      'INVALID_ARGUMENT',
      `cannot apportion weights: expected an integer size ≥ Σcounts (${fixed}) and Σweights > 0, got size ${options.size} and Σweights ${weightSum}`,
    );
  }
  // Largest remainder: floor each share, then hand out the rest by descending fraction.
  const fractions: { i: number; frac: number }[] = [];
  let given = 0;
  sources.forEach((src, i) => {
    if (src.count !== undefined) {
      counts[i] = src.count;
      return;
    }
    const exact = ((src.weight as number) / weightSum) * remaining;
    const base = Math.floor(exact);
    counts[i] = base;
    given += base;
    fractions.push({ i, frac: exact - base });
  });
  fractions.sort((a, b) => b.frac - a.frac || a.i - b.i);
  for (let k = 0; k < remaining - given; k++) {
    const f = fractions[k % fractions.length];
    if (f) counts[f.i] = (counts[f.i] as number) + 1;
  }
  const picked: { record: T; origin: MixOrigin }[] = [];
  sources.forEach((src, i) => {
    const c = counts[i] as number;
    if (c > src.records.length) {
      throw new DatasetsError(
        'INVALID_ARGUMENT',
        `mix source ${i} too small: expected at least ${c} records for its share, got ${src.records.length}\nHint: lower its weight or size, or give it an explicit count.`,
      );
    }
    for (const index of sampleIndices(src.records.length, c, deriveSeed(options.seed, i))) {
      picked.push({ record: src.records[index] as T, origin: { source: i, index } });
    }
  });
  const order = shuffle(picked, options.seed);
  return { records: order.map((p) => p.record), origins: order.map((p) => p.origin), counts };
}
