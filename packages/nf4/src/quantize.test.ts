import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import {
  blockAbsmax,
  dequantize4bit,
  FP4_CODE,
  fromBnbTensors,
  NF4_CODE,
  Nf4Error,
  packNibbles,
  type QuantType,
  quantize4bit,
  toBnbTensors,
  unpackNibbles,
} from './index';

// Reproducible runs: one fixed seed for every property in this file.
fc.configureGlobal({ seed: 0x5eed });

/** Half the widest gap between adjacent sorted levels of a codebook. */
function halfWidestGap(code: Float32Array): number {
  const sorted = Array.from(code).sort((a, b) => a - b);
  let widest = 0;
  for (let i = 1; i < sorted.length; i++) {
    widest = Math.max(widest, (sorted[i] as number) - (sorted[i - 1] as number));
  }
  return widest / 2;
}

const quantType = fc.constantFrom<QuantType>('nf4', 'fp4');
const blocksize = fc.constantFrom(32, 64, 128, 256, 512, 1024, 2048, 4096);
// Weight-like values: normal range, with the sign of zero and occasional outliers.
const finite = fc.float({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true });
const values = fc.array(finite, { minLength: 1, maxLength: 700 }).map((a) => Float32Array.from(a));
const adversarial = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        0,
        -0,
        1e-45,
        -1e-45,
        1.1754942e-38,
        -1.1754944e-38,
        3.4028234e38,
        -3.4028234e38,
      ),
      fc.float({ noNaN: true, noDefaultInfinity: true }),
    ),
    { minLength: 1, maxLength: 300 },
  )
  .map((a) => Float32Array.from(a));

describe('round-trip error bound', () => {
  test.prop([values, quantType, blocksize], { numRuns: 200 })(
    '|x - x̂| ≤ half the widest codebook gap × block absmax (absmax ≥ 1e-38)',
    (x, qt, bs) => {
      const q = quantize4bit(x, { quantType: qt, blocksize: bs });
      const xhat = dequantize4bit(q);
      const absmax = blockAbsmax(q.state);
      const half = halfWidestGap(qt === 'nf4' ? NF4_CODE : FP4_CODE);
      for (let i = 0; i < x.length; i++) {
        const a = absmax[Math.floor(i / bs)] as number;
        if (a < 1e-38) continue; // bitsandbytes clamps the divisor there (see the adversarial test)
        // float32 rounding of xn and of code·absmax adds at most a few ulps of absmax.
        const bound = half * a + 4 * a * 2 ** -23;
        expect(Math.abs((x[i] as number) - (xhat[i] as number))).toBeLessThanOrEqual(bound);
      }
    },
  );
});

/** FP4 has two zero codes (0b0000, 0b1000); both dequantize to +0, so compare them as one. */
function canonicalCodes(packed: Uint8Array, qt: QuantType): Uint8Array {
  if (qt === 'nf4') return packed;
  return packed.map((b) => {
    const hi = b >> 4;
    const lo = b & 15;
    return ((hi === 8 ? 0 : hi) << 4) | (lo === 8 ? 0 : lo);
  });
}

describe('quantize(dequantize(q)) returns q', () => {
  // Block absmax below 1e-38 is excluded: bitsandbytes clamps the divisor to 1e-38 there, so such
  // blocks do not normalise to [-1, 1] and cannot round-trip (a property of bitsandbytes itself).
  const normal = values.map((x) => x.map((v) => (Math.abs(v) < 1e-30 ? 0 : v)));
  test.prop([normal, quantType, blocksize, fc.boolean()], { numRuns: 200 })(
    'same codes (FP4 ±0 codes identified) and same absmax',
    (x, qt, bs, dq) => {
      const q = quantize4bit(x, { quantType: qt, blocksize: bs });
      const again = quantize4bit(dequantize4bit(q), {
        quantType: qt,
        blocksize: bs,
        doubleQuant: dq,
      });
      expect(canonicalCodes(again.packed, qt)).toEqual(canonicalCodes(q.packed, qt));
      if (!dq) expect(again.state.absmax).toEqual(q.state.absmax);
    },
  );
});

describe('nibble packing', () => {
  test.prop([fc.array(fc.integer({ min: 0, max: 15 }), { maxLength: 200 })])(
    'unpack(pack(codes)) = codes',
    (codes) => {
      const c = Uint8Array.from(codes);
      expect(unpackNibbles(packNibbles(c), c.length)).toEqual(c);
    },
  );
  test.prop([fc.uint8Array({ minLength: 1, maxLength: 200 })])(
    'pack(unpack(bytes)) = bytes',
    (bytes) => {
      expect(packNibbles(unpackNibbles(bytes))).toEqual(bytes);
    },
  );
  test.prop([values, quantType])('quantize packs even elements in the high nibble', (x, qt) => {
    const q = quantize4bit(x, { quantType: qt });
    const codes = unpackNibbles(q.packed, x.length);
    const xhat = dequantize4bit(q);
    const code = qt === 'nf4' ? NF4_CODE : FP4_CODE;
    const absmax = blockAbsmax(q.state);
    for (let i = 0; i < x.length; i++) {
      expect(xhat[i]).toBe(
        Math.fround((code[codes[i] as number] as number) * (absmax[i >> 6] as number)),
      );
    }
  });
});

describe('checkpoint tensors', () => {
  const shapeAndValues = fc
    .tuple(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }))
    .chain(([r, c]) =>
      fc.tuple(
        fc.constant([r, c]),
        fc.array(fc.float({ min: -10, max: 10, noNaN: true }), {
          minLength: r * c,
          maxLength: r * c,
        }),
      ),
    );
  test.prop([
    shapeAndValues,
    quantType,
    fc.constantFrom(32, 64, 128),
    fc.boolean(),
    fc.constantFrom('', 'model.layers.3.mlp.up_proj', 'x.'),
  ])('fromBnbTensors(toBnbTensors(q)) = q', ([shape, data], qt, bs, dq, prefix) => {
    const q = quantize4bit(Float32Array.from(data), {
      shape,
      quantType: qt,
      blocksize: bs,
      doubleQuant: dq,
    });
    const back = fromBnbTensors(toBnbTensors(q, prefix), prefix);
    expect(back.packed).toEqual(q.packed);
    expect(back.state).toEqual(q.state);
  });
});

describe('adversarial values (±0, subnormals, huge)', () => {
  test.prop(
    [
      adversarial,
      quantType,
      fc.constantFrom(32, 64),
      fc.boolean(),
      fc.constantFrom<'torch' | 'cuda'>('torch', 'cuda'),
    ],
    { numRuns: 300 },
  )(
    'quantize never throws, dequantize stays within ±absmax, codes are valid',
    (x, qt, bs, dq, arithmetic) => {
      let q: ReturnType<typeof quantize4bit>;
      try {
        q = quantize4bit(x, { quantType: qt, blocksize: bs, doubleQuant: dq, arithmetic });
      } catch (error) {
        // Only double quantization of absmax values whose float32 sum overflows is refused.
        expect(dq && error instanceof Nf4Error && error.code === 'NON_FINITE').toBe(true);
        return;
      }
      const xhat = dequantize4bit(q);
      const absmax = blockAbsmax(q.state);
      for (let i = 0; i < x.length; i++) {
        const a = absmax[Math.floor(i / bs)] as number;
        expect(Math.abs(xhat[i] as number)).toBeLessThanOrEqual(Math.abs(a));
        if (!dq) expect(Math.abs(x[i] as number)).toBeLessThanOrEqual(a);
      }
    },
  );
});

describe('hand example (spec §9)', () => {
  it('nf4 and fp4 bytes and values', () => {
    const x = new Float32Array([1, -1, 0, 0.5]);
    const nf4 = quantize4bit(x);
    expect(Array.from(nf4.packed)).toEqual([0xf0, 0x7c]);
    expect(Array.from(dequantize4bit(nf4))).toEqual([1, -1, 0, 0.44070982933044434]);
    const fp4 = quantize4bit(x, { quantType: 'fp4' });
    expect(Array.from(fp4.packed)).toEqual([0x3b, 0x05]);
    expect(Array.from(dequantize4bit(fp4))).toEqual([1, -1, 0, 0.5]);
  });

  it('cuda arithmetic: all-zero block → code 0 (NaN), torch → the zero code', () => {
    const zeros = new Float32Array(64);
    expect(quantize4bit(zeros, { arithmetic: 'cuda' }).packed.every((b) => b === 0)).toBe(true);
    expect(quantize4bit(zeros).packed.every((b) => b === 0x77)).toBe(true);
    expect(Array.from(dequantize4bit(quantize4bit(zeros, { arithmetic: 'cuda' })))).toEqual(
      Array(64).fill(-0),
    );
  });

  it('cuda FP4 uses the decimal literals; torch the exact midpoints', () => {
    // 0.583333 (CUDA literal) is 6 ulps below the true midpoint 0.5833333: a value between them
    // is 0b010 (0.6667) under CUDA and 0b101 (0.5) under torch.
    const x = new Float32Array([1, Math.fround(0.5833332)]);
    expect(quantize4bit(x, { quantType: 'fp4', arithmetic: 'cuda' }).packed[0]).toBe(0x32);
    expect(quantize4bit(x, { quantType: 'fp4' }).packed[0]).toBe(0x35);
  });
});
