import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeSafetensors } from '@qlora/safetensors/node';
import { fixturePath } from '@qlora/test-utils';
import { describe, expect, it } from 'vitest';
import { qlora, useTempDir, writePaperResults } from './_test-helpers';

const dir = useTempDir();

describe('qlora inspect', () => {
  it('a bitsandbytes 4-bit safetensors file: header, dtypes and the quant_state summary', async () => {
    const path = fixturePath('nf4', 'linear4bit.safetensors');
    const { status, stdout } = await qlora(['inspect', path, '--json']);
    expect(status).toBe(0);
    const s = JSON.parse(stdout);
    expect(s.kind).toBe('safetensors');
    expect(s.metadata).toEqual({ made_by: 'tools/reference/nf4_bnb.py' });
    expect(s.bnb4bit).toMatchObject({
      weights: 3,
      quantTypes: { nf4: 2, fp4: 1 },
      blocksizes: [64, 128],
      doubleQuant: false,
    });
    // q_proj 64×96, v_proj 48×80, o_proj 40×64 (from the blobs), + biases 64 + 40 + the unquantized sources.
    expect(s.bnb4bit.parameters).toBe(64 * 96 + 48 * 80 + 40 * 64);
    expect(s.tensorCount).toBe(s.tensors.length);
    const human = await qlora(['inspect', path]);
    expect(human.stdout).toContain('bitsandbytes 4-bit: 3 weights');
  });

  it('a Hugging Face model folder: config summary and weights', async () => {
    const { status, stdout } = await qlora(['inspect', fixturePath('trainer', 'llama3-gqa-tied')]);
    expect(status).toBe(0);
    expect(stdout).toMatch(/^model .*llama3-gqa-tied\n {2}LlamaForCausalLM \(llama\)\n/);
    expect(stdout).toContain('num_hidden_layers=2');
    expect(stdout).toContain('warning: no tokenizer.json');
    const json = JSON.parse(
      (await qlora(['inspect', fixturePath('trainer', 'llama3-gqa-tied'), '--json'])).stdout,
    );
    const sum = json.weights.tensors.reduce(
      (a: number, t: { parameters: number }) => a + t.parameters,
      0,
    );
    expect(json.weights.parameters).toBe(sum);
  });

  it('a quantized model folder: quantization_config and 4-bit parameters counted by original shape', async () => {
    const model = fixturePath('trainer', 'llama3-gqa-tied');
    const out = join(dir, 'nf4');
    expect((await qlora(['quantize', model, '--out', out, '--double-quant'])).status).toBe(0);
    const before = JSON.parse((await qlora(['inspect', model, '--json'])).stdout);
    const after = JSON.parse((await qlora(['inspect', out, '--json'])).stdout);
    expect(after.quantizationConfig.bnb_4bit_quant_type).toBe('nf4');
    expect(after.weights.bnb4bit).toMatchObject({
      weights: 14,
      doubleQuant: true,
      blocksizes: [64],
    });
    expect(after.weights.parameters).toBe(before.weights.parameters);
  });

  it('a PEFT adapter folder: r, alpha, targets, trainable parameters', async () => {
    const adapter = join(dir, 'adapter');
    mkdirSync(adapter);
    writeFileSync(
      join(adapter, 'adapter_config.json'),
      JSON.stringify({
        peft_type: 'LORA',
        r: 4,
        lora_alpha: 8,
        lora_dropout: 0,
        target_modules: ['q_proj', 'v_proj'],
        base_model_name_or_path: 'tiny',
        use_rslora: false,
      }),
    );
    const t = (shape: number[]) => ({
      dtype: 'F32' as const,
      shape,
      data: new Float32Array(shape[0]! * shape[1]!),
    });
    await writeSafetensors(join(adapter, 'adapter_model.safetensors'), {
      'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': t([4, 64]),
      'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight': t([64, 4]),
      'base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight': t([4, 64]),
      'base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight': t([32, 4]),
    });
    const json = JSON.parse((await qlora(['inspect', adapter, '--json'])).stdout);
    expect(json).toMatchObject({
      kind: 'adapter',
      r: 4,
      alpha: 8,
      scaling: 2,
      trainableParameters: 4 * 64 * 3 + 32 * 4,
    });
    expect(json.tensorsByModule).toEqual({ q_proj: 512, v_proj: 384 });
    const human = (await qlora(['inspect', adapter])).stdout;
    expect(human).toContain('LORA r=4 alpha=8 (scaling 2)');
    expect(human).toContain('targets: q_proj, v_proj');
  });

  it('a run folder: files by kind, checkpoints, results', async () => {
    const run = join(dir, 'run');
    mkdirSync(join(run, 'base'), { recursive: true });
    mkdirSync(join(run, 'checkpoint-20'), { recursive: true });
    writePaperResults(join(run, 'base'));
    writeFileSync(
      join(run, 'base', 'results_2026-05-25T05-58-49.json'),
      JSON.stringify({ results: { gsm8k: { 'acc,none': 0.5 } } }),
    );
    writeFileSync(join(run, 'train-log.jsonl'), '{"step":1,"loss":2}\n{"step":2,"loss":1.5}\n');
    const json = JSON.parse((await qlora(['inspect', run, '--json'])).stdout);
    expect(json.kind).toBe('directory');
    const byPath = Object.fromEntries(
      json.entries.map((e: { path: string; kind: string; detail?: string }) => [e.path, e]),
    );
    expect(byPath['checkpoint-20/']).toMatchObject({ kind: 'checkpoint', detail: 'step 20' });
    expect(byPath['base/results_2026-05-25T05-58-49.json']).toMatchObject({
      kind: 'lm-eval results',
    });
    expect(byPath['train-log.jsonl']).toMatchObject({ kind: 'jsonl', detail: '2 lines' });
  });

  it('refuses pickle files and missing paths with exit 3', async () => {
    writeFileSync(join(dir, 'pytorch_model.bin'), 'x');
    const pickle = await qlora(['inspect', join(dir, 'pytorch_model.bin')]);
    expect(pickle.status).toBe(3);
    expect(pickle.stderr).toContain('safetensors');
    expect((await qlora(['inspect', join(dir, 'nope')])).status).toBe(3);
    writeFileSync(join(dir, 'broken.safetensors'), new Uint8Array([1, 2, 3]));
    const broken = await qlora(['inspect', join(dir, 'broken.safetensors')]);
    expect(broken.status).toBe(3);
    expect(broken.stderr).toMatch(/^qlora: error: \[@qlora\/safetensors\]/);
  });
});
