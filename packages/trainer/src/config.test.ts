import { readFileSync } from 'node:fs';
import { fixturePath } from '@qlora/test-utils';
import { describe, expect, it } from 'vitest';
import { LLAMA_32_1B } from './_test-fixtures';
import { parseLlamaConfig } from './config';
import { computeInverseFrequencies } from './rope';

describe('parseLlamaConfig', () => {
  it('reads a transformers 4 Llama 3.2 config (rope_theta + rope_scaling)', () => {
    const config = parseLlamaConfig(LLAMA_32_1B);
    expect(config).toMatchObject({
      numKeyValueHeads: 8,
      headDim: 64,
      ropeTheta: 500000,
      tieWordEmbeddings: true,
      bosTokenId: 128000,
      eosTokenIds: [128001, 128008, 128009],
    });
    expect(config.ropeScaling).toEqual({
      ropeType: 'llama3',
      factor: 32,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    });
  });

  it('gives the llama3 frequency bands of Llama-3.2-1B (spec §3.3)', () => {
    const inv = computeInverseFrequencies(parseLlamaConfig(LLAMA_32_1B));
    expect(inv[14]).toBeCloseTo(500000 ** (-28 / 64), 9);
    expect(inv[15]).toBeCloseTo(1.290548e-3, 8);
    expect(inv[18]).toBeCloseTo(1.946164e-5, 10);
  });

  it('reads the rope_parameters that transformers 5.17 writes', () => {
    const json = JSON.parse(
      readFileSync(fixturePath('trainer', 'llama3-gqa-tied', 'config.json'), 'utf8'),
    );
    expect(json.rope_parameters.rope_type).toBe('llama3');
    const config = parseLlamaConfig(json);
    expect(config.ropeScaling?.originalMaxPositionEmbeddings).toBe(64);
    expect(config.ropeTheta).toBe(10000);
  });

  it('accepts the old "type" key and TinyLlama defaults', () => {
    const config = parseLlamaConfig({
      ...LLAMA_32_1B,
      head_dim: undefined,
      num_key_value_heads: undefined,
      rope_scaling: { ...LLAMA_32_1B.rope_scaling, rope_type: undefined, type: 'llama3' },
    });
    expect(config.ropeScaling?.ropeType).toBe('llama3');
    expect(config.numKeyValueHeads).toBe(32);
    expect(config.headDim).toBe(64);
    expect(parseLlamaConfig({ ...LLAMA_32_1B, rope_scaling: null }).ropeScaling).toBeNull();
  });

  it('refuses other architectures and rope types clearly', () => {
    expect(() =>
      parseLlamaConfig({
        ...LLAMA_32_1B,
        model_type: 'mistral',
        architectures: ['MistralForCausalLM'],
      }),
    ).toThrow(/unsupported architecture: expected model_type "llama".*MistralForCausalLM/);
    expect(() =>
      parseLlamaConfig({ ...LLAMA_32_1B, rope_scaling: { type: 'yarn', factor: 4 } }),
    ).toThrow(/unsupported rope type.*yarn/);
    expect(() => parseLlamaConfig({ ...LLAMA_32_1B, hidden_size: 'big' })).toThrow(
      /invalid config.json.*hidden_size/s,
    );
  });
});
