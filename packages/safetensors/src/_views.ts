import type { DtypeArray, SafetensorsDtype } from './dtypes';

type ViewConstructor = {
  readonly BYTES_PER_ELEMENT: number;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): DtypeArray;
};

const CONSTRUCTORS: Readonly<Record<SafetensorsDtype, ViewConstructor>> = {
  BOOL: Uint8Array,
  F4: Uint8Array,
  F6_E2M3: Uint8Array,
  F6_E3M2: Uint8Array,
  U8: Uint8Array,
  I8: Int8Array,
  F8_E5M2: Uint8Array,
  F8_E4M3: Uint8Array,
  F8_E8M0: Uint8Array,
  F8_E4M3FNUZ: Uint8Array,
  F8_E5M2FNUZ: Uint8Array,
  I16: Int16Array,
  U16: Uint16Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I32: Int32Array,
  U32: Uint32Array,
  F32: Float32Array,
  C64: Float32Array,
  F64: Float64Array,
  I64: BigInt64Array,
  U64: BigUint64Array,
} as unknown as Record<SafetensorsDtype, ViewConstructor>;

/**
 * The typed array for `byteLength` bytes at `byteOffset` of `buffer`: a view sharing the memory
 * when the offset is a multiple of the element size, otherwise a copy (typed arrays cannot be
 * unaligned).
 */
export function viewOrCopy<D extends SafetensorsDtype>(
  dtype: D,
  buffer: ArrayBufferLike,
  byteOffset: number,
  byteLength: number,
): DtypeArray<D> {
  const Ctor = CONSTRUCTORS[dtype];
  const size = Ctor.BYTES_PER_ELEMENT;
  const length = byteLength / size;
  if (byteOffset % size === 0) return new Ctor(buffer, byteOffset, length) as DtypeArray<D>;
  const copy = new ArrayBuffer(byteLength);
  new Uint8Array(copy).set(new Uint8Array(buffer, byteOffset, byteLength));
  return new Ctor(copy, 0, length) as DtypeArray<D>;
}
