import { MetricsError } from './errors';

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;

/**
 * CPython's `random.Random`: MT19937 seeded like `random.seed(int)`, with the same `getrandbits`,
 * `random()`, rejection-sampled `_randbelow`, `shuffle` and both `sample` algorithms, so few-shot
 * draws match lm-evaluation-harness (which uses `random.Random(1234)`) index for index.
 *
 * @example
 * ```ts
 * const rnd = new PythonRandom(1234);
 * rnd.sample([...Array(7473).keys()], 5); // [6374, 3610, 957, 61, 742]
 * ```
 */
export class PythonRandom {
  private readonly mt = new Uint32Array(N);
  private index = N + 1;

  /** Seeds like CPython `random.Random(seed)` for an int seed (its absolute value is used). */
  constructor(seed: number | bigint = 0) {
    this.seed(seed);
  }

  /**
   * Re-seeds like `random.seed(int)`: `init_by_array` over the 32-bit words of `|seed|`,
   * least significant first (`[0]` for zero).
   *
   * @example
   * ```ts
   * const rnd = new PythonRandom();
   * rnd.seed(1234);
   * rnd.getrandbits(32); // 4150886329
   * ```
   */
  seed(seed: number | bigint): void {
    if (typeof seed === 'number' && !Number.isSafeInteger(seed)) {
      throw new MetricsError(
        'E_RANDOM_SEED',
        `random seed: expected a safe integer or a bigint, got ${seed}. Hint: pass a bigint for large seeds; string seeds are not supported.`,
      );
    }
    let n = BigInt(seed);
    if (n < 0n) n = -n;
    const key: number[] = [];
    while (n > 0n) {
      key.push(Number(n & 0xffffffffn));
      n >>= 32n;
    }
    if (key.length === 0) key.push(0);
    this.initByArray(key);
  }

  private initGenrand(s: number): void {
    const mt = this.mt;
    mt[0] = s >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    this.index = N;
  }

  private initByArray(key: readonly number[]): void {
    const mt = this.mt;
    this.initGenrand(19650218);
    let i = 1;
    let j = 0;
    const keyLength = key.length;
    for (let k = Math.max(N, keyLength); k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1664525)) + key[j]! + j) >>> 0;
      i++;
      j++;
      if (i >= N) {
        mt[0] = mt[N - 1]!;
        i = 1;
      }
      if (j >= keyLength) j = 0;
    }
    for (let k = N - 1; k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1566083941)) - i) >>> 0;
      i++;
      if (i >= N) {
        mt[0] = mt[N - 1]!;
        i = 1;
      }
    }
    mt[0] = 0x80000000;
  }

  /**
   * The next tempered 32-bit output of MT19937 (CPython `genrand_uint32`).
   *
   * @example
   * ```ts
   * new PythonRandom(1234).nextUint32(); // 4150886329
   * ```
   */
  nextUint32(): number {
    const mt = this.mt;
    if (this.index >= N) {
      let kk = 0;
      for (; kk < N - M; kk++) {
        const y = (mt[kk]! & UPPER_MASK) | (mt[kk + 1]! & LOWER_MASK);
        mt[kk] = mt[kk + M]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
      }
      for (; kk < N - 1; kk++) {
        const y = (mt[kk]! & UPPER_MASK) | (mt[kk + 1]! & LOWER_MASK);
        mt[kk] = mt[kk + (M - N)]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
      }
      const y = (mt[N - 1]! & UPPER_MASK) | (mt[0]! & LOWER_MASK);
      mt[N - 1] = mt[M - 1]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
      this.index = 0;
    }
    let y = mt[this.index++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /**
   * `random.getrandbits(k)`: a number for k ≤ 32 (the top k bits of one output), a bigint built
   * from 32-bit words, least significant first, for k > 32.
   *
   * @example
   * ```ts
   * new PythonRandom(1234).getrandbits(8); // 247
   * ```
   */
  getrandbits(k: number): number;
  getrandbits(k: number, asBigint: true): bigint;
  getrandbits(k: number, asBigint = false): number | bigint {
    if (!Number.isInteger(k) || k < 0) {
      throw new MetricsError(
        'E_RANDOM_ARG',
        `getrandbits: expected a non-negative integer bit count, got ${k}`,
      );
    }
    if (k === 0) return asBigint ? 0n : 0;
    if (k <= 32 && !asBigint) return this.nextUint32() >>> (32 - k);
    let result = 0n;
    let shift = 0n;
    for (let left = k; left > 0; left -= 32) {
      let word = this.nextUint32();
      if (left < 32) word >>>= 32 - left;
      result |= BigInt(word) << shift;
      shift += 32n;
    }
    if (!asBigint && k > 53) {
      throw new MetricsError(
        'E_RANDOM_ARG',
        `getrandbits: expected k ≤ 53 for a number result, got ${k}. Hint: call getrandbits(k, true) for a bigint.`,
      );
    }
    return asBigint ? result : Number(result);
  }

  /**
   * `random.random()`: a float in [0, 1) from 53 random bits (two outputs).
   *
   * @example
   * ```ts
   * new PythonRandom(0).random(); // 0.8444218515250481
   * ```
   */
  random(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
  }

  /**
   * CPython's `_randbelow_with_getrandbits(n)`: draw `getrandbits(bit_length(n))` until it is < n.
   *
   * @example
   * ```ts
   * new PythonRandom(1234).randbelow(7473); // 6374
   * ```
   */
  randbelow(n: number): number {
    if (!Number.isSafeInteger(n) || n <= 0) {
      throw new MetricsError('E_RANDOM_ARG', `randbelow: expected a positive integer, got ${n}`);
    }
    const k = bitLength(n);
    let r = this.getrandbits(k);
    while (r >= n) r = this.getrandbits(k);
    return r;
  }

  /**
   * `random.randrange(start, stop)` with step 1 (`randrange(stop)` when called with one argument).
   *
   * @example
   * ```ts
   * new PythonRandom(42).randrange(10, 20); // 20 > x >= 10
   * ```
   */
  randrange(start: number, stop?: number): number {
    if (stop === undefined) return this.randbelow(start);
    const width = stop - start;
    if (width <= 0) {
      throw new MetricsError(
        'E_RANDOM_ARG',
        `randrange: expected start < stop, got start=${start}, stop=${stop}`,
      );
    }
    return start + this.randbelow(width);
  }

  /**
   * `random.randint(a, b)`: an integer in [a, b], both ends included.
   *
   * @example
   * ```ts
   * new PythonRandom(42).randint(1, 6); // 1 ≤ x ≤ 6
   * ```
   */
  randint(a: number, b: number): number {
    return this.randrange(a, b + 1);
  }

  /**
   * `random.choice(seq)`.
   *
   * @example
   * ```ts
   * new PythonRandom(7).choice(['a', 'b', 'c']);
   * ```
   */
  choice<T>(seq: readonly T[]): T {
    if (seq.length === 0) {
      throw new MetricsError('E_RANDOM_ARG', 'choice: expected a non-empty sequence, got length 0');
    }
    return seq[this.randbelow(seq.length)]!;
  }

  /**
   * `random.choices(population, k=k)` without weights: `population[floor(random() * n)]`, k times
   * (CPython's unweighted path; lm-eval's bootstrap resamples with it).
   *
   * @example
   * ```ts
   * new PythonRandom(0).choices(['a', 'b', 'c'], 2); // as Python's random.Random(0).choices(...)
   * ```
   */
  choices<T>(population: readonly T[], k: number): T[] {
    const n = population.length;
    const out = new Array<T>(k);
    for (let i = 0; i < k; i++) out[i] = population[Math.floor(this.random() * n)] as T;
    return out;
  }

  /**
   * `random.shuffle(x)`: Fisher–Yates from the end, in place (returns the same array).
   *
   * @example
   * ```ts
   * new PythonRandom(1234).shuffle([1, 2, 3, 4, 5]);
   * ```
   */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.randbelow(i + 1);
      const tmp = items[i]!;
      items[i] = items[j]!;
      items[j] = tmp;
    }
    return items;
  }

  /**
   * `random.sample(population, k)`: k distinct picks in draw order. Like CPython, it swaps within a
   * copied pool when `n <= setsize` (21, plus `4 ** ceil(log(3k, 4))` when k > 5) and otherwise
   * redraws indices already taken.
   *
   * @example
   * ```ts
   * new PythonRandom(1234).sample([...Array(7473).keys()], 5); // [6374, 3610, 957, 61, 742]
   * ```
   */
  sample<T>(population: readonly T[], k: number): T[] {
    const n = population.length;
    if (!Number.isInteger(k) || k < 0 || k > n) {
      throw new MetricsError(
        'E_RANDOM_ARG',
        `sample: expected 0 <= k <= ${n} (the population size), got ${k}. Hint: Python raises "Sample larger than population or is negative".`,
      );
    }
    const result: T[] = new Array<T>(k);
    let setsize = 21;
    if (k > 5) setsize += 4 ** Math.ceil(Math.log(k * 3) / Math.log(4));
    if (n <= setsize) {
      const pool = population.slice();
      for (let i = 0; i < k; i++) {
        const j = this.randbelow(n - i);
        result[i] = pool[j]!;
        pool[j] = pool[n - i - 1]!;
      }
    } else {
      const selected = new Set<number>();
      for (let i = 0; i < k; i++) {
        let j = this.randbelow(n);
        while (selected.has(j)) j = this.randbelow(n);
        selected.add(j);
        result[i] = population[j]!;
      }
    }
    return result;
  }

  /**
   * The generator state like `random.getstate()[1]` without the trailing `None` (625 ints: the
   * 624 words and the position), for checkpoints.
   *
   * @example
   * ```ts
   * const rnd = new PythonRandom(1);
   * const copy = new PythonRandom();
   * copy.setState(rnd.getState());
   * ```
   */
  getState(): number[] {
    return [...this.mt, this.index];
  }

  /**
   * Restores a state from {@link PythonRandom.getState} (or CPython's `getstate()[1][:625]`).
   *
   * @example
   * ```ts
   * const copy = new PythonRandom();
   * copy.setState(new PythonRandom(1).getState());
   * ```
   */
  setState(state: readonly number[]): void {
    if (state.length !== N + 1) {
      throw new MetricsError(
        'E_RANDOM_STATE',
        `random state: expected ${N + 1} integers, got ${state.length}`,
      );
    }
    for (let i = 0; i < N; i++) this.mt[i] = state[i]! >>> 0;
    this.index = state[N]!;
  }
}

function bitLength(n: number): number {
  // Exact for every safe integer, unlike Math.log2 near powers of two.
  return n === 0 ? 0 : n.toString(2).length;
}
