import type {
  GenerateRequest,
  LanguageModel,
  LoglikelihoodRequest,
  LoglikelihoodResult,
  ModelCallOptions,
} from '@qlora/bench-core';
import type { Tokenizer } from '@qlora/datasets';
import * as tf from '@tensorflow/tfjs-core';
import { attentionInputs, decoderLayerForward, headLogits } from './_decoder-layer';
import { checkDeviceFits, guardDeviceErrors } from './_device-limits';
import { FORWARD_LIMITS, GREEDY_LIMITS, sequenceTooLong } from './_sequence-limits';
import type { LlamaConfig } from './config';
import { TrainerError } from './errors';
import { KvCache } from './kv-cache';
import {
  type EvaluationOptions,
  generateUntil,
  scoreLoglikelihood,
  scoreTokenPairs,
  type TokenPair,
} from './language-model';
import { DenseLinear, type Linear } from './linear';
import { computeInverseFrequencies } from './rope';

/**
 * Rows of token ids, or an int32 `[B, T]` tensor.
 *
 * @example
 * ```ts
 * const batch: TokenBatch = [[1, 450], [1, 3186]];
 * ```
 */
export type TokenBatch = readonly (readonly number[])[] | tf.Tensor2D;

/**
 * Options of {@link LlamaModel.forward}.
 *
 * @example
 * ```ts
 * model.forward([[0, 7, 8]], { attentionMask: [[0, 1, 1]], lastOnly: true });
 * ```
 */
export interface ForwardOptions {
  /**
   * `[B, T]`, 1 for real tokens and 0 for padding (left padding for generation). Position ids
   * then follow transformers' generate(): `cumsum(mask) - 1`, and 1 on padding.
   */
  attentionMask?: TokenBatch;
  /** Explicit `[B, T]` position ids; overrides the ones derived from the mask. */
  positionIds?: readonly (readonly number[])[];
  /** Reuses and extends cached keys/values: the input holds only the new tokens. */
  cache?: KvCache;
  /** Returns logits of the last position only (`[B, 1, vocab]`), as generation needs. */
  lastOnly?: boolean;
  /**
   * Returns logits of these `[row, position]` pairs only, in order, as `[1, P, vocab]`: the
   * vocabulary projection (a fifth of a 1B model's FLOPs at 128k tokens) runs on P rows instead
   * of B·T, and the largest tensor of a scoring batch shrinks with it. Loglikelihood scoring
   * needs only the continuation positions.
   */
  logitPositions?: readonly (readonly [number, number])[];
}

/**
 * Options of the greedy generation methods.
 *
 * @example
 * ```ts
 * await model.generateGreedy([1], 256, { eosTokenIds: [1] }); // llama2.c stops at BOS
 * ```
 */
export interface GreedyOptions {
  /** Stop a row when it emits one of these (default: the config's EOS ids). The EOS is kept. */
  eosTokenIds?: readonly number[];
  /** Left-padding id (default: config pad id, else 0); it never reaches a real token. */
  padTokenId?: number;
  /** Called after every step with a row's new tokens; returning true stops that row. */
  shouldStop?: (row: number, newTokens: readonly number[]) => boolean;
}

/**
 * The weights of one decoder layer; the projections are replaceable (LoRA wraps them).
 *
 * @example
 * ```ts
 * model.layers[0].qProj.name; // 'model.layers.0.self_attn.q_proj'
 * ```
 */
export interface LlamaLayer {
  inputLayernorm: tf.Tensor1D;
  postAttentionLayernorm: tf.Tensor1D;
  qProj: Linear;
  kProj: Linear;
  vProj: Linear;
  oProj: Linear;
  gateProj: Linear;
  upProj: Linear;
  downProj: Linear;
}

const PROJECTIONS = ['qProj', 'kProj', 'vProj', 'oProj', 'gateProj', 'upProj', 'downProj'] as const;
/**
 * A layer field holding a projection.
 *
 * @example
 * ```ts
 * const targets: ProjectionName[] = ['qProj', 'vProj'];
 * ```
 */
export type ProjectionName = (typeof PROJECTIONS)[number];

const HF_PROJECTION_NAMES: Record<ProjectionName, string> = {
  qProj: 'self_attn.q_proj',
  kProj: 'self_attn.k_proj',
  vProj: 'self_attn.v_proj',
  oProj: 'self_attn.o_proj',
  gateProj: 'mlp.gate_proj',
  upProj: 'mlp.up_proj',
  downProj: 'mlp.down_proj',
};

/**
 * Builds one projection from its Hugging Face name and `[out, in]` shape, or returns undefined
 * to take the dense `<name>.weight` tensor (see {@link LlamaModel.fromTensors}).
 *
 * @example
 * ```ts
 * const fromNf4: ProjectionFactory = (name) => nf4.get(name); // prebuilt Nf4Linear layers
 * ```
 */
export type ProjectionFactory = (name: string, shape: [number, number]) => Linear | undefined;

/** The Hugging Face names and `[out, in]` shapes of the seven projections of every layer. */
export function projectionShapes(config: LlamaConfig): Map<string, [number, number]> {
  const { hiddenSize: h, intermediateSize: m, headDim: d } = config;
  const qOut = config.numAttentionHeads * d;
  const kvOut = config.numKeyValueHeads * d;
  const shapes: Record<ProjectionName, [number, number]> = {
    qProj: [qOut, h],
    kProj: [kvOut, h],
    vProj: [kvOut, h],
    oProj: [h, qOut],
    gateProj: [m, h],
    upProj: [m, h],
    downProj: [h, m],
  };
  const out = new Map<string, [number, number]>();
  for (let i = 0; i < config.numHiddenLayers; i++) {
    for (const field of PROJECTIONS) {
      out.set(`model.layers.${i}.${HF_PROJECTION_NAMES[field]}`, shapes[field]);
    }
  }
  return out;
}

const BYTES_PER_ELEMENT: Record<string, number> = {
  float32: 4,
  int32: 4,
  bool: 1,
  complex64: 8,
};

function toRows(batch: TokenBatch): number[][] {
  return Array.isArray(batch)
    ? (batch as number[][])
    : ((batch as tf.Tensor2D).arraySync() as number[][]);
}

/**
 * A Llama-family causal language model on TensorFlow.js, numerically following transformers'
 * `LlamaForCausalLM` (f32 RMSNorm, rotate-half rotary with llama3 scaling, grouped-query
 * attention, SwiGLU MLP). Build one with {@link loadModel} or {@link LlamaModel.fromTensors}.
 * With a tokenizer attached it is a bench-core `LanguageModel`, scoring as lm-eval's `hf` model.
 *
 * @example
 * ```ts
 * const { model } = await loadModel('./TinyLlama-1.1B');
 * const logits = await model.forwardLogits([1, 15043]); // Float32Array(2 × 32000)
 * const next = await model.generateGreedy([1, 15043], 8); // 8 token ids
 * ```
 */
export class LlamaModel implements LanguageModel {
  readonly config: LlamaConfig;
  /** Needed by `loglikelihood` and `generateUntil`; `loadModel` attaches the checkpoint's. */
  tokenizer: Tokenizer | null = null;
  /** Batch size and truncation of the `LanguageModel` methods. */
  evaluation: EvaluationOptions = {};
  /** A name for result files (`loadModel` sets the folder path). */
  name?: string;
  readonly embedTokens: tf.Tensor2D;
  readonly layers: LlamaLayer[];
  readonly norm: tf.Tensor1D;
  /** The output head; when embeddings are tied its weight is `embedTokens` itself. */
  lmHead: Linear;
  readonly inverseFrequencies: Float32Array;
  /**
   * The `config.json` object the model was loaded from (`loadModel` sets it), written back by
   * `saveModel` / `saveQuantized`; null for a model built from tensors alone.
   */
  hfConfig: Record<string, unknown> | null = null;

  constructor(options: {
    config: LlamaConfig;
    embedTokens: tf.Tensor2D;
    layers: LlamaLayer[];
    norm: tf.Tensor1D;
    lmHead: Linear;
  }) {
    this.config = options.config;
    this.embedTokens = options.embedTokens;
    this.layers = options.layers;
    this.norm = options.norm;
    this.lmHead = options.lmHead;
    this.inverseFrequencies = computeInverseFrequencies(options.config);
  }

  /**
   * Builds the model from tensors named as in a Hugging Face checkpoint
   * (`model.layers.0.self_attn.q_proj.weight`, …). Takes ownership of the tensors it uses and of
   * the projections `projection` returns (e.g. prebuilt `Nf4Linear` layers); projections it
   * leaves undefined become {@link DenseLinear} over `<name>.weight`.
   *
   * @example
   * ```ts
   * const model = LlamaModel.fromTensors(config, (name) => tensors.get(name));
   * const qlora = LlamaModel.fromTensors(config, (name) => tensors.get(name), (name) => nf4.get(name));
   * ```
   */
  static fromTensors(
    config: LlamaConfig,
    get: (name: string) => tf.Tensor | undefined,
    projection?: ProjectionFactory,
  ): LlamaModel {
    const take = (name: string, shape: number[]): tf.Tensor => {
      const tensor = get(name);
      if (tensor === undefined) {
        throw new TrainerError(
          'E_WEIGHT_MISSING',
          `missing weight: expected ${name} [${shape.join(', ')}], got none. Hint: is this a LlamaForCausalLM checkpoint?`,
        );
      }
      if (tensor.shape.length !== shape.length || tensor.shape.some((d, i) => d !== shape[i])) {
        throw new TrainerError(
          'E_WEIGHT_SHAPE',
          `wrong weight shape for ${name}: expected [${shape.join(', ')}], got [${tensor.shape.join(', ')}]`,
        );
      }
      return tensor;
    };
    const { hiddenSize: h, vocabSize: v } = config;
    const shapes = projectionShapes(config);
    const embedTokens = take('model.embed_tokens.weight', [v, h]) as tf.Tensor2D;
    const layers: LlamaLayer[] = [];
    for (let i = 0; i < config.numHiddenLayers; i++) {
      const prefix = `model.layers.${i}.`;
      const linear = (field: ProjectionName): Linear => {
        const name = `${prefix}${HF_PROJECTION_NAMES[field]}`;
        const shape = shapes.get(name) as [number, number];
        const built = projection?.(name, shape);
        if (built === undefined) {
          return new DenseLinear(name, take(`${name}.weight`, shape) as tf.Tensor2D);
        }
        if (built.outFeatures !== shape[0] || built.inFeatures !== shape[1]) {
          built.dispose();
          throw new TrainerError(
            'E_WEIGHT_SHAPE',
            `wrong weight shape for ${name}.weight: expected [${shape.join(', ')}], got [${built.outFeatures}, ${built.inFeatures}]`,
          );
        }
        return built;
      };
      layers.push({
        inputLayernorm: take(`${prefix}input_layernorm.weight`, [h]) as tf.Tensor1D,
        postAttentionLayernorm: take(`${prefix}post_attention_layernorm.weight`, [
          h,
        ]) as tf.Tensor1D,
        qProj: linear('qProj'),
        kProj: linear('kProj'),
        vProj: linear('vProj'),
        oProj: linear('oProj'),
        gateProj: linear('gateProj'),
        upProj: linear('upProj'),
        downProj: linear('downProj'),
      });
    }
    const norm = take('model.norm.weight', [h]) as tf.Tensor1D;
    const lmHeadWeight = config.tieWordEmbeddings
      ? embedTokens
      : (take('lm_head.weight', [v, h]) as tf.Tensor2D);
    return new LlamaModel({
      config,
      embedTokens,
      layers,
      norm,
      lmHead: new DenseLinear('lm_head', lmHeadWeight),
    });
  }

  /** A fresh, empty cache for `batchSize` rows. */
  createCache(batchSize: number): KvCache {
    return new KvCache(this.config.numHiddenLayers, batchSize);
  }

  /**
   * Replaces projections, e.g. to wrap them in LoRA: `fn` gets each layer's projection and
   * returns the one to use (itself to keep it).
   */
  mapProjections(fn: (linear: Linear, layer: number, field: ProjectionName) => Linear): void {
    this.layers.forEach((layer, index) => {
      for (const field of PROJECTIONS) layer[field] = fn(layer[field], index, field);
    });
  }

  /** Every weight by its Hugging Face name (tied embeddings appear once). */
  namedWeights(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    out.set('model.embed_tokens.weight', this.embedTokens);
    this.layers.forEach((layer, i) => {
      out.set(`model.layers.${i}.input_layernorm.weight`, layer.inputLayernorm);
      out.set(`model.layers.${i}.post_attention_layernorm.weight`, layer.postAttentionLayernorm);
      for (const field of PROJECTIONS) {
        for (const [suffix, tensor] of Object.entries(layer[field].weights())) {
          out.set(`${layer[field].name}.${suffix}`, tensor);
        }
      }
    });
    out.set('model.norm.weight', this.norm);
    if (!this.config.tieWordEmbeddings) {
      for (const [suffix, tensor] of Object.entries(this.lmHead.weights())) {
        out.set(`lm_head.${suffix}`, tensor);
      }
    }
    return out;
  }

  /**
   * Logits `[B, T, vocab]` (f32) for a batch of token ids. With `cache`, the input holds only
   * the new tokens and the cache is extended. The caller disposes the returned tensor.
   *
   * @example
   * ```ts
   * const logits = model.forward([[0, 0, 5, 6], [3, 4, 5, 6]], { attentionMask: [[0, 0, 1, 1], [1, 1, 1, 1]] });
   * logits.shape; // [2, 4, vocab]
   * logits.dispose();
   * ```
   */
  forward(inputIds: TokenBatch, options: ForwardOptions = {}): tf.Tensor3D {
    const ids = toRows(inputIds);
    const batch = ids.length;
    const steps = ids[0]?.length ?? 0;
    if (batch === 0 || steps === 0 || ids.some((row) => row.length !== steps)) {
      throw new TrainerError(
        'E_INPUT',
        `invalid input ids: expected a non-empty rectangular [B, T] batch, got ${batch} rows of lengths ${ids
          .map((row) => row.length)
          .join(', ')}`,
      );
    }
    const vocab = this.config.vocabSize;
    for (const row of ids) {
      for (const id of row) {
        if (!Number.isInteger(id) || id < 0 || id >= vocab) {
          throw new TrainerError(
            'E_INPUT',
            `invalid token id: expected an integer in [0, ${vocab}), got ${id}`,
          );
        }
      }
    }
    const cache = options.cache;
    if (cache && cache.batchSize !== batch) {
      throw new TrainerError(
        'E_INPUT',
        `cache batch size: expected ${cache.batchSize}, got ${batch}`,
      );
    }
    const past = cache?.length ?? 0;
    const newMask = options.attentionMask
      ? toRows(options.attentionMask)
      : ids.map(() => new Array<number>(steps).fill(1));
    const fullMask = newMask.map((row, b) => [...(cache?.mask[b] ?? []), ...row]);
    const total = past + steps;

    // Position ids as generate() derives them: cumsum(mask) - 1, and 1 on padding.
    const positions = new Int32Array(batch * steps);
    let lastPosition = 0;
    for (let b = 0; b < batch; b++) {
      const explicit = options.positionIds?.[b];
      let count = 0;
      const row = fullMask[b] as number[];
      for (let j = 0; j < total; j++) {
        count += row[j] as number;
        if (j >= past) {
          const position =
            explicit !== undefined ? (explicit[j - past] as number) : row[j] === 0 ? 1 : count - 1;
          positions[b * steps + j - past] = position;
          if (position > lastPosition) lastPosition = position;
        }
      }
    }
    // transformers' Llama would rotate past the trained positions without a word; we refuse.
    if (lastPosition >= this.config.maxPositionEmbeddings) {
      throw sequenceTooLong(
        this,
        'sequence too long for the model',
        `${lastPosition + 1} tokens${past > 0 ? ` (${past} cached + ${steps} new)` : ''}`,
        `keep the last ${this.config.maxPositionEmbeddings} tokens of the input (left truncation, as lm-eval does), or generate fewer new tokens`,
      );
    }
    const selected = options.logitPositions;
    if (selected !== undefined) {
      for (const [row, position] of selected) {
        if (
          !Number.isInteger(row) ||
          row < 0 ||
          row >= batch ||
          !Number.isInteger(position) ||
          position < 0 ||
          position >= steps
        ) {
          throw new TrainerError(
            'E_INPUT',
            `invalid logit position: expected [row, position] in [0, ${batch}) × [0, ${steps}), got [${row}, ${position}]`,
          );
        }
      }
    }
    checkDeviceFits(
      this.config,
      {
        batch,
        steps,
        past,
        logitSteps: options.lastOnly
          ? 1
          : selected !== undefined
            ? Math.max(1, Math.ceil(selected.length / batch))
            : steps,
      },
      FORWARD_LIMITS,
    );

    const logits = tf.tidy(() => {
      const inputs = attentionInputs(this, {
        batch,
        steps,
        past,
        positions,
        keyMask: (b, j) => fullMask[b]?.[j],
      });
      const idsT = tf.tensor2d(ids as number[][], [batch, steps], 'int32');
      let hidden: tf.Tensor = tf.gather(this.embedTokens, idsT); // [B, T, H]
      this.layers.forEach((layer, index) => {
        hidden = decoderLayerForward(this.config, layer, hidden, inputs, cache && { cache, index });
      });
      const width = this.config.hiddenSize;
      if (options.lastOnly) hidden = tf.slice(hidden, [0, steps - 1, 0], [batch, 1, width]);
      else if (selected !== undefined) {
        const rows = tf.tensor1d(
          selected.map(([row, position]) => row * steps + position),
          'int32',
        );
        hidden = tf.reshape(tf.gather(tf.reshape(hidden, [batch * steps, width]), rows), [
          1,
          selected.length,
          width,
        ]);
      }
      return headLogits(this, hidden);
    });
    if (cache) {
      newMask.forEach((row, b) => {
        cache.mask[b]?.push(...row);
      });
    }
    return logits;
  }

  /**
   * Logits of one sequence, `T × vocab` row-major.
   *
   * @example
   * ```ts
   * const logits = await model.forwardLogits([1, 450, 4996]);
   * logits.length; // 3 * model.config.vocabSize
   * ```
   */
  async forwardLogits(ids: readonly number[]): Promise<Float32Array> {
    return guardDeviceErrors(FORWARD_LIMITS, async () => {
      const logits = this.forward([ids]);
      try {
        return (await logits.data()) as Float32Array;
      } finally {
        logits.dispose();
      }
    });
  }

  /**
   * Greedy continuation of one prompt with a KV cache, token-identical to transformers'
   * `generate(do_sample=False)`: stops after `maxNewTokens` or at EOS (which is included).
   *
   * @example
   * ```ts
   * await model.generateGreedy([1], 5); // e.g. [403, 407, 261, 378, 432]
   * ```
   */
  async generateGreedy(
    ids: readonly number[],
    maxNewTokens: number,
    options: GreedyOptions = {},
  ): Promise<number[]> {
    const [tokens] = await this.generateGreedyBatch([ids], maxNewTokens, options);
    return tokens ?? [];
  }

  /**
   * Greedy continuation of several prompts at once, left-padded as transformers batches them.
   * Returns each row's new tokens (up to and including its EOS).
   *
   * @example
   * ```ts
   * await model.generateGreedyBatch([[1, 5], [1, 7, 8, 9]], 4); // [[…4 ids], […4 ids]]
   * ```
   */
  async generateGreedyBatch(
    prompts: readonly (readonly number[])[],
    maxNewTokens: number,
    options: GreedyOptions = {},
  ): Promise<number[][]> {
    const batch = prompts.length;
    if (batch === 0) return [];
    if (prompts.some((p) => p.length === 0)) {
      throw new TrainerError(
        'E_INPUT',
        'empty prompt: expected at least one token id (e.g. BOS), got []',
      );
    }
    const room = this.config.maxPositionEmbeddings;
    const longest = Math.max(...prompts.map((p) => p.length));
    if (longest + Math.max(0, maxNewTokens) > room) {
      throw sequenceTooLong(
        this,
        'greedy generation',
        `a prompt of ${longest} tokens + maxNewTokens ${maxNewTokens} = ${longest + maxNewTokens} tokens`,
        maxNewTokens >= room
          ? `lower maxNewTokens below ${room} (the prompt needs at least one position)`
          : `${longest < room ? `lower maxNewTokens to at most ${room - longest}, or ` : ''}keep the last ${room - maxNewTokens} prompt tokens (left truncation, as lm-eval's generate_until does)`,
      );
    }
    return guardDeviceErrors(GREEDY_LIMITS, () => this.greedyLoop(prompts, maxNewTokens, options));
  }

  private async greedyLoop(
    prompts: readonly (readonly number[])[],
    maxNewTokens: number,
    options: GreedyOptions,
  ): Promise<number[][]> {
    const batch = prompts.length;
    const eos = new Set(options.eosTokenIds ?? this.config.eosTokenIds);
    const pad = options.padTokenId ?? this.config.padTokenId ?? 0;
    const width = Math.max(...prompts.map((p) => p.length));
    const ids = prompts.map((p) => [...new Array<number>(width - p.length).fill(pad), ...p]);
    const mask = prompts.map((p) => [
      ...new Array<number>(width - p.length).fill(0),
      ...new Array<number>(p.length).fill(1),
    ]);
    const out: number[][] = prompts.map(() => []);
    const done = prompts.map(() => maxNewTokens <= 0);
    const cache = this.createCache(batch);
    try {
      let input: number[][] = ids;
      let inputMask: number[][] = mask;
      while (done.some((d) => !d)) {
        const logits = this.forward(input, { attentionMask: inputMask, cache, lastOnly: true });
        const next = tf.tidy(() =>
          tf.argMax(tf.reshape(logits, [batch, this.config.vocabSize]), 1),
        );
        logits.dispose();
        const chosen = Array.from(await next.data());
        next.dispose();
        for (let b = 0; b < batch; b++) {
          if (done[b]) continue;
          const token = chosen[b] as number;
          const row = out[b] as number[];
          row.push(token);
          if (eos.has(token) || row.length >= maxNewTokens || options.shouldStop?.(b, row))
            done[b] = true;
        }
        // Finished rows keep stepping (as in transformers); their tokens are not recorded.
        input = chosen.map((token) => [token]);
        inputMask = chosen.map(() => [1]);
      }
      return out;
    } finally {
      cache.dispose();
    }
  }

  /**
   * lm-eval `loglikelihood`: context and continuation encoded together then split, left
   * truncation to `evaluation.maxLength`, batches sorted by length descending. Results are in
   * request order.
   *
   * @example
   * ```ts
   * const [r] = await model.loglikelihood([{ context: 'Hello', continuation: ' world' }]);
   * r; // { logprob: -3.2, isGreedy: false }
   * ```
   */
  loglikelihood(
    requests: readonly LoglikelihoodRequest[],
    options?: ModelCallOptions,
  ): Promise<LoglikelihoodResult[]> {
    return scoreLoglikelihood(this, this.requireTokenizer(), requests, this.evaluation, options);
  }

  /**
   * `loglikelihood` on pairs that are already token ids.
   *
   * @example
   * ```ts
   * await model.loglikelihoodTokens([{ context: [1, 450], continuation: [4996] }]);
   * ```
   */
  loglikelihoodTokens(
    pairs: readonly TokenPair[],
    options?: ModelCallOptions,
  ): Promise<LoglikelihoodResult[]> {
    return scoreTokenPairs(this, pairs, this.evaluation, options);
  }

  /**
   * lm-eval `generate_until`: greedy with a KV cache, batched with left padding, stopping at the
   * stop strings, the token budget or EOS; the text is cut before the first stop string.
   *
   * @example
   * ```ts
   * await model.generateUntil([{ context: 'Question: 2+2?\nAnswer:', until: ['\n'], maxGenTokens: 16 }]);
   * // [' 4']
   * ```
   */
  generateUntil(
    requests: readonly GenerateRequest[],
    options?: ModelCallOptions,
  ): Promise<string[]> {
    return generateUntil(this, this.requireTokenizer(), requests, this.evaluation, options);
  }

  private requireTokenizer(): Tokenizer {
    if (this.tokenizer === null) {
      throw new TrainerError(
        'E_NO_TOKENIZER',
        'text request without a tokenizer: expected model.tokenizer to be set, got null. Hint: load a folder with tokenizer.json, or assign an HfTokenizer.',
      );
    }
    return this.tokenizer;
  }

  /**
   * Bytes of backend memory held by the weights {@link LlamaModel.namedWeights} lists (tied
   * embeddings once; 4-bit projections count their packed words and absmax). LoRA adapter
   * variables are not included.
   *
   * @example
   * ```ts
   * model.weightBytes(); // 4 × parameters dense; ≈ 0.5 B per projection parameter in NF4
   * ```
   */
  weightBytes(): number {
    let bytes = 0;
    for (const tensor of new Set(this.namedWeights().values())) {
      bytes += tensor.size * (BYTES_PER_ELEMENT[tensor.dtype] ?? 4);
    }
    return bytes;
  }

  /**
   * Releases every weight: each projection through its own `dispose()` (so a LoRA layer frees
   * its A/B variables and its base, an NF4 layer its packed codes), then the embeddings, norms
   * and head (tied embeddings once). The model is unusable afterwards.
   *
   * @example
   * ```ts
   * const before = tf.memory().numTensors;
   * const { model } = await loadModel('./model');
   * model.dispose(); // tf.memory().numTensors === before
   * ```
   */
  dispose(): void {
    for (const layer of this.layers) {
      for (const field of PROJECTIONS) layer[field].dispose();
      layer.inputLayernorm.dispose();
      layer.postAttentionLayernorm.dispose();
    }
    // Disposing twice is a no-op in tfjs, so a head tied to the embeddings is safe here.
    this.lmHead.dispose();
    this.embedTokens.dispose();
    this.norm.dispose();
  }
}
