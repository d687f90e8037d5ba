import { describe } from './_validate';
import { Nf4Error } from './errors';

/**
 * Packs 4-bit codes two per byte, bitsandbytes' layout: code 2j in the high nibble of byte j,
 * code 2j+1 in the low nibble; an odd count leaves the last low nibble 0.
 *
 * @example
 * ```ts
 * import { packNibbles } from '@qlora/nf4';
 * packNibbles(new Uint8Array([15, 0, 7, 12])); // Uint8Array [0xf0, 0x7c]
 * ```
 */
export function packNibbles(codes: Uint8Array): Uint8Array {
  const n = codes.length;
  const out = new Uint8Array(Math.ceil(n / 2));
  for (let j = 0; 2 * j < n; j++) {
    const hi = codes[2 * j] as number;
    const lo = 2 * j + 1 < n ? (codes[2 * j + 1] as number) : 0;
    if (hi > 15 || lo > 15) {
      const at = hi > 15 ? 2 * j : 2 * j + 1;
      throw new Nf4Error(
        'INVALID_INPUT',
        `4-bit code: expected 0…15, got ${codes[at]} at index ${at}`,
      );
    }
    out[j] = (hi << 4) | lo;
  }
  return out;
}

/**
 * Unpacks `count` 4-bit codes (high nibble first) from packed bytes.
 *
 * @example
 * ```ts
 * import { unpackNibbles } from '@qlora/nf4';
 * unpackNibbles(new Uint8Array([0xf0, 0x7c]), 3); // Uint8Array [15, 0, 7]
 * ```
 */
export function unpackNibbles(packed: Uint8Array, count: number = packed.length * 2): Uint8Array {
  if (!Number.isSafeInteger(count) || count < 0 || Math.ceil(count / 2) !== packed.length) {
    throw new Nf4Error(
      'INVALID_PACKED',
      `packed length: expected ceil(count / 2) bytes for count ${describe(count)}, got ${packed.length}`,
    );
  }
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const byte = packed[i >> 1] as number;
    out[i] = i & 1 ? byte & 15 : byte >> 4;
  }
  return out;
}
