import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedDataPath } from '@qlora/test-utils';
import * as tf from '@tensorflow/tfjs-core';
import { type BenchRow, type BenchSuite, medianMs, ratioRow } from '../../../tools/bench/harness';
import { convertLlama2c, initBackend, type LlamaModel, loadModel } from '../src/index';

const PROMPT = 128;
const NEW_TOKENS = 32;

/** The projection matmuls of one forward pass alone, on the same backend: the compute floor. */
function projectionMatmuls(model: LlamaModel, steps: number): () => void {
  const weights = [...model.namedWeights().entries()]
    .filter(([name, t]) => t.rank === 2 && name !== 'model.embed_tokens.weight')
    .map(([, t]) => t as tf.Tensor2D);
  weights.push(model.lmHead.weights().weight as tf.Tensor2D);
  return () => {
    tf.tidy(() => {
      for (const w of weights) tf.matMul(tf.ones([steps, w.shape[1]]), w, false, true).dataSync();
    });
  };
}

const suite: BenchSuite = {
  title: 'Llama forward and greedy generation (stories260K converted from llama2.c)',
  async run(): Promise<BenchRow[]> {
    const rows: BenchRow[] = [];
    const dir = mkdtempSync(join(tmpdir(), 'bench-stories-'));
    try {
      const stories = sharedDataPath('models', 'stories260K');
      await convertLlama2c(join(stories, 'stories260K.bin'), join(stories, 'tok512.bin'), dir);
      for (const backend of ['wasm', 'cpu'] as const) {
        await initBackend(backend);
        const { model } = await loadModel(dir, { skipTokenizer: true });
        const ids = Array.from({ length: PROMPT }, (_, i) => 3 + ((i * 37) % 500));
        const forwardMs = await medianMs(`${backend} forward`, () => model.forwardLogits(ids), {
          timeMs: 1500,
        });
        const floorMs = await medianMs(`${backend} matmuls`, projectionMatmuls(model, PROMPT), {
          timeMs: 1500,
        });
        rows.push(
          ratioRow(
            `${backend}: forward ${PROMPT} tokens`,
            (PROMPT * 1000) / forwardMs,
            'tokens/s',
            {
              name: 'its projection matmuls alone',
              value: (PROMPT * 1000) / floorMs,
            },
          ),
        );
        const cachedMs = await medianMs(
          `${backend} generate`,
          () => model.generateGreedy(ids.slice(0, 16), NEW_TOKENS, { eosTokenIds: [] }),
          { timeMs: 2000, minIterations: 2 },
        );
        const uncachedMs = await medianMs(
          `${backend} generate without cache`,
          async () => {
            const seq = ids.slice(0, 16);
            for (let i = 0; i < NEW_TOKENS; i++) {
              const logits = await model.forwardLogits(seq);
              let best = 0;
              const row = logits.subarray((seq.length - 1) * 512);
              for (let v = 1; v < 512; v++)
                if ((row[v] as number) > (row[best] as number)) best = v;
              seq.push(best);
            }
          },
          { timeMs: 2000, minIterations: 2 },
        );
        rows.push(
          ratioRow(
            `${backend}: greedy ${NEW_TOKENS} new tokens, KV cache`,
            (NEW_TOKENS * 1000) / cachedMs,
            'tokens/s',
            {
              name: 'full forward per token',
              value: (NEW_TOKENS * 1000) / uncachedMs,
            },
          ),
        );
        model.dispose();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return rows;
  },
};

export default suite;
