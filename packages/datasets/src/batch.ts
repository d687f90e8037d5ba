import { DatasetsError } from './errors';
import { createRandom, shuffle } from './random';
import { IGNORE_INDEX } from './sft';

/**
 * A token sequence ready for collation: one example, or several packed into one row.
 *
 * @example
 * ```ts
 * const seq: TokenSequence = { inputIds: [1, 887, 2], labels: [-100, 887, 2] };
 * ```
 */
export interface TokenSequence {
  inputIds: readonly number[];
  labels: readonly number[];
  /** Per-position segment id, 1-based (omitted: one segment). */
  segmentIds?: readonly number[];
  /** Per-position position id (omitted: 0, 1, 2, …). */
  positionIds?: readonly number[];
}

/**
 * A padded batch, row-major flat arrays of shape [batchSize, seqLength]. Padding is on the right:
 * `inputIds` = pad id, `labels` = -100, `attentionMask` = 0, `segmentIds` = 0, `positionIds` = 0.
 * The attention mask comes from the true lengths, never from comparing ids with the pad id (which
 * would also hide a real EOS when pad = EOS, as in TinyLlama).
 *
 * @example
 * ```ts
 * const { inputIds, seqLength } = collateBatch([seq], { padTokenId: 2 }); // inputIds: Int32Array [1 × seqLength]
 * ```
 */
export interface Batch {
  batchSize: number;
  seqLength: number;
  inputIds: Int32Array;
  labels: Int32Array;
  attentionMask: Int32Array;
  /** Which packed example each position belongs to (1-based; 0 = padding). */
  segmentIds: Int32Array;
  /** Position ids, restarting at 0 at every segment start. */
  positionIds: Int32Array;
  /** Non-padding tokens. */
  tokenCount: number;
  /** Positions with a label other than -100. */
  labelCount: number;
}

/**
 * Options of {@link collateBatch}.
 *
 * @example
 * ```ts
 * collateBatch(examples, { padTokenId: tokenizer.padTokenId ?? 2, padToMultipleOf: 8 });
 * ```
 */
export interface CollateOptions {
  /** Id written into padding positions (e.g. `tokenizer.padTokenId ?? tokenizer.eosTokenId`). */
  padTokenId: number;
  /** Round the padded length up to a multiple of this (e.g. 8). */
  padToMultipleOf?: number;
}

/**
 * Pads sequences to the longest in the batch (right padding, labels -100, attention mask from
 * lengths; segment and position ids carried from packed rows).
 *
 * @example
 * ```ts
 * const batch = collateBatch([a, b], { padTokenId: 2 });
 * batch.seqLength; // max(a.inputIds.length, b.inputIds.length)
 * batch.attentionMask; // 1 for real tokens, 0 for padding
 * ```
 */
export function collateBatch(sequences: readonly TokenSequence[], options: CollateOptions): Batch {
  if (sequences.length === 0) {
    throw new DatasetsError(
      'INVALID_ARGUMENT',
      'cannot collate: expected at least one sequence, got 0',
    );
  }
  let seqLength = 0;
  for (const s of sequences) {
    if (s.labels.length !== s.inputIds.length) {
      throw new DatasetsError(
        'INVALID_ARGUMENT',
        `cannot collate: expected labels as long as inputIds, got ${s.labels.length} vs ${s.inputIds.length}`,
      );
    }
    seqLength = Math.max(seqLength, s.inputIds.length);
  }
  const multiple = options.padToMultipleOf;
  if (multiple !== undefined && multiple > 1)
    seqLength = Math.ceil(seqLength / multiple) * multiple;
  const batchSize = sequences.length;
  const size = batchSize * seqLength;
  const inputIds = new Int32Array(size).fill(options.padTokenId);
  const labels = new Int32Array(size).fill(IGNORE_INDEX);
  const attentionMask = new Int32Array(size);
  const segmentIds = new Int32Array(size);
  const positionIds = new Int32Array(size);
  let tokenCount = 0;
  let labelCount = 0;
  sequences.forEach((s, row) => {
    const base = row * seqLength;
    for (let t = 0; t < s.inputIds.length; t++) {
      inputIds[base + t] = s.inputIds[t] as number;
      const label = s.labels[t] as number;
      labels[base + t] = label;
      if (label !== IGNORE_INDEX) labelCount++;
      attentionMask[base + t] = 1;
      segmentIds[base + t] = s.segmentIds ? (s.segmentIds[t] as number) : 1;
      positionIds[base + t] = s.positionIds ? (s.positionIds[t] as number) : t;
    }
    tokenCount += s.inputIds.length;
  });
  return {
    batchSize,
    seqLength,
    inputIds,
    labels,
    attentionMask,
    segmentIds,
    positionIds,
    tokenCount,
    labelCount,
  };
}

/**
 * Packs sequences greedily, in order, into rows of at most `maxLength` tokens without
 * cross-contamination: each row records per-position segment ids (1, 2, …) and position ids that
 * restart at 0 per segment, and the label of each segment's first token is set to -100 (under the
 * causal shift it would otherwise be predicted from the previous example's last token). Attention
 * must be block-diagonal causal: see {@link segmentCausalMask}.
 *
 * @example
 * ```ts
 * const rows = packSequences(examples, { maxLength: 2048 });
 * rows[0].segmentIds; // [1, 1, …, 2, 2, …]
 * rows[0].positionIds; // [0, 1, …, 0, 1, …]
 * ```
 */
export function packSequences(
  sequences: readonly TokenSequence[],
  options: { maxLength: number },
): TokenSequence[] {
  const rows: TokenSequence[] = [];
  let ids: number[] = [];
  let labels: number[] = [];
  let segs: number[] = [];
  let pos: number[] = [];
  let segment = 0;
  const flush = () => {
    if (ids.length > 0) rows.push({ inputIds: ids, labels, segmentIds: segs, positionIds: pos });
    ids = [];
    labels = [];
    segs = [];
    pos = [];
    segment = 0;
  };
  sequences.forEach((s, i) => {
    const n = s.inputIds.length;
    if (n > options.maxLength) {
      throw new DatasetsError(
        'RECORD_TOO_LONG',
        `cannot pack sequence ${i}: expected at most ${options.maxLength} tokens, got ${n}\nHint: tokenize with { maxLength } first.`,
        { record: i },
      );
    }
    if (ids.length + n > options.maxLength) flush();
    segment++;
    for (let t = 0; t < n; t++) {
      ids.push(s.inputIds[t] as number);
      labels.push(t === 0 ? IGNORE_INDEX : (s.labels[t] as number));
      segs.push(segment);
      pos.push(t);
    }
  });
  flush();
  return rows;
}

/**
 * The block-diagonal causal attention mask of one packed row, [T, T] row-major: position i may
 * attend to j when j ≤ i and both are in the same non-zero segment.
 *
 * @example
 * ```ts
 * segmentCausalMask([1, 1, 2]);
 * // [1,0,0,
 * //  1,1,0,
 * //  0,0,1]
 * ```
 */
export function segmentCausalMask(segmentIds: ArrayLike<number>): Uint8Array {
  const t = segmentIds.length;
  const mask = new Uint8Array(t * t);
  for (let i = 0; i < t; i++) {
    const si = segmentIds[i] as number;
    if (si === 0) continue;
    for (let j = 0; j <= i; j++) if (segmentIds[j] === si) mask[i * t + j] = 1;
  }
  return mask;
}

/**
 * Options of {@link makeBatches}.
 *
 * @example
 * ```ts
 * makeBatches(examples, { batchSize: 8, padTokenId: 2, seed: 3407, packToLength: 2048 });
 * ```
 */
export interface MakeBatchesOptions extends CollateOptions {
  batchSize: number;
  /** Shuffle with this seed first (omit to keep the given order). */
  seed?: number;
  /**
   * Group similar lengths (Hugging Face `LengthGroupedSampler` style): after the seeded shuffle,
   * cut into megabatches of `batchSize × 50`, sort each by length (longest first), split into
   * batches, then shuffle the batch order with a second generator derived from `seed`. Needs `seed`.
   */
  groupByLength?: boolean;
  /** Pack sequences into rows of this many tokens (after the shuffle) before batching. */
  packToLength?: number;
  /** Drop a last batch smaller than `batchSize` (default false). */
  dropLast?: boolean;
}

const MEGABATCH_FACTOR = 50;

/**
 * Splits sequences into padded batches, optionally shuffled (seeded), length-grouped or packed.
 *
 * @example
 * ```ts
 * const batches = makeBatches(examples, { batchSize: 2, padTokenId: 2, seed: 3407, groupByLength: true });
 * batches[0].inputIds.length; // 2 × batches[0].seqLength
 * ```
 */
export function makeBatches(
  sequences: readonly TokenSequence[],
  options: MakeBatchesOptions,
): Batch[] {
  const { batchSize } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new DatasetsError(
      'INVALID_ARGUMENT',
      `bad batchSize: expected an integer ≥ 1, got ${batchSize}`,
    );
  }
  if (sequences.length === 0) {
    throw new DatasetsError(
      'EMPTY_DATASET',
      'cannot make batches: expected at least one sequence, got 0\nHint: the dataset is empty; check the data path, the sample size (n) and records dropped for being too long (maxLength).',
    );
  }
  if (options.groupByLength && options.seed === undefined) {
    throw new DatasetsError(
      'INVALID_ARGUMENT',
      'cannot group by length: expected options.seed, got none',
    );
  }
  let items: readonly TokenSequence[] =
    options.seed !== undefined ? shuffle(sequences, options.seed) : sequences;
  if (options.packToLength !== undefined)
    items = packSequences(items, { maxLength: options.packToLength });
  let groups: TokenSequence[][] = [];
  if (options.groupByLength && options.seed !== undefined) {
    const mega = batchSize * MEGABATCH_FACTOR;
    for (let start = 0; start < items.length; start += mega) {
      const chunk = items
        .slice(start, start + mega)
        .map((s, k) => ({ s, k }))
        .sort((a, b) => b.s.inputIds.length - a.s.inputIds.length || a.k - b.k)
        .map((x) => x.s);
      for (let b = 0; b < chunk.length; b += batchSize) groups.push(chunk.slice(b, b + batchSize));
    }
    // A second generator stream for the batch order, so it does not repeat the item shuffle.
    const rng = createRandom((options.seed ^ 0x5bd1e995) >>> 0);
    for (let i = groups.length - 1; i > 0; i--) {
      const j = rng.below(i + 1);
      const tmp = groups[i] as TokenSequence[];
      groups[i] = groups[j] as TokenSequence[];
      groups[j] = tmp;
    }
  } else {
    for (let b = 0; b < items.length; b += batchSize) groups.push(items.slice(b, b + batchSize));
  }
  if (options.dropLast) groups = groups.filter((g) => g.length === batchSize);
  if (groups.length === 0) {
    throw new DatasetsError(
      'EMPTY_DATASET',
      `cannot make batches: expected at least one full batch of ${batchSize} with dropLast, got ${items.length} sequence(s)\nHint: lower batchSize or set dropLast: false.`,
    );
  }
  return groups.map((g) => collateBatch(g, options));
}
