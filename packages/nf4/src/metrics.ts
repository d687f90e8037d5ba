import { checkFloatDtype } from './_validate';
import { Nf4Error } from './errors';
import { checkQuantized, dequantize4bit, halfToNumber } from './quantize';
import type { FloatDtype, QuantizationError, Quantized4bit, QuantState } from './types';

/**
 * Compares a tensor with its 4-bit reconstruction (dequantized to float32).
 * `input` is what was quantized: a Float32Array, or a Uint16Array of bf16/f16 bits with `dtype`.
 *
 * @example
 * ```ts
 * import { quantizationError, quantize4bit } from '@qlora/nf4';
 * const x = new Float32Array([1, -1, 0, 0.5]);
 * quantizationError(x, quantize4bit(x));
 * // { maxAbs: 0.05929017066955566, meanAbs: 0.014822542667388916,
 * //   rmse: 0.029645085334777832, relative: 0.039526780446370445 }
 * ```
 */
export function quantizationError(
  input: Float32Array | Uint16Array,
  q: Quantized4bit,
  options: { dtype?: FloatDtype } = {},
): QuantizationError {
  const n = checkQuantized(q);
  if (input.length !== n) {
    throw new Nf4Error(
      'INVALID_SHAPE',
      `input length: expected ${n} elements (the quantized shape), got ${input.length}`,
    );
  }
  const dtype =
    options.dtype === undefined
      ? input instanceof Float32Array
        ? 'float32'
        : undefined
      : checkFloatDtype(options.dtype, 'input dtype');
  if (dtype === undefined || (dtype === 'float32') !== input instanceof Float32Array) {
    throw new Nf4Error(
      'INVALID_INPUT',
      `input: expected a Float32Array, or a Uint16Array with dtype 'bfloat16'/'float16', got ${input.constructor.name} with dtype ${dtype}`,
    );
  }
  const recon = dequantize4bit(q);
  let maxAbs = 0;
  let sumAbs = 0;
  let sumSq = 0;
  let normSq = 0;
  for (let i = 0; i < n; i++) {
    const x = dtype === 'float32' ? (input[i] as number) : halfToNumber(input[i] as number, dtype);
    const e = x - (recon[i] as number);
    const a = Math.abs(e);
    if (a > maxAbs) maxAbs = a;
    sumAbs += a;
    sumSq += e * e;
    normSq += x * x;
  }
  return {
    maxAbs,
    meanAbs: sumAbs / n,
    rmse: Math.sqrt(sumSq / n),
    relative: normSq === 0 ? 0 : Math.sqrt(sumSq / normSq),
  };
}

/**
 * Storage cost in bits per parameter: packed codes (4 bits, rounded up to whole bytes), the
 * absmax (32 bits per block, or 8 with double quantization) and, with double quantization, the
 * nested float32 absmax and the float32 offset. Codebooks and the JSON blob are not counted.
 * 4.5 without double quantization and ≈ 4.127 with it at blocksize 64, as in the QLoRA paper.
 *
 * @example
 * ```ts
 * import { bitsPerParameter, quantize4bit } from '@qlora/nf4';
 * const x = new Float32Array(64 * 1024).fill(0.1);
 * bitsPerParameter(quantize4bit(x).state); // 4.5
 * bitsPerParameter(quantize4bit(x, { doubleQuant: true }).state); // 4.12744140625
 * ```
 */
export function bitsPerParameter(state: QuantState): number {
  const n = state.shape.reduce((a, d) => a * d, 1);
  if (!(n > 0))
    throw new Nf4Error('INVALID_SHAPE', `state.shape: expected at least 1 element, got ${n}`);
  let bits = Math.ceil(n / 2) * 8;
  if (state.nested) bits += state.absmax.length * 8 + state.nested.absmax.length * 32 + 32;
  else bits += state.absmax.length * 32;
  return bits / n;
}
