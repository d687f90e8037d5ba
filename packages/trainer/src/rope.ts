import type { LlamaConfig } from './config';

const f32 = Math.fround;

/**
 * Rotary inverse frequencies as transformers computes them (float32 arithmetic, step by step),
 * including the llama3 frequency scaling of Llama 3.1/3.2.
 *
 * @example
 * ```ts
 * const inv = computeInverseFrequencies(config); // Float32Array of headDim / 2
 * inv[0]; // 1
 * ```
 */
export function computeInverseFrequencies(
  config: Pick<LlamaConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>,
): Float32Array {
  const dim = config.headDim;
  const inv = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) {
    // 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all in float32.
    const exponent = f32((2 * i) / dim);
    inv[i] = f32(1 / f32(config.ropeTheta ** exponent));
  }
  const scaling = config.ropeScaling;
  if (scaling === null) return inv;
  // _compute_llama3_parameters in modeling_rope_utils.py.
  const lowFreqWavelen = f32(scaling.originalMaxPositionEmbeddings / scaling.lowFreqFactor);
  const highFreqWavelen = f32(scaling.originalMaxPositionEmbeddings / scaling.highFreqFactor);
  const twoPi = 2 * Math.PI;
  for (let i = 0; i < inv.length; i++) {
    const freq = inv[i] as number;
    const wavelen = f32(twoPi / freq);
    const scaled = wavelen > lowFreqWavelen ? f32(freq / scaling.factor) : freq;
    const isMedium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
    if (isMedium) {
      const smooth = f32(
        f32(f32(scaling.originalMaxPositionEmbeddings / wavelen) - scaling.lowFreqFactor) /
          f32(scaling.highFreqFactor - scaling.lowFreqFactor),
      );
      inv[i] = f32(f32(f32(f32(1 - smooth) * scaled) / scaling.factor) + f32(smooth * scaled));
    } else {
      inv[i] = scaled;
    }
  }
  return inv;
}

/**
 * cos and sin tables for the given positions, `[positions.length, headDim]` each, laid out as
 * transformers does (`emb = cat(freqs, freqs)`), angles rounded to float32 as in torch.
 *
 * @example
 * ```ts
 * const { cos, sin } = rotaryTables(computeInverseFrequencies(config), [0, 1, 2]);
 * cos.length; // 3 * config.headDim
 * ```
 */
export function rotaryTables(
  inverseFrequencies: Float32Array,
  positions: ArrayLike<number>,
): { cos: Float32Array; sin: Float32Array } {
  const half = inverseFrequencies.length;
  const dim = half * 2;
  const cos = new Float32Array(positions.length * dim);
  const sin = new Float32Array(positions.length * dim);
  for (let p = 0; p < positions.length; p++) {
    const position = f32(positions[p] as number);
    for (let i = 0; i < half; i++) {
      const angle = f32(position * (inverseFrequencies[i] as number));
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[p * dim + i] = c;
      cos[p * dim + i + half] = c;
      sin[p * dim + i] = s;
      sin[p * dim + i + half] = s;
    }
  }
  return { cos, sin };
}
