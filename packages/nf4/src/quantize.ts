import { MIN_ABSMAX, quantizeAbsmax, reconstructAbsmax } from './_double-quant';
import { bfloat16ToNumber, float16ToNumber, numberToBfloat16, numberToFloat16 } from './_float';
import { BUCKETS_PER_UNIT, type CodeTable, codeOf, codeTable } from './_mapping';
import { checkBlocksize, checkFloatDtype, checkQuantType, describe, shapeSize } from './_validate';
import { FP4_CODE, NF4_CODE } from './codebooks';
import { Nf4Error } from './errors';
import type {
  Arithmetic,
  Dequantize4bitOptions,
  FloatDtype,
  Quantize4bitOptions,
  Quantized4bit,
  QuantState,
  QuantType,
} from './types';

const K = BUCKETS_PER_UNIT;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** The standard 16-entry codebook of a quant type (a fresh copy). */
export function codebookOf(quantType: QuantType): Float32Array {
  return (quantType === 'nf4' ? NF4_CODE : FP4_CODE).slice();
}

let float16Table: Float32Array | undefined;

/** Loads input[start, end) as float32 values into `out` (exact upcast; `outBits` aliases it). */
function loadBlock(
  input: Uint16Array,
  dtype: FloatDtype,
  start: number,
  end: number,
  out: Float32Array,
  outBits: Uint32Array,
): void {
  if (dtype === 'bfloat16') {
    for (let i = start; i < end; i++) outBits[i - start] = (input[i] as number) << 16;
    return;
  }
  if (!float16Table) {
    float16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) float16Table[h] = float16ToNumber(h);
  }
  const table = float16Table;
  for (let i = start; i < end; i++) out[i - start] = table[input[i] as number] as number;
}

function throwNonFinite(values: Float32Array, start: number, offset: number): never {
  let i = start;
  while (Number.isFinite(values[i] as number)) i++;
  throw new Nf4Error(
    'NON_FINITE',
    `non-finite input: expected finite values, got ${values[i]} at flat index ${offset + i - start}. ` +
      'bitsandbytes would spread NaN/Infinity through the whole block; clean the tensor first.',
  );
}

/**
 * Quantizes one block of `count` values starting at values[start] and writes its codes into
 * packed from byte `flatStart / 2` (blocks start at an even flat index). Returns the absmax
 * to store.
 */
function quantizeBlock(
  values: Float32Array,
  start: number,
  count: number,
  full: boolean,
  flatStart: number,
  table: CodeTable,
  arithmetic: Arithmetic,
  packed: Uint8Array,
): number {
  const end = start + count;
  // Math.max propagates NaN, and ±Infinity survives: one check after the loop finds both.
  let m = 0;
  for (let i = start; i < end; i++) m = Math.max(m, Math.abs(values[i] as number));
  if (!(m < Number.POSITIVE_INFINITY)) throwNonFinite(values, start, flatStart);

  const threshold = table.threshold;
  const rank = table.rank;
  const pairByte = table.pairByte;
  let out = flatStart >> 1;
  const pairsEnd = start + (count & ~1);

  let inv: number;
  let stored: number;
  if (arithmetic === 'torch') {
    const clamped = Math.max(m, MIN_ABSMAX);
    stored = full ? m : clamped;
    if (!full) {
      // The partial last block divides instead of multiplying by the reciprocal.
      for (let i = start; i < pairsEnd; i += 2) {
        const c0 = codeOf(table, Math.fround((values[i] as number) / clamped));
        const c1 = codeOf(table, Math.fround((values[i + 1] as number) / clamped));
        packed[out++] = (c0 << 4) | c1;
      }
      if (count & 1) {
        const c0 = codeOf(table, Math.fround((values[end - 1] as number) / clamped));
        packed[out] = (c0 << 4) | codeOf(table, 0);
      }
      return stored;
    }
    inv = Math.fround(1 / clamped);
  } else {
    stored = m;
    inv = Math.fround(1 / m); // +Infinity for an all-zero block: 0 · Infinity = NaN → code 0
    if (inv < 2 ** -126) inv = 0; // flush-to-zero
    if (!Number.isFinite(inv)) {
      for (let i = start; i < pairsEnd; i += 2) {
        const c0 = codeOf(table, (values[i] as number) * inv);
        const c1 = codeOf(table, (values[i + 1] as number) * inv);
        packed[out++] = (c0 << 4) | c1;
      }
      if (count & 1) {
        packed[out] =
          (codeOf(table, (values[end - 1] as number) * inv) << 4) | codeOf(table, 0 * inv);
      }
      return stored;
    }
  }

  // Hot loop: p = x · inv is the exact product; the table's thresholds already account for the
  // float32 rounding torch/CUDA apply before comparing (see _mapping.ts).
  if (table.truncatedIndexIsExact) {
    for (let i = start; i < pairsEnd; i += 2) {
      let p0 = (values[i] as number) * inv;
      let p1 = (values[i + 1] as number) * inv;
      p0 = Math.min(1, Math.max(p0, -1));
      p1 = Math.min(1, Math.max(p1, -1));
      const b0 = (p0 * K + K) | 0;
      const b1 = (p1 * K + K) | 0;
      const r0 = (rank[b0] as number) + (p0 > (threshold[b0] as number) ? 1 : 0);
      const r1 = (rank[b1] as number) + (p1 > (threshold[b1] as number) ? 1 : 0);
      packed[out++] = pairByte[(r0 << 4) | r1] as number;
    }
  } else {
    for (let i = start; i < pairsEnd; i += 2) {
      let p0 = (values[i] as number) * inv;
      let p1 = (values[i + 1] as number) * inv;
      p0 = Math.min(1, Math.max(p0, -1));
      p1 = Math.min(1, Math.max(p1, -1));
      const b0 = Math.floor(p0 * K) + K;
      const b1 = Math.floor(p1 * K) + K;
      const r0 = (rank[b0] as number) + (p0 > (threshold[b0] as number) ? 1 : 0);
      const r1 = (rank[b1] as number) + (p1 > (threshold[b1] as number) ? 1 : 0);
      packed[out++] = pairByte[(r0 << 4) | r1] as number;
    }
  }
  if (count & 1) {
    packed[out] = (codeOf(table, (values[end - 1] as number) * inv) << 4) | codeOf(table, 0);
  }
  return stored;
}

/**
 * Quantizes a float tensor to 4-bit NF4/FP4 codes, bit for bit as bitsandbytes'
 * `quantize_4bit` (default pure-PyTorch backend unless `arithmetic: 'cuda'`).
 *
 * Blocks of `blocksize` consecutive elements of the flat row-major vector share one float32
 * absmax; element 2j goes to the high nibble of byte j. NaN or ±Infinity in the input throws
 * (`NON_FINITE`) instead of silently corrupting the block.
 *
 * @example
 * ```ts
 * import { quantize4bit } from '@qlora/nf4';
 * const { packed, state } = quantize4bit(new Float32Array([1, -1, 0, 0.5]));
 * packed; // Uint8Array [0xf0, 0x7c]
 * state.absmax; // Float32Array [1]
 * ```
 */
export function quantize4bit(
  input: Float32Array | Uint16Array,
  options: Quantize4bitOptions = {},
): Quantized4bit {
  const dtype =
    options.dtype === undefined ? 'float32' : checkFloatDtype(options.dtype, 'input dtype');
  if (input instanceof Float32Array) {
    if (dtype !== 'float32') {
      throw new Nf4Error(
        'INVALID_INPUT',
        `input array: expected a Uint16Array of bit patterns for dtype '${dtype}', got a Float32Array`,
      );
    }
  } else if (input instanceof Uint16Array) {
    if (dtype === 'float32') {
      throw new Nf4Error(
        'INVALID_INPUT',
        "input dtype: expected 'bfloat16' or 'float16' for a Uint16Array, got 'float32'. " +
          "Pass { dtype: 'bfloat16' } or { dtype: 'float16' }.",
      );
    }
  } else {
    throw new Nf4Error(
      'INVALID_INPUT',
      `input: expected a Float32Array or a Uint16Array of bf16/f16 bits, got ${describe(input)}`,
    );
  }
  const n = input.length;
  const shape = options.shape === undefined ? [n] : Array.from(options.shape);
  const size = shapeSize(shape, 'INVALID_SHAPE');
  if (size !== n) {
    throw new Nf4Error(
      'INVALID_SHAPE',
      `shape does not match the input: expected ${describe(shape)} to hold ${size} elements, got ${n}`,
    );
  }
  if (n === 0) {
    throw new Nf4Error('INVALID_SHAPE', 'empty input: expected at least 1 element, got 0');
  }
  const blocksize = checkBlocksize(options.blocksize ?? 64);
  const quantType = checkQuantType(options.quantType ?? 'nf4');
  const arithmetic = options.arithmetic ?? 'torch';
  if (arithmetic !== 'torch' && arithmetic !== 'cuda') {
    throw new Nf4Error(
      'INVALID_INPUT',
      `arithmetic: expected 'torch' or 'cuda', got ${describe(arithmetic)}`,
    );
  }
  const table = codeTable(quantType, arithmetic);
  const blocks = Math.ceil(n / blocksize);
  const absmax = new Float32Array(blocks);
  const packed = new Uint8Array(Math.ceil(n / 2));
  const scratch = input instanceof Float32Array ? undefined : new Float32Array(blocksize);
  const scratchBits = scratch ? new Uint32Array(scratch.buffer) : undefined;

  for (let b = 0; b < blocks; b++) {
    const start = b * blocksize;
    const count = Math.min(blocksize, n - start);
    const full = count === blocksize;
    if (scratch) {
      loadBlock(
        input as Uint16Array,
        dtype,
        start,
        start + count,
        scratch,
        scratchBits as Uint32Array,
      );
      absmax[b] = quantizeBlock(scratch, 0, count, full, start, table, arithmetic, packed);
    } else {
      absmax[b] = quantizeBlock(
        input as Float32Array,
        start,
        count,
        full,
        start,
        table,
        arithmetic,
        packed,
      );
    }
  }

  const base = { quantType, blocksize, shape, dtype, code: codebookOf(quantType) };
  if (options.doubleQuant) {
    const { codes, nested } = quantizeAbsmax(absmax);
    return { packed, state: { ...base, absmax: codes, nested } };
  }
  return { packed, state: { ...base, absmax } };
}

/** Checks a quantized tensor's internal consistency; returns its element count. */
export function checkQuantized(q: Quantized4bit): number {
  if (q === null || typeof q !== 'object' || !(q.packed instanceof Uint8Array) || !q.state) {
    throw new Nf4Error(
      'INVALID_PACKED',
      `quantized tensor: expected { packed: Uint8Array, state: QuantState }, got ${describe(q)}`,
    );
  }
  const { state, packed } = q;
  checkQuantType(state.quantType);
  checkBlocksize(state.blocksize);
  checkFloatDtype(state.dtype, 'state.dtype');
  const n = shapeSize(state.shape, 'INVALID_SHAPE');
  if (n === 0)
    throw new Nf4Error('INVALID_SHAPE', 'empty state.shape: expected at least 1 element, got 0');
  if (packed.length !== Math.ceil(n / 2)) {
    throw new Nf4Error(
      'INVALID_PACKED',
      `packed length: expected ceil(${n} / 2) = ${Math.ceil(n / 2)} bytes for shape ${describe(state.shape)}, got ${packed.length}`,
    );
  }
  const blocks = Math.ceil(n / state.blocksize);
  const absmaxType = state.nested ? Uint8Array : Float32Array;
  if (!(state.absmax instanceof absmaxType) || state.absmax.length !== blocks) {
    throw new Nf4Error(
      'INVALID_PACKED',
      `state.absmax: expected a ${absmaxType.name}(${blocks}) (${n} elements in blocks of ${state.blocksize}` +
        `${state.nested ? ', double-quantized' : ''}), got ${describe(state.absmax)}`,
    );
  }
  if (state.nested) {
    const nested = state.nested;
    const nestedBlocks = Math.ceil(blocks / nested.blocksize);
    if (
      !Number.isSafeInteger(nested.blocksize) ||
      nested.blocksize <= 0 ||
      !(nested.absmax instanceof Float32Array) ||
      nested.absmax.length !== nestedBlocks ||
      !(nested.code instanceof Float32Array) ||
      nested.code.length !== 256 ||
      !Number.isFinite(nested.offset)
    ) {
      throw new Nf4Error(
        'INVALID_PACKED',
        `state.nested: expected { offset: finite, absmax: Float32Array(${nestedBlocks}), code: Float32Array(256), blocksize }, ` +
          `got absmax ${describe(nested.absmax)}, code ${describe(nested.code)}, offset ${nested.offset}`,
      );
    }
  }
  return n;
}

/**
 * The float32 absmax of every block: `state.absmax` itself, or reconstructed from the double
 * quantization codes with bitsandbytes' two float32 roundings.
 *
 * @example
 * ```ts
 * import { blockAbsmax, quantize4bit } from '@qlora/nf4';
 * const q = quantize4bit(new Float32Array(1024).fill(0.5), { doubleQuant: true });
 * blockAbsmax(q.state)[0]; // 0.5 (approximately: the 8-bit code is lossy)
 * ```
 */
export function blockAbsmax(state: QuantState): Float32Array {
  if (state.nested) {
    if (!(state.absmax instanceof Uint8Array)) {
      throw new Nf4Error(
        'INVALID_PACKED',
        `state.absmax: expected uint8 codes with nested state, got ${describe(state.absmax)}`,
      );
    }
    return reconstructAbsmax(state.absmax, state.nested);
  }
  if (!(state.absmax instanceof Float32Array)) {
    throw new Nf4Error(
      'INVALID_PACKED',
      `state.absmax: expected a Float32Array, got ${describe(state.absmax)}`,
    );
  }
  return state.absmax;
}

/**
 * Dequantizes packed 4-bit codes: `fround(code[c] · absmax[block])`, bit for bit as
 * bitsandbytes' `dequantize_4bit` (which uses the standard table of `quantType`, not the stored
 * `code`). Returns float32 by default; `{ dtype: 'bfloat16' | 'float16' }` returns a Uint16Array
 * of bit patterns rounded to nearest even, which is what bitsandbytes returns for a weight of that
 * dtype (`{ dtype: q.state.dtype }` reproduces bitsandbytes' output dtype).
 *
 * @example
 * ```ts
 * import { dequantize4bit, quantize4bit } from '@qlora/nf4';
 * const q = quantize4bit(new Float32Array([1, -1, 0, 0.5]));
 * dequantize4bit(q); // Float32Array [1, -1, 0, 0.44070982933044434]
 * dequantize4bit(q, { dtype: 'bfloat16' }); // Uint16Array [0x3f80, 0xbf80, 0, 0x3ee2]
 * ```
 */
export function dequantize4bit(
  q: Quantized4bit,
  options?: Dequantize4bitOptions<'float32'>,
): Float32Array;
export function dequantize4bit(
  q: Quantized4bit,
  options: Dequantize4bitOptions<'bfloat16' | 'float16'>,
): Uint16Array;
export function dequantize4bit(
  q: Quantized4bit,
  options?: Dequantize4bitOptions,
): Float32Array | Uint16Array;
export function dequantize4bit(
  q: Quantized4bit,
  options: Dequantize4bitOptions = {},
): Float32Array | Uint16Array {
  const n = checkQuantized(q);
  const dtype =
    options.dtype === undefined ? 'float32' : checkFloatDtype(options.dtype, 'output dtype');
  const { state, packed } = q;
  const code = state.quantType === 'nf4' ? NF4_CODE : FP4_CODE;
  const absmax = blockAbsmax(state);
  const blocksize = state.blocksize;

  if (dtype === 'float32') {
    const out = new Float32Array(n);
    multiplyCodes32(packed, absmax, code, n, blocksize, out);
    return out;
  }
  const out = new Uint16Array(n);
  const levels = new Uint16Array(16);
  const toHalf = dtype === 'bfloat16' ? numberToBfloat16 : numberToFloat16;
  const fill = (a: number): void => {
    for (let c = 0; c < 16; c++) levels[c] = toHalf(Math.fround((code[c] as number) * a));
  };
  moveLevelBits16(packed, absmax, n, blocksize, fill, levels, out);
  return out;
}

// Both loops read the packed bytes four at a time when they are 4-byte aligned (a block of 32+
// elements is whole 32-bit words). float32 output multiplies per element (cheaper than a
// per-block table); 16-bit output converts the 16 levels once per block and then moves bits.

function multiplyCodes32(
  packed: Uint8Array,
  absmax: Float32Array,
  code: Float32Array,
  n: number,
  blocksize: number,
  out: Float32Array,
): void {
  // code · absmax is exact in double (two float32 factors); the Float32Array store rounds it
  // once, which is bitsandbytes' float32 multiply.
  const levels = Float64Array.from(code);
  const fullBlocks = Math.floor(n / blocksize);
  const halfBlock = blocksize >> 1;
  let j = 0; // next packed byte
  if (LITTLE_ENDIAN && packed.byteOffset % 4 === 0) {
    const words = new Uint32Array(packed.buffer, packed.byteOffset, packed.length >> 2);
    const wordsPerBlock = blocksize >> 3; // blocksize ≥ 32: whole words per block
    let k = 0;
    let w = 0;
    for (let b = 0; b < fullBlocks; b++) {
      const a = absmax[b] as number;
      const end = w + wordsPerBlock;
      for (; w < end; w++, k += 8) {
        const v = words[w] as number; // byte 0 in the low bits
        out[k] = (levels[(v >>> 4) & 15] as number) * a;
        out[k + 1] = (levels[v & 15] as number) * a;
        out[k + 2] = (levels[(v >>> 12) & 15] as number) * a;
        out[k + 3] = (levels[(v >>> 8) & 15] as number) * a;
        out[k + 4] = (levels[(v >>> 20) & 15] as number) * a;
        out[k + 5] = (levels[(v >>> 16) & 15] as number) * a;
        out[k + 6] = (levels[v >>> 28] as number) * a;
        out[k + 7] = (levels[(v >>> 24) & 15] as number) * a;
      }
    }
    j = fullBlocks * halfBlock;
  } else {
    for (let b = 0; b < fullBlocks; b++) {
      const a = absmax[b] as number;
      const end = j + halfBlock;
      for (; j < end; j++) {
        const v = packed[j] as number;
        out[2 * j] = (levels[v >> 4] as number) * a;
        out[2 * j + 1] = (levels[v & 15] as number) * a;
      }
    }
  }
  if (fullBlocks * blocksize === n) return;
  const a = absmax[fullBlocks] as number; // the partial last block
  const wholeBytes = n >> 1;
  for (; j < wholeBytes; j++) {
    const v = packed[j] as number;
    out[2 * j] = (levels[v >> 4] as number) * a;
    out[2 * j + 1] = (levels[v & 15] as number) * a;
  }
  if (n & 1) out[n - 1] = (levels[(packed[wholeBytes] as number) >> 4] as number) * a;
}

function moveLevelBits16(
  packed: Uint8Array,
  absmax: Float32Array,
  n: number,
  blocksize: number,
  fill: (a: number) => void,
  levelBits: Uint16Array,
  outBits: Uint16Array,
): void {
  const fullBlocks = Math.floor(n / blocksize);
  const halfBlock = blocksize >> 1;
  let j = 0;
  if (LITTLE_ENDIAN && packed.byteOffset % 4 === 0) {
    const words = new Uint32Array(packed.buffer, packed.byteOffset, packed.length >> 2);
    const wordsPerBlock = blocksize >> 3;
    let k = 0;
    let w = 0;
    for (let b = 0; b < fullBlocks; b++) {
      fill(absmax[b] as number);
      const end = w + wordsPerBlock;
      for (; w < end; w++, k += 8) {
        const v = words[w] as number;
        outBits[k] = levelBits[(v >>> 4) & 15] as number;
        outBits[k + 1] = levelBits[v & 15] as number;
        outBits[k + 2] = levelBits[(v >>> 12) & 15] as number;
        outBits[k + 3] = levelBits[(v >>> 8) & 15] as number;
        outBits[k + 4] = levelBits[(v >>> 20) & 15] as number;
        outBits[k + 5] = levelBits[(v >>> 16) & 15] as number;
        outBits[k + 6] = levelBits[v >>> 28] as number;
        outBits[k + 7] = levelBits[(v >>> 24) & 15] as number;
      }
    }
    j = fullBlocks * halfBlock;
  } else {
    for (let b = 0; b < fullBlocks; b++) {
      fill(absmax[b] as number);
      const end = j + halfBlock;
      for (; j < end; j++) {
        const v = packed[j] as number;
        outBits[2 * j] = levelBits[v >> 4] as number;
        outBits[2 * j + 1] = levelBits[v & 15] as number;
      }
    }
  }
  if (fullBlocks * blocksize === n) return;
  fill(absmax[fullBlocks] as number);
  const wholeBytes = n >> 1;
  for (; j < wholeBytes; j++) {
    const v = packed[j] as number;
    outBits[2 * j] = levelBits[v >> 4] as number;
    outBits[2 * j + 1] = levelBits[v & 15] as number;
  }
  if (n & 1) outBits[n - 1] = levelBits[(packed[wholeBytes] as number) >> 4] as number;
}

/** float32 value of one bf16/f16 bit pattern (internal helper for metrics). */
export function halfToNumber(bits: number, dtype: 'bfloat16' | 'float16'): number {
  return dtype === 'bfloat16' ? bfloat16ToNumber(bits) : float16ToNumber(bits);
}
