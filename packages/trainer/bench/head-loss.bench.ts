// The training loss over the vocabulary head, chunked (the default) against whole `[rows, vocab]`
// logits, measured in the same run: peak bytes of live tensors (tfjs-core's own count, sampled at
// every tensor creation; the counter the GPU host's training rows report) and time of loss +
// dL/dhidden. Scale: 32000-token vocabulary (TinyLlama's), 256 rows, chunks of 32 rows, wasm.
import * as tf from '@tensorflow/tfjs-core';
import { type BenchRow, type BenchSuite, medianMs, ratioRow } from '../../../tools/bench/harness';
import { randomLlama } from '../src/_test-fixtures';
import { headLossSum, prepareBatch } from '../src/_train-forward';
import { ensureGradients } from '../src/ensure-gradients';
import { initBackend, type LlamaModel, parseLlamaConfig } from '../src/index';

const VOCAB = 32000;
const HIDDEN = 64;
const BATCH = 2;
const STEPS = 129; // 256 shifted rows
const CHUNK = 32;
const MIB = 2 ** 20;

function model(): LlamaModel {
  const config = parseLlamaConfig({
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: VOCAB,
    hidden_size: HIDDEN,
    intermediate_size: 256,
    num_hidden_layers: 1,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 512,
    tie_word_embeddings: true,
  });
  return randomLlama(config, { seed: 7, scale: 0.04 });
}

/** Peak of tf.memory().numBytes while `fn` runs, above what was live before. */
function peakBytes(fn: () => void): number {
  const engine = tf.engine() as unknown as {
    state: { numBytes: number };
    trackTensor(tensor: unknown, backend: unknown): void;
  };
  const base = engine.state.numBytes;
  let peak = base;
  const track = engine.trackTensor.bind(engine);
  engine.trackTensor = (tensor, backend) => {
    track(tensor, backend);
    peak = Math.max(peak, engine.state.numBytes);
  };
  try {
    fn();
  } finally {
    engine.trackTensor = track;
  }
  return peak - base;
}

const suite: BenchSuite = {
  title: 'Chunked cross-entropy over the vocabulary head (loss + dL/dhidden, wasm)',
  async run(): Promise<BenchRow[]> {
    await initBackend('wasm');
    ensureGradients();
    const m = model();
    const ids = Array.from({ length: BATCH * STEPS }, (_, i) => (i * 7919 + 17) % VOCAB);
    const prepared = prepareBatch(m, {
      batchSize: BATCH,
      seqLength: STEPS,
      inputIds: ids,
      labels: ids,
      attentionMask: ids.map(() => 1),
    });
    const hidden = tf.randomNormal([BATCH, STEPS, HIDDEN], 0, 1, 'float32', 3);
    const step = (chunkRows: number) => () => {
      const { value, grads } = tf.valueAndGrads((h: tf.Tensor) =>
        headLossSum(m, h, prepared, { chunkRows }),
      )([hidden]);
      (grads[0] as tf.Tensor).dataSync();
      tf.dispose([value, ...grads]);
    };
    try {
      const chunkedPeak = peakBytes(step(CHUNK));
      const wholePeak = peakBytes(step(0));
      const logitsBytes = BATCH * (STEPS - 1) * VOCAB * 4;
      const chunkedMs = await medianMs('chunked', step(CHUNK), { timeMs: 2000, minIterations: 3 });
      const wholeMs = await medianMs('whole', step(0), { timeMs: 2000, minIterations: 3 });
      const rows = BATCH * (STEPS - 1);
      return [
        ratioRow(
          `peak live tensor bytes, ${rows} rows × ${VOCAB} vocabulary, chunks of ${CHUNK} rows`,
          chunkedPeak / MIB,
          'MiB',
          { name: 'whole logits', value: wholePeak / MIB },
          {
            note: `lower is better; in units of one [rows, vocab] f32 tensor (${(logitsBytes / MIB).toFixed(0)} MiB): ${(chunkedPeak / logitsBytes).toFixed(2)} vs ${(wholePeak / logitsBytes).toFixed(2)}`,
          },
        ),
        ratioRow(
          'loss + dL/dhidden, chunked',
          (rows * 1000) / chunkedMs,
          'rows/s',
          { name: 'whole logits', value: (rows * 1000) / wholeMs },
          { note: 'the backward recomputes each chunk of logits (one more head matmul)' },
        ),
      ];
    } finally {
      prepared.dispose();
      hidden.dispose();
      m.dispose();
    }
  },
};

export default suite;
