// Input checks shared by quantize, dequantize and the checkpoint reader. Each failure names what
// was expected and what came, so a caller can fix the call without reading this code.

import { Nf4Error } from './errors';
import type { FloatDtype, QuantType } from './types';

export const BLOCKSIZES: readonly number[] = [32, 64, 128, 256, 512, 1024, 2048, 4096];
export const FLOAT_DTYPES: readonly FloatDtype[] = ['float32', 'bfloat16', 'float16'];
/** Largest dimension count we accept in a shape (torch allows 64; weights have 1–4). */
export const MAX_RANK = 64;

export function describe(value: unknown): string {
  if (typeof value === 'string') {
    const s = value.length > 40 ? `${value.slice(0, 40)}…` : value;
    return JSON.stringify(s);
  }
  if (Array.isArray(value)) {
    const head = value.slice(0, 8).map((v) => (typeof v === 'number' ? String(v) : typeof v));
    return `[${head.join(', ')}${value.length > 8 ? ', …' : ''}]`;
  }
  if (value === null) return 'null';
  if (ArrayBuffer.isView(value))
    return `${value.constructor.name}(${(value as Uint8Array).length})`;
  if (typeof value === 'object') return 'an object';
  return String(value);
}

export function checkBlocksize(blocksize: unknown): number {
  if (typeof blocksize !== 'number' || !BLOCKSIZES.includes(blocksize)) {
    throw new Nf4Error(
      'INVALID_BLOCKSIZE',
      `unsupported blocksize: expected one of ${BLOCKSIZES.join(', ')}, got ${describe(blocksize)}. ` +
        'bitsandbytes and QLoRA use 64.',
    );
  }
  return blocksize;
}

export function checkQuantType(quantType: unknown): QuantType {
  if (quantType !== 'nf4' && quantType !== 'fp4') {
    throw new Nf4Error(
      'INVALID_QUANT_TYPE',
      `unknown quant type: expected 'nf4' or 'fp4', got ${describe(quantType)}`,
    );
  }
  return quantType;
}

export function checkFloatDtype(dtype: unknown, what: string): FloatDtype {
  if (typeof dtype !== 'string' || !(FLOAT_DTYPES as readonly string[]).includes(dtype)) {
    throw new Nf4Error(
      'INVALID_INPUT',
      `${what}: expected 'float32', 'bfloat16' or 'float16', got ${describe(dtype)}`,
    );
  }
  return dtype as FloatDtype;
}

/** Validates a shape and returns its element count (a safe integer). */
export function shapeSize(shape: unknown, code: 'INVALID_SHAPE' | 'INVALID_CHECKPOINT'): number {
  if (!Array.isArray(shape) || shape.length > MAX_RANK) {
    throw new Nf4Error(
      code,
      `invalid shape: expected an array of at most ${MAX_RANK} non-negative integers, got ${describe(shape)}`,
    );
  }
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new Nf4Error(
        code,
        `invalid shape: expected non-negative integer dimensions, got ${describe(shape)}`,
      );
    }
    n *= d;
    if (!Number.isSafeInteger(n)) {
      throw new Nf4Error(
        code,
        `invalid shape: expected at most 2^53 - 1 elements, got ${describe(shape)}`,
      );
    }
  }
  return n;
}
