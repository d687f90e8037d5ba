/**
 * Backend bytes held by the projection weights of a Llama-3.2-1B-shaped model (16 layers,
 * hidden 2048, intermediate 8192, 32 heads / 8 KV heads, head dim 64) as NF4 (`Nf4Linear`,
 * blocksize 64, double quant) against float32, measured with `tf.memory().numBytes` on the cpu
 * backend. All 16 NF4 layers are built (from one quantized layer, copied per layer: quantizing
 * 16 × 61M random weights would take minutes on 2 cores and does not change the byte count);
 * the f32 side is measured for one layer and multiplied by 16, stated in the row. The dense
 * parts (embeddings 128256×2048 tied with lm_head, norms) are the same in both and added as
 * computed f32 bytes in the whole-model row. Also a forward timing of one NF4 projection
 * (dequantize inside the custom op + matmul) against the dense f32 matmul.
 */
import '@tensorflow/tfjs-backend-cpu';
import { quantize4bit } from '@qlora/nf4';
import * as tf from '@tensorflow/tfjs-core';
import { type BenchRow, type BenchSuite, medianMs, ratioRow } from '../../../tools/bench/harness';
import { Nf4Linear } from '../src/index';

const HIDDEN = 2048;
const INTERMEDIATE = 8192;
const KV = 8 * 64;
const LAYERS = 16;
const VOCAB = 128256;
const SHAPES: [string, number, number][] = [
  ['self_attn.q_proj', HIDDEN, HIDDEN],
  ['self_attn.k_proj', KV, HIDDEN],
  ['self_attn.v_proj', KV, HIDDEN],
  ['self_attn.o_proj', HIDDEN, HIDDEN],
  ['mlp.gate_proj', INTERMEDIATE, HIDDEN],
  ['mlp.up_proj', INTERMEDIATE, HIDDEN],
  ['mlp.down_proj', HIDDEN, INTERMEDIATE],
];

function weightLike(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 4294967296 - 0.5) * 0.04;
  }
  return out;
}

const MB = 1024 * 1024;

const suite: BenchSuite = {
  title:
    'LoRA base memory: NF4 projections of a Llama-3.2-1B-shaped model vs float32 (tf.memory().numBytes, cpu)',
  async run(): Promise<BenchRow[]> {
    await tf.setBackend('cpu');
    await tf.ready();
    const params = SHAPES.reduce((s, [, o, i]) => s + o * i, 0);
    const quantized = SHAPES.map(([, o, i], k) =>
      quantize4bit(weightLike(o * i, k + 1), { shape: [o, i], doubleQuant: true }),
    );

    const start = tf.memory().numBytes;
    const nf4: Nf4Linear[] = [];
    for (let layer = 0; layer < LAYERS; layer++) {
      SHAPES.forEach(([name], k) => {
        nf4.push(new Nf4Linear(`model.layers.${layer}.${name}`, quantized[k] as never));
      });
    }
    const nf4Bytes = tf.memory().numBytes - start;

    const f32Start = tf.memory().numBytes;
    const dense = SHAPES.map(([, o, i], k) => tf.tensor2d(weightLike(o * i, k + 1), [o, i]));
    const f32LayerBytes = tf.memory().numBytes - f32Start;
    const f32Bytes = f32LayerBytes * LAYERS;

    // Forward of one q_proj on 8 tokens: NF4 (dequantize + matmul) vs dense matmul.
    const x = tf.tensor2d(weightLike(8 * HIDDEN, 99), [8, HIDDEN]);
    const q = nf4[0] as Nf4Linear;
    const wq = dense[0] as tf.Tensor2D;
    const nf4Ms = await medianMs('nf4 forward', () => tf.tidy(() => q.apply(x).dataSync()), {
      timeMs: 1500,
    });
    const denseMs = await medianMs(
      'dense forward',
      () => tf.tidy(() => tf.matMul(x, wq, false, true).dataSync()),
      { timeMs: 1500 },
    );

    const denseParts = (VOCAB * HIDDEN + (2 * LAYERS + 1) * HIDDEN) * 4;
    tf.dispose([x, ...dense]);
    for (const l of nf4) l.dispose();

    const totalParams = params * LAYERS;
    return [
      ratioRow(
        `NF4 projections, ${LAYERS} layers (${(totalParams / 1e6).toFixed(1)}M params)`,
        nf4Bytes / MB,
        'MiB',
        { name: `float32 (1 layer measured × ${LAYERS})`, value: f32Bytes / MB },
        {
          note: `${(nf4Bytes / totalParams).toFixed(4)} byte/param (4-bit codes + f32 absmax per 64)`,
        },
      ),
      ratioRow(
        'whole model weights with NF4 projections (+ f32 embeddings/norms, computed)',
        (nf4Bytes + denseParts) / MB,
        'MiB',
        { name: 'whole model float32', value: (f32Bytes + denseParts) / MB },
        { note: `dense parts ${(denseParts / MB).toFixed(0)} MiB (tied embeddings 128256×2048)` },
      ),
      ratioRow(
        'q_proj 2048×2048 forward, 8 tokens (NF4 dequant + matmul)',
        1000 / nf4Ms,
        'calls/s',
        {
          name: 'dense f32 matmul',
          value: 1000 / denseMs,
        },
      ),
    ];
  },
};

export default suite;
