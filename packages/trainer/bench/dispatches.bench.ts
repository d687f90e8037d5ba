// WebGPU dispatches per LoRA training step and per forward with the fused RMSNorm, rotary and
// SwiGLU programs against tfjs's op chains (the WGSL matmul kernels on in both), counted at
// tfjs-webgpu's runWebGPUProgram in the same run. Dispatch count is what costs host time on the
// GPU host (about 0.3 ms each there); this counts them on whatever adapter is present (Mesa
// lavapipe on the dev machine: VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.json). A 4-layer
// Llama with the 1B model's attention layout (GQA 4:1), LoRA r 4 on all projections, 2 × 64
// tokens, gradient checkpointing on.
import * as tf from '@tensorflow/tfjs-core';
import { type BenchRow, type BenchSuite, ratioRow } from '../../../tools/bench/harness';
import { injectLora } from '../../lora/src/index';
import { randomLlama } from '../src/_test-fixtures';
import { setFusedElementwise } from '../src/_webgpu-fused';
import { lossGradientTensors } from '../src/checkpointing';
import { initBackend, parseLlamaConfig } from '../src/index';

const LAYERS = 4;

const suite: BenchSuite = {
  title:
    'WebGPU dispatches per training step and forward: fused elementwise programs vs tfjs chains (Mesa lavapipe: VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.json)',
  async run(): Promise<BenchRow[]> {
    try {
      await initBackend('webgpu');
    } catch (error) {
      return [
        {
          name: 'dispatches (skipped)',
          value: Number.NaN,
          unit: '',
          note: `no WebGPU adapter: ${String(error).slice(0, 120)}`,
        },
      ];
    }
    const config = parseLlamaConfig({
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      vocab_size: 256,
      hidden_size: 128,
      intermediate_size: 256,
      num_hidden_layers: LAYERS,
      num_attention_heads: 8,
      num_key_value_heads: 2,
      max_position_embeddings: 256,
      tie_word_embeddings: true,
      eos_token_id: 2,
    });
    const model = randomLlama(config, { seed: 1, scale: 0.2 });
    injectLora(model, { r: 4, alpha: 4 });
    const backend = tf.backend() as unknown as { runWebGPUProgram: (...a: unknown[]) => unknown };
    const original = backend.runWebGPUProgram.bind(backend);
    let count = 0;
    backend.runWebGPUProgram = (...a: unknown[]) => {
      count++;
      return original(...a);
    };
    const [batchSize, seqLength] = [2, 64];
    const ids = Array.from({ length: batchSize * seqLength }, (_, i) => (i * 7 + 3) % 256);
    const batch = {
      batchSize,
      seqLength,
      inputIds: ids,
      labels: ids,
      attentionMask: ids.map(() => 1),
    };
    const counts = async (fused: boolean) => {
      setFusedElementwise(fused);
      const warm = lossGradientTensors(model, batch, { gradientCheckpointing: true });
      tf.dispose([warm.lossTensor, ...Object.values(warm.grads)]);
      count = 0;
      const step = lossGradientTensors(model, batch, { gradientCheckpointing: true });
      await step.lossTensor.data();
      const training = count;
      tf.dispose([step.lossTensor, ...Object.values(step.grads)]);
      count = 0;
      tf.dispose(model.forward([ids.slice(0, seqLength)]));
      return { training, forward: count };
    };
    try {
      const fused = await counts(true);
      const chains = await counts(false);
      const perLayer = (n: number) => (n / LAYERS).toFixed(0);
      return [
        ratioRow(
          `dispatches per checkpointed LoRA training step, ${LAYERS} layers`,
          fused.training,
          'dispatches',
          { name: 'tfjs chains', value: chains.training },
          {
            note: `lower is better; ${perLayer(fused.training)} vs ${perLayer(chains.training)} per layer (head and loss included)`,
          },
        ),
        ratioRow(
          `dispatches per forward, ${LAYERS} layers`,
          fused.forward,
          'dispatches',
          { name: 'tfjs chains', value: chains.forward },
          { note: 'lower is better' },
        ),
      ];
    } finally {
      setFusedElementwise(true);
      backend.runWebGPUProgram = original;
      model.dispose();
    }
  },
};

export default suite;
