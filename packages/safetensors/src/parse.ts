import { parseHeader, readHeaderLength } from './_header';
import { viewOrCopy } from './_views';
import type { TensorEntry } from './dtypes';

/**
 * A parsed safetensors file: the `__metadata__` map (or `undefined` when the file has none) and
 * the tensors by name, inserted in file (offset) order (JavaScript still enumerates integer-like
 * keys such as `"0"` first). Both records have no prototype, so a tensor named `__proto__` or
 * `constructor` is an ordinary key.
 *
 * @example
 * ```ts
 * const { metadata, tensors }: ParsedSafetensors = parseSafetensors(bytes);
 * ```
 */
export interface ParsedSafetensors {
  metadata: Record<string, string> | undefined;
  tensors: Record<string, TensorEntry>;
}

/**
 * Parses a whole safetensors file held in memory, validating every rule of the format (header
 * length ≤ 100 MB and ≤ the file, strict JSON with no duplicate keys, known dtypes, integer
 * shapes and offsets, tensors covering the byte buffer back to back, shape × dtype size equal to
 * each byte range, string-only `__metadata__`). A violation throws {@link SafetensorsError}
 * naming the tensor and the rule; nothing is allocated from sizes the header claims.
 *
 * Zero-copy where possible: each tensor's `data` is a typed-array **view into `bytes`** (sharing
 * its memory; mutate one and you mutate the other) when the tensor's absolute offset in
 * `bytes.buffer` is a multiple of its element size, which is always the case for files written
 * by this package or the Python library when `bytes.byteOffset` is a multiple of 8. Otherwise
 * (an unaligned offset) that tensor alone is **copied** into a fresh buffer.
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * const { metadata, tensors } = parseSafetensors(readFileSync('adapter_model.safetensors'));
 * metadata; // { format: 'pt' }
 * tensors['lora_A.weight']; // { dtype: 'F32', shape: [16, 2048], data: Float32Array(32768) }
 * ```
 */
export function parseSafetensors(bytes: Uint8Array): ParsedSafetensors {
  const headerLength = readHeaderLength(bytes, bytes.length);
  const header = parseHeader(bytes.subarray(8, 8 + headerLength), bytes.length);
  const dataStart = bytes.byteOffset + 8 + headerLength;
  const tensors: Record<string, TensorEntry> = Object.create(null);
  for (const name of header.names) {
    const info = header.tensors.get(name);
    if (info === undefined) continue;
    const [begin, end] = info.dataOffsets;
    tensors[name] = {
      dtype: info.dtype,
      shape: info.shape,
      data: viewOrCopy(info.dtype, bytes.buffer, dataStart + begin, end - begin),
    };
  }
  return { metadata: header.metadata, tensors };
}
