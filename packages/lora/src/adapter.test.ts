import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePath } from '@qlora/test-utils';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOY_SHAPES, ToyModel, useCpu } from './_test-helpers';
import { adapterTensors, formatAdapterConfig, parseAdapterConfig } from './adapter';
import { LoraError } from './errors';
import {
  injectLora,
  isTargetModule,
  loraLayers,
  removeLora,
  setLoraTraining,
  trainableVariables,
} from './inject';
import { mergeAdapter, mergeAndUnload } from './merge';
import { Nf4Linear } from './nf4-linear';
import { loadAdapter, saveAdapter } from './node';
import { quantizeProjections } from './quantize';

beforeAll(useCpu);
const temp = mkdtempSync(join(tmpdir(), 'lora-adapter-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

const peftConfig = () =>
  JSON.parse(readFileSync(fixturePath('lora', 'adapter-plain', 'adapter_config.json'), 'utf8'));

describe('adapter_config.json', () => {
  it('accepts PEFT 0.21 files (list and regex target_modules)', () => {
    expect(parseAdapterConfig(peftConfig()).target_modules).toHaveLength(7);
    const rs = JSON.parse(
      readFileSync(fixturePath('lora', 'adapter-rslora', 'adapter_config.json'), 'utf8'),
    );
    const parsed = parseAdapterConfig(rs);
    expect(parsed.use_rslora).toBe(true);
    expect(typeof parsed.target_modules).toBe('string');
    // The default-initialised config (r 16, alpha 16) also parses.
    const def = JSON.parse(
      readFileSync(fixturePath('lora', 'adapter-default', 'adapter_config.json'), 'utf8'),
    );
    expect(parseAdapterConfig(def).r).toBe(16);
  });

  it('round-trips PEFT formatting byte for byte', () => {
    const text = readFileSync(fixturePath('lora', 'adapter-plain', 'adapter_config.json'), 'utf8');
    expect(formatAdapterConfig(JSON.parse(text))).toBe(text);
  });

  const bad: [string, Record<string, unknown>, RegExp][] = [
    [
      'DoRA',
      { use_dora: true },
      /field use_dora: .*got true\. Hint: DoRA adapters are not supported/,
    ],
    ['fan_in_fan_out', { fan_in_fan_out: true }, /field fan_in_fan_out: .*Conv1D/],
    ['bias', { bias: 'all' }, /field bias: .*got "all"/],
    ['modules_to_save', { modules_to_save: ['lm_head'] }, /field modules_to_save: .*lm_head/],
    ['r', { r: 0 }, /field r: .*got 0/],
    ['target_modules', { target_modules: null }, /field target_modules: .*got null/],
    ['peft_type', { peft_type: 'IA3' }, /field peft_type: .*got "IA3"/],
    ['rank_pattern', { rank_pattern: { q_proj: 8 } }, /field rank_pattern: /],
  ];
  for (const [title, patch, message] of bad) {
    it(`rejects ${title} with a clear LoraError`, () => {
      const attempt = () => parseAdapterConfig({ ...peftConfig(), ...patch });
      expect(attempt).toThrow(LoraError);
      expect(attempt).toThrow(message);
    });
  }
});

describe('injectLora on a model exposing mapProjections', () => {
  it('wraps all seven projections by default and counts parameters as PEFT', () => {
    const model = new ToyModel(TOY_SHAPES, 2);
    const report = injectLora(model, { r: 4, alpha: 8 });
    const perLayer = Object.values(TOY_SHAPES).reduce((s, [o, i]) => s + 4 * (o + i), 0);
    const base = Object.values(TOY_SHAPES).reduce((s, [o, i]) => s + o * i, 0) * 2 + 8;
    expect(report.trainable).toBe(2 * perLayer);
    expect(report.total).toBe(base + 2 * perLayer);
    expect(report.modules).toHaveLength(14);
    expect(trainableVariables(model)).toHaveLength(28);
    expect(() => injectLora(model)).toThrow(/expected a model without an adapter/);
    model.dispose();
  });

  it('matches targets like PEFT: names, suffixes, or a full-match regex', () => {
    expect(isTargetModule('model.layers.0.self_attn.q_proj', ['q_proj'])).toBe(true);
    expect(isTargetModule('model.layers.0.self_attn.q_proj', ['self_attn.q_proj'])).toBe(true);
    expect(isTargetModule('model.layers.0.self_attn.q_proj', ['proj'])).toBe(false);
    expect(isTargetModule('model.layers.0.self_attn.q_proj', 'q_proj')).toBe(false);
    expect(isTargetModule('model.layers.0.self_attn.q_proj', '.*\\.q_proj')).toBe(true);
    const model = new ToyModel(TOY_SHAPES, 1);
    expect(() => injectLora(model, { targetModules: ['lm_head'] })).toThrow(
      /not found in the base model/,
    );
    expect(() => injectLora(model, { targetModules: '(' })).toThrow(/valid regular expression/);
    model.dispose();
  });

  it('trains only A and B; a step changes the output; dropout toggles', () => {
    const model = new ToyModel(TOY_SHAPES, 1);
    injectLora(model, { r: 2, alpha: 4, dropout: 0.2 });
    const x = tf.tensor2d(new Float32Array(3 * 16).fill(0.5), [3, 16]);
    const before = (model.forward(x).dataSync() as Float32Array)[0] as number;
    setLoraTraining(model, true);
    const opt = tf.train.sgd(0.1);
    opt.minimize(() => model.forward(x) as tf.Scalar, false, trainableVariables(model));
    setLoraTraining(model, false);
    expect(loraLayers(model).every((l) => !l.training)).toBe(true);
    const after = (model.forward(x).dataSync() as Float32Array)[0] as number;
    expect(after).not.toBe(before);
    removeLora(model);
    expect((model.forward(x).dataSync() as Float32Array)[0]).toBeCloseTo(before, 4);
    opt.dispose();
    x.dispose();
    model.dispose();
  });
});

describe('save, load, merge, quantize on the toy model', () => {
  it('saveAdapter/loadAdapter round-trip with PEFT keys', async () => {
    const model = new ToyModel(TOY_SHAPES, 2);
    injectLora(model, {
      r: 3,
      alpha: 6,
      initLoraWeights: false,
      seed: 8,
      targetModules: ['q_proj', 'down_proj'],
    });
    await saveAdapter(model, join(temp, 'a'));
    const keys = Object.keys(adapterTensors(model));
    expect(keys[0]).toBe('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
    const other = new ToyModel(TOY_SHAPES, 2);
    const { parameters } = await loadAdapter(other, join(temp, 'a'));
    expect(parameters.modules).toEqual(loraLayers(model).map((l) => l.name));
    const x = tf.ones([2, 16]) as tf.Tensor2D;
    expect(other.forward(x).dataSync()[0]).toBe(model.forward(x).dataSync()[0]);
    // A missing tensor is a clear error and leaves no adapter behind.
    writeFileSync(
      join(temp, 'a', 'adapter_config.json'),
      JSON.stringify({ ...peftConfig(), r: 3 }),
    );
    const third = new ToyModel(TOY_SHAPES, 2);
    await expect(loadAdapter(third, join(temp, 'a'))).rejects.toThrow(
      /missing adapter tensor: expected base_model\.model\.model\.layers\.0\.self_attn\.k_proj\.lora_A\.weight/,
    );
    expect(loraLayers(third)).toHaveLength(0);
    await expect(loadAdapter(third, join(temp, 'nope'))).rejects.toThrow(
      /cannot read adapter file/,
    );
    for (const m of [model, other, third]) m.dispose();
    x.dispose();
  });

  it('quantizes projections to NF4 (dense extras stay) and merges into dense with warnings', () => {
    const model = new ToyModel(TOY_SHAPES, 1);
    const report = quantizeProjections(model);
    expect(report).toEqual({
      quantized: 7,
      parameters: Object.values(TOY_SHAPES).reduce((s, [o, i]) => s + o * i, 0),
    });
    expect(Object.values(model.layers[0] ?? {}).every((l) => l instanceof Nf4Linear)).toBe(true);
    injectLora(model, { r: 2, alpha: 2, initLoraWeights: false });
    const x = tf.ones([2, 16]) as tf.Tensor2D;
    const y = model.forward(x).dataSync()[0] as number;
    const { warnings } = mergeAndUnload(model);
    expect(warnings).toHaveLength(7);
    expect(Object.values(model.layers[0] ?? {}).some((l) => l instanceof Nf4Linear)).toBe(false);
    expect(model.forward(x).dataSync()[0]).toBeCloseTo(y, 3);
    expect(() => mergeAdapter(model)).toThrow(/expected a model with LoRA layers/);
    x.dispose();
    model.dispose();
  });
});
