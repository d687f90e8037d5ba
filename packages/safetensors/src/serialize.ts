import { MAX_HEADER_LENGTH } from './_header';
import { quote } from './_messages';
import { DTYPE_BITS, DTYPE_RANK, isSafetensorsDtype, type TensorInput } from './dtypes';
import { SafetensorsError } from './errors';

/**
 * Tensors to write: a record or a `Map` from name to tensor. Order does not matter: the writer
 * sorts as the Python library does.
 *
 * @example
 * ```ts
 * const tensors: TensorsToWrite = new Map([['w', { dtype: 'F32', shape: [1], data: new Float32Array([1]) }]]);
 * ```
 */
export type TensorsToWrite =
  | Readonly<Record<string, TensorInput>>
  | ReadonlyMap<string, TensorInput>;

/**
 * Metadata to write: a string→string record or `Map`, written in its own iteration order.
 *
 * @example
 * ```ts
 * const metadata: MetadataToWrite = { format: 'pt' };
 * ```
 */
export type MetadataToWrite = Readonly<Record<string, string>> | ReadonlyMap<string, string>;

/** The header bytes and the tensors in the order their bytes follow it. */
export interface SafetensorsLayout {
  /** 8-byte length prefix + JSON header padded with spaces to a multiple of 8. */
  prefix: Uint8Array;
  /** Tensors in write order: dtype rank descending, then name (by code point = UTF-8 order). */
  ordered: Array<{ name: string; bytes: Uint8Array }>;
  /** Total file length. */
  byteLength: number;
}

const encoder = new TextEncoder();
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * Lays out a file exactly as huggingface/safetensors' `prepare` does: sort by dtype (the crate's
 * enum order, descending, which puts larger alignments first) then by name, assign back-to-back
 * offsets, serialize the header as compact JSON with `__metadata__` first and each entry as
 * `{"dtype","shape","data_offsets"}`, and pad it with spaces to a multiple of 8.
 */
export function layoutSafetensors(
  tensors: TensorsToWrite,
  metadata?: MetadataToWrite,
): SafetensorsLayout {
  const items: Array<{ name: string; tensor: TensorInput; bytes: Uint8Array }> = [];
  for (const [name, tensor] of entriesOf(tensors)) {
    items.push({ name, tensor, bytes: checkTensor(name, tensor) });
  }
  items.sort(
    (a, b) =>
      DTYPE_RANK[b.tensor.dtype] - DTYPE_RANK[a.tensor.dtype] || compareCodePoints(a.name, b.name),
  );

  const parts: string[] = [];
  if (metadata !== undefined) {
    const metaParts: string[] = [];
    for (const [key, value] of entriesOf(metadata)) {
      if (typeof value !== 'string' || LONE_SURROGATE.test(key) || LONE_SURROGATE.test(value)) {
        throw new SafetensorsError(
          'INVALID_METADATA',
          'metadata-string-map',
          `Metadata ${quote(String(key))} cannot be written: expected a well-formed string value, got ${typeof value === 'string' ? 'a string with a lone surrogate' : typeof value}. ` +
            'Stringify nested values (e.g. JSON.stringify) before writing.',
        );
      }
      metaParts.push(`${JSON.stringify(key)}:${JSON.stringify(value)}`);
    }
    parts.push(`"__metadata__":{${metaParts.join(',')}}`);
  }
  let offset = 0;
  for (const { name, tensor, bytes } of items) {
    const end = offset + bytes.byteLength;
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"${tensor.dtype}","shape":[${tensor.shape.join(',')}],"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const json = encoder.encode(`{${parts.join(',')}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;
  if (headerLength > MAX_HEADER_LENGTH) {
    throw new SafetensorsError(
      'HEADER_TOO_LARGE',
      'header-length-max',
      `Header too large to write: expected at most ${MAX_HEADER_LENGTH} bytes, got ${headerLength}. ` +
        'Split the tensors into shards.',
    );
  }
  const prefix = new Uint8Array(8 + headerLength);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerLength), true);
  prefix.set(json, 8);
  prefix.fill(0x20, 8 + json.length);
  return {
    prefix,
    ordered: items.map(({ name, bytes }) => ({ name, bytes })),
    byteLength: prefix.length + offset,
  };
}

/**
 * Serializes tensors (and optional string→string metadata) to safetensors bytes laid out as
 * the Python library lays them out, so the same tensors and metadata give a byte-identical
 * file: tensors sorted by dtype alignment (descending) then name, header JSON with
 * `__metadata__` first, padded with spaces to a multiple of 8 bytes.
 *
 * `metadata` is written in its iteration order. The Python library passes metadata through a
 * Rust `HashMap`, so with more than one key its order is arbitrary; with zero or one key (the
 * usual `{ format: 'pt' }`) output is byte-identical. Pass `metadata: undefined` to write no
 * `__metadata__` at all (an empty object writes `"__metadata__":{}`, as Python does for `{}`).
 *
 * @example
 * ```ts
 * const bytes = serializeSafetensors(
 *   { 'lora_A.weight': { dtype: 'F32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) } },
 *   { format: 'pt' },
 * );
 * bytes.length; // 128 (8 + 104 header + 16 data)
 * ```
 */
export function serializeSafetensors(
  tensors: TensorsToWrite,
  metadata?: MetadataToWrite,
): Uint8Array {
  const layout = layoutSafetensors(tensors, metadata);
  const out = new Uint8Array(layout.byteLength);
  out.set(layout.prefix, 0);
  let at = layout.prefix.length;
  for (const { bytes } of layout.ordered) {
    out.set(bytes, at);
    at += bytes.byteLength;
  }
  return out;
}

function entriesOf<V>(
  source: Readonly<Record<string, V>> | ReadonlyMap<string, V>,
): Iterable<[string, V]> {
  return source instanceof Map ? source.entries() : Object.entries(source as Record<string, V>);
}

/** Rust orders `String`s by UTF-8 bytes, which is code point order (not UTF-16 unit order). */
export function compareCodePoints(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (0xD800–0xDFFF) encode code points above 0xFFFF: they sort after 0xE000–0xFFFF.
    const surrogateX = x >= 0xd800 && x <= 0xdfff;
    const surrogateY = y >= 0xd800 && y <= 0xdfff;
    if (surrogateX !== surrogateY) return surrogateX ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

function checkTensor(name: string, tensor: TensorInput): Uint8Array {
  const bad = (what: string, got: string): never => {
    throw new SafetensorsError(
      'INVALID_TENSOR',
      'tensor-input',
      `Tensor ${quote(name)} cannot be written: expected ${what}, got ${got}.`,
      { tensor: name },
    );
  };
  if (name === '__metadata__') bad('a tensor name other than "__metadata__"', quote(name));
  if (LONE_SURROGATE.test(name)) bad('a well-formed UTF-16 name', 'a lone surrogate');
  if (tensor === null || typeof tensor !== 'object') bad('{ dtype, shape, data }', String(tensor));
  if (!isSafetensorsDtype(tensor.dtype)) bad('a safetensors dtype', quote(String(tensor.dtype)));
  if (!Array.isArray(tensor.shape)) bad('shape to be an array', typeof tensor.shape);
  let elements = 1n;
  for (const dim of tensor.shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) {
      bad('shape to hold non-negative integers', `[${tensor.shape.join(', ')}]`);
    }
    elements *= BigInt(dim);
  }
  if (!ArrayBuffer.isView(tensor.data))
    bad('data to be a typed array or DataView', typeof tensor.data);
  const bits = elements * BigInt(DTYPE_BITS[tensor.dtype]);
  if (bits % 8n !== 0n)
    bad(`${tensor.dtype} × ${elements} elements to fill whole bytes`, `${bits} bits`);
  const { data } = tensor;
  if (BigInt(data.byteLength) !== bits / 8n) {
    bad(
      `${bits / 8n} bytes of data (${tensor.dtype}, shape [${tensor.shape.join(', ')}])`,
      `${data.byteLength} bytes`,
    );
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
