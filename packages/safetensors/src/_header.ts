import { JsonNumber, JsonObject, type JsonValue, parseStrictJson } from './_json';
import { quote } from './_messages';
import { DTYPE_BITS, isSafetensorsDtype, type SafetensorsDtype, type TensorInfo } from './dtypes';
import { SafetensorsError } from './errors';

/** The Rust crate's `MAX_HEADER_SIZE`: a header claiming more is refused before any allocation. */
export const MAX_HEADER_LENGTH = 100_000_000;

/** A validated header: tensors in file (offset) order, metadata, and where the data starts. */
export interface ParsedHeader {
  headerLength: number;
  metadata: Record<string, string> | undefined;
  /** Tensor names in increasing data_offsets order. */
  names: string[];
  tensors: Map<string, TensorInfo>;
  /** Total bytes of tensor data (= last end offset). */
  dataLength: number;
}

const U64_MAX = (1n << 64n) - 1n;

/**
 * Reads the 8-byte little-endian header length and checks it against the Rust bounds and the
 * file size, before anything of that length is allocated.
 */
export function readHeaderLength(prefix: Uint8Array, fileLength: number): number {
  if (prefix.length < 8 || fileLength < 8) {
    throw new SafetensorsError(
      'HEADER_TOO_SMALL',
      'header-length-present',
      `File too short for a safetensors header: expected at least 8 bytes, got ${fileLength}.`,
    );
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_LENGTH)) {
    throw new SafetensorsError(
      'HEADER_TOO_LARGE',
      'header-length-max',
      `Header length too large: expected at most ${MAX_HEADER_LENGTH} bytes, got ${n}. ` +
        'Is this a safetensors file?',
    );
  }
  const length = Number(n);
  if (8 + length > fileLength) {
    throw new SafetensorsError(
      'INVALID_HEADER_LENGTH',
      'header-within-file',
      `Header length runs past the end of the file: expected at most ${fileLength - 8} bytes, got ${length}. ` +
        'The file may be truncated.',
    );
  }
  return length;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Decodes and validates the header bytes (everything between the length prefix and the data)
 * the way the Rust crate does, with every rule checked in safe integer or BigInt arithmetic.
 * `fileLength` is the size of the whole file, so the data must end exactly at its end.
 */
export function parseHeader(headerBytes: Uint8Array, fileLength: number): ParsedHeader {
  let text: string;
  try {
    text = utf8.decode(headerBytes);
  } catch (cause) {
    throw new SafetensorsError(
      'INVALID_HEADER_UTF8',
      'header-utf8',
      'Header is not valid UTF-8: expected a UTF-8 JSON object, got undecodable bytes.',
      { cause },
    );
  }
  const root = parseStrictJson(text);
  if (!(root instanceof JsonObject)) {
    throw new SafetensorsError(
      'INVALID_HEADER_JSON',
      'header-object',
      `Header is not a JSON object: expected {…}, got ${describe(root)}.`,
    );
  }

  let metadata: Record<string, string> | undefined;
  const entries: Array<{ name: string; info: TensorInfo }> = [];
  for (const [name, value] of root.entries) {
    if (name === '__metadata__') {
      metadata = readMetadata(value);
      continue;
    }
    entries.push({ name, info: readTensorInfo(name, value) });
  }

  // The crate sorts by (begin, end) before checking contiguity, so header order is free.
  entries.sort(
    (a, b) =>
      a.info.dataOffsets[0] - b.info.dataOffsets[0] ||
      a.info.dataOffsets[1] - b.info.dataOffsets[1],
  );
  let expectedBegin = 0;
  for (const { name, info } of entries) {
    const [begin, end] = info.dataOffsets;
    if (begin !== expectedBegin || end < begin) {
      const got = `[${begin}, ${end}]`;
      const what =
        end < begin
          ? 'end ≥ begin'
          : begin < expectedBegin
            ? `begin ${expectedBegin} (it overlaps the previous tensor)`
            : `begin ${expectedBegin} (there is a gap before it)`;
      throw new SafetensorsError(
        'INVALID_OFFSETS',
        'offsets-contiguous',
        `Tensor ${quote(name)} has invalid data_offsets: expected ${what}, got ${got}. ` +
          'Tensors must cover the byte buffer back to back from offset 0, without gaps or overlap.',
        { tensor: name },
      );
    }
    expectedBegin = end;
    checkSize(name, info, end - begin);
  }

  const dataStart = 8 + headerBytes.length;
  if (dataStart + expectedBegin !== fileLength) {
    throw new SafetensorsError(
      'INCOMPLETE_BUFFER',
      'buffer-fully-covered',
      `Tensor data does not end at the end of the file: expected ${fileLength - dataStart} bytes of data, ` +
        `the header covers ${expectedBegin}. The file is truncated or has trailing bytes.`,
    );
  }

  const tensors = new Map<string, TensorInfo>();
  for (const { name, info } of entries) tensors.set(name, info);
  return {
    headerLength: headerBytes.length,
    metadata,
    names: entries.map((e) => e.name),
    tensors,
    dataLength: expectedBegin,
  };
}

function readMetadata(value: JsonValue): Record<string, string> {
  if (!(value instanceof JsonObject)) {
    throw new SafetensorsError(
      'INVALID_METADATA',
      'metadata-string-map',
      `__metadata__ is not an object: expected {"key": "value", …}, got ${describe(value)}.`,
    );
  }
  const metadata: Record<string, string> = Object.create(null);
  for (const [key, item] of value.entries) {
    if (typeof item !== 'string') {
      throw new SafetensorsError(
        'INVALID_METADATA',
        'metadata-string-map',
        `__metadata__[${quote(key)}] is not a string: expected a string (nested JSON must be ` +
          `stringified), got ${describe(item)}.`,
      );
    }
    metadata[key] = item;
  }
  return metadata;
}

function readTensorInfo(name: string, value: JsonValue): TensorInfo {
  const bad = (what: string, got: string): never => {
    throw new SafetensorsError(
      'INVALID_TENSOR_INFO',
      'tensor-info-types',
      `Tensor ${quote(name)} has an invalid header entry: expected ${what}, got ${got}.`,
      { tensor: name },
    );
  };
  if (!(value instanceof JsonObject)) {
    return bad('{"dtype", "shape", "data_offsets"}', describe(value));
  }
  let dtype: SafetensorsDtype | undefined;
  let shape: number[] | undefined;
  let dataOffsets: [number, number] | undefined;
  // Like serde, unknown fields are ignored.
  for (const [key, field] of value.entries) {
    if (key === 'dtype') {
      if (!isSafetensorsDtype(field)) {
        bad('a known dtype (F32, BF16, F16, I64, …)', describe(field));
      }
      dtype = field as SafetensorsDtype;
    } else if (key === 'shape') {
      if (!Array.isArray(field)) return bad('shape to be an array of integers', describe(field));
      shape = field.map((d) => toDimension(d, bad, 'shape'));
    } else if (key === 'data_offsets') {
      if (!Array.isArray(field) || field.length !== 2) {
        return bad('data_offsets to be [begin, end]', describe(field));
      }
      const begin = toOffset(field[0] ?? null, bad);
      const end = toOffset(field[1] ?? null, bad);
      dataOffsets = [begin, end];
    }
  }
  if (dtype === undefined) return bad('a "dtype" field', 'none');
  if (shape === undefined) return bad('a "shape" field', 'none');
  if (dataOffsets === undefined) return bad('a "data_offsets" field', 'none');
  return { dtype, shape, dataOffsets };
}

/** A u64 JSON integer as a BigInt; floats, negatives and values over u64 are refused like serde. */
function toU64(value: JsonValue, bad: (what: string, got: string) => never, field: string): bigint {
  if (!(value instanceof JsonNumber) || !/^(0|[1-9]\d*)$/.test(value.raw)) {
    return bad(`${field} to hold non-negative integers`, describe(value));
  }
  const n = BigInt(value.raw);
  if (n > U64_MAX) return bad(`${field} values ≤ 2^64−1`, quote(value.raw, 30));
  return n;
}

function toDimension(
  value: JsonValue,
  bad: (what: string, got: string) => never,
  field: string,
): number {
  const n = toU64(value, bad, field);
  // Dimensions above 2^53 cannot be JS numbers; such a tensor could never be held anyway.
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) {
    return bad(`${field} values ≤ 2^53−1`, n.toString());
  }
  return Number(n);
}

function toOffset(value: JsonValue, bad: (what: string, got: string) => never): number {
  const n = toU64(value, bad, 'data_offsets');
  // Any offset beyond 2^53 is beyond every file; report it as it is instead of rounding it.
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) return bad('data_offsets within the file', n.toString());
  return Number(n);
}

function checkSize(name: string, info: TensorInfo, byteLength: number): void {
  let elements = 1n;
  for (const dim of info.shape) {
    elements *= BigInt(dim);
    if (elements > U64_MAX) {
      throw new SafetensorsError(
        'SIZE_MISMATCH',
        'size-no-overflow',
        `Tensor ${quote(name)} has a shape whose element count overflows u64: expected a product ` +
          `of dimensions below 2^64, got shape [${info.shape.join(', ')}].`,
        { tensor: name },
      );
    }
  }
  const bits = elements * BigInt(DTYPE_BITS[info.dtype]);
  if (bits > U64_MAX) {
    throw new SafetensorsError(
      'SIZE_MISMATCH',
      'size-no-overflow',
      `Tensor ${quote(name)} is too large: expected shape × ${info.dtype} size below 2^64 bits, got shape [${info.shape.join(', ')}].`,
      { tensor: name },
    );
  }
  if (bits % 8n !== 0n) {
    throw new SafetensorsError(
      'SIZE_MISMATCH',
      'size-whole-bytes',
      `Tensor ${quote(name)} does not fill whole bytes: expected ${info.dtype} × ${elements} elements ` +
        `to be a multiple of 8 bits, got ${bits} bits.`,
      { tensor: name },
    );
  }
  if (bits / 8n !== BigInt(byteLength)) {
    throw new SafetensorsError(
      'SIZE_MISMATCH',
      'size-matches-offsets',
      `Tensor ${quote(name)} has a byte range that does not match its shape: expected ` +
        `${bits / 8n} bytes (${info.dtype}, shape [${info.shape.join(', ')}]), got ${byteLength} ` +
        `(data_offsets [${info.dataOffsets.join(', ')}]).`,
      { tensor: name },
    );
  }
}

function describe(value: JsonValue): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return quote(value, 40);
  if (typeof value === 'boolean') return String(value);
  if (value instanceof JsonNumber) return quote(value.raw, 30);
  if (value instanceof JsonObject) return 'an object';
  return 'an array';
}
