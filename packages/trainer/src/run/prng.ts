import { TrainerError } from '../errors';

/**
 * The whole state of an {@link Rng}: four uint32 words of xoshiro128**. Plain numbers, so it
 * round-trips through JSON.
 *
 * @example
 * ```ts
 * const state: RngState = [1, 2, 3, 4];
 * ```
 */
export type RngState = [number, number, number, number];

/**
 * Seed expansion: splitmix32 — a Weyl sequence (`+= 0x9e3779b9`) through MurmurHash3's fmix32
 * finaliser — yields the four state words (never all zero, which xoshiro cannot leave).
 */
function splitmix32(seed: number): RngState {
  let x = seed >>> 0;
  const next = (): number => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  const state: RngState = [next(), next(), next(), next()];
  if (state.every((w) => w === 0)) state[0] = 1;
  return state;
}

const TWO_POW_32 = 4294967296;

/**
 * A seeded, serializable PRNG for everything random in a run (data shuffling, dropout masks), so
 * that a resumed run draws exactly what an uninterrupted one would. The generator is
 * xoshiro128** 1.1 (Blackman & Vigna): 128 bits of state, period 2^128 − 1. A seed is expanded
 * with splitmix32 exactly as `@qlora/datasets`' `createRandom` does (same stream for the same
 * seed); unlike it, the state is exposed: `state()` / `Rng.fromState` save and restore it.
 *
 * @example
 * ```ts
 * const rng = Rng.fromSeed(3407);
 * const order = rng.permutation(5); // [3, 2, 4, 0, 1]
 * const saved = rng.state();
 * const again = Rng.fromState(saved);
 * again.nextUint32() === rng.nextUint32(); // true
 * ```
 */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  private constructor(state: RngState) {
    [this.s0, this.s1, this.s2, this.s3] = state;
  }

  /**
   * A generator from a 32-bit integer seed (splitmix32 expansion).
   *
   * @example
   * ```ts
   * const rng = Rng.fromSeed(3407); // the Unsloth notebooks' seed
   * ```
   */
  static fromSeed(seed: number): Rng {
    if (!Number.isInteger(seed)) {
      throw new TrainerError('E_INPUT', `Rng seed: expected an integer, got ${seed}.`);
    }
    return new Rng(splitmix32(seed));
  }

  /**
   * A generator continuing from a saved {@link Rng.state}.
   *
   * @example
   * ```ts
   * const rng = Rng.fromState(JSON.parse(text));
   * ```
   */
  static fromState(state: readonly number[]): Rng {
    if (
      !Array.isArray(state) ||
      state.length !== 4 ||
      !state.every((w) => Number.isInteger(w) && w >= 0 && w < TWO_POW_32) ||
      state.every((w) => w === 0)
    ) {
      throw new TrainerError(
        'E_INPUT',
        `Rng state: expected four uint32 words, not all zero, got ${JSON.stringify(state)}.`,
      );
    }
    return new Rng([state[0], state[1], state[2], state[3]] as RngState);
  }

  /**
   * The current state (a copy).
   *
   * @example
   * ```ts
   * JSON.stringify(Rng.fromSeed(3407).state()); // '[2384572898,1295867806,2564964296,1238969450]'
   * ```
   */
  state(): RngState {
    return [this.s0, this.s1, this.s2, this.s3];
  }

  /**
   * The next uint32 (xoshiro128** output).
   *
   * @example
   * ```ts
   * Rng.fromState([1, 2, 3, 4]).nextUint32(); // 11520
   * ```
   */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /**
   * A uniform float in [0, 1) with 24 random bits (exactly representable in float32).
   *
   * @example
   * ```ts
   * Rng.fromSeed(3407).nextFloat(); // 0.8941558003425598
   * ```
   */
  nextFloat(): number {
    return (this.nextUint32() >>> 8) / 16777216;
  }

  /**
   * A uniform integer in [0, n), unbiased (rejection of the top partial range).
   *
   * @example
   * ```ts
   * rng.nextInt(6); // 0 … 5
   * ```
   */
  nextInt(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32) {
      throw new TrainerError(
        'E_INPUT',
        `Rng.nextInt bound: expected an integer in [1, 2^32], got ${n}.`,
      );
    }
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /**
   * Shuffles `items` in place and returns it: forward Fisher–Yates
   * (`for i < n − 1: swap(i, i + nextInt(n − i))`), the same draws as `@qlora/datasets`'
   * `shuffle`, so `Rng.fromSeed(s).permutation(n)` equals its order for seed `s`.
   *
   * @example
   * ```ts
   * Rng.fromSeed(1).shuffle([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]); // [8, 3, 9, 5, 4, 0, 1, 7, 2, 6]
   * ```
   */
  shuffle<T>(items: T[]): T[] {
    const n = items.length;
    for (let i = 0; i < n - 1; i++) {
      const j = i + this.nextInt(n - i);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  /**
   * A random order of 0 … n−1 (the epoch order of a dataset).
   *
   * @example
   * ```ts
   * rng.permutation(4); // e.g. [2, 0, 3, 1]
   * ```
   */
  permutation(n: number): number[] {
    return this.shuffle(Array.from({ length: n }, (_, i) => i));
  }

  /**
   * An inverted-dropout mask as torch's `nn.Dropout(p)` in training applies it: each element is
   * 0 with probability p, else 1/(1−p) (float32). One float per element, in order.
   *
   * @example
   * ```ts
   * rng.dropoutMask(4, 0.5); // e.g. Float32Array [2, 0, 0, 2]
   * ```
   */
  dropoutMask(n: number, p: number): Float32Array {
    if (!(p >= 0 && p < 1)) {
      throw new TrainerError('E_INPUT', `Dropout probability: expected 0 ≤ p < 1, got ${p}.`);
    }
    const mask = new Float32Array(n);
    const keep = Math.fround(1 / (1 - p));
    for (let i = 0; i < n; i++) mask[i] = this.nextFloat() < p ? 0 : keep;
    return mask;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
