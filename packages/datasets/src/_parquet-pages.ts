// Bounds on the pages of a parquet column chunk, checked before hyparquet decodes anything.
//
// hyparquet sizes its arrays from each page header (`new Array(num_values)`,
// `new Uint8Array(uncompressed_page_size)`) without checking them, and its RLE / bit-packed
// hybrid decoder (`readRleBitPackedHybrid` in hyparquet's `encoding.js`) writes as many values as
// a run header declares, past the end of its output array. One flipped byte in a page header, or
// one hostile run length inside a page, made it grow an array toward 145 million elements:
// seconds of work, or a V8 "invalid size" abort that no try/catch can stop (both found by
// fuzzing). So every page header is read here (a strict Thrift compact reader: the fields
// hyparquet uses must be present, with types hyparquet reads as the same numbers), and every
// RLE / bit-packed hybrid stream hyparquet would decode (repetition and
// definition levels, dictionary indices, RLE booleans; DataPage v1 and v2) is walked run by run
// the way hyparquet reads it, without materialising values. A run reaching past the values its
// page declares (plus the padding of one bit-packed group of 8) is refused. Pages of the DELTA_*
// encodings are walked too (hyparquet's `delta.js` allocates from their headers and lengths:
// `new Uint8Array(miniblockPerBlock)`, `new Uint8Array(prefix + suffix)`, and moves its reader
// backwards, an endless loop, on a negative miniblock count or size), as is the size of a
// BYTE_STREAM_SPLIT page (`new Uint8Array(count * type_length)`). Snappy pages are
// decoded by this file's decoder, here (lazily: a v1 page of PLAIN text only as far as its
// levels) and in hyparquet (the loader passes `snappyDecompress` as its SNAPPY decompressor):
// hyparquet's own loops forever on an 8-byte hostile stream.

/** Most values one page may declare: far above real pages (≤ 1 MB, ≤ ~1M values). */
export const MAX_PAGE_VALUES = 1 << 24;
/** Most bytes one page may decompress to. */
export const MAX_PAGE_BYTES = 1 << 30;
/** Snappy's best ratio is under 22:1 (a 3-byte copy of 64 bytes); a larger claim is a lie. */
const SNAPPY_MAX_RATIO = 22;
/**
 * Values a run may reach past the count its page declares: bit-packed runs come in groups of 8,
 * so a writer pads the last group with up to 7 values. hyparquet clamps bit-packed writes to its
 * array but loops over every declared value, and writes RLE runs in full.
 */
export const RUN_PADDING = 7;
/**
 * Largest DELTA_BINARY_PACKED block read. Writers use 128 values (parquet-java, Arrow,
 * hyparquet-writer); the spec asks for a positive multiple of 128.
 */
export const MAX_DELTA_BLOCK = 1 << 16;
/** Longest zigzag varint read in a DELTA stream (an int64 takes 10 bytes). */
const MAX_DELTA_VARINT_BYTES = 10;
/**
 * A DELTA_BYTE_ARRAY page may decode to at most this many times its decompressed size, or to
 * {@link MIN_PREFIXED_BYTES}, whichever is larger: hyparquet allocates prefix + suffix bytes for
 * every value sharing a prefix, so repeated prefixes multiply a page's size.
 */
export const DELTA_PREFIX_RATIO = 64;
/** See {@link DELTA_PREFIX_RATIO}: 16 MiB, for small pages of long repeated strings. */
export const MIN_PREFIXED_BYTES = 1 << 24;

// Thrift compact types and parquet enums (parquet.thrift), as hyparquet numbers them.
const T_TRUE = 1;
const T_FALSE = 2;
const T_BYTE = 3;
const T_I16 = 4;
const T_I32 = 5;
const T_STRUCT = 12;
const DATA_PAGE = 0;
const DICTIONARY_PAGE = 2;
const DATA_PAGE_V2 = 3;
const PLAIN_DICTIONARY = 2;
const RLE = 3;
const DELTA_BINARY_PACKED = 5;
const DELTA_LENGTH_BYTE_ARRAY = 6;
const DELTA_BYTE_ARRAY = 7;
const RLE_DICTIONARY = 8;
const BYTE_STREAM_SPLIT = 9;
// hyparquet also decodes ALP (a new float encoding) with loops sized by page data this walk does
// not check; no mainstream writer (pyarrow, Hugging Face datasets) produces it, so it is refused.
const ALP = 10;

export interface DataPageV1 {
  numValues: number;
  encoding: number;
}

export interface DataPageV2 {
  numValues: number;
  numNulls: number;
  encoding: number;
  definitionLevelsLength: number;
  repetitionLevelsLength: number;
  /** Absent means true (hyparquet's and the spec's default). */
  isCompressed: boolean;
}

export interface PageHeaderSummary {
  /** Bytes of the header itself. */
  headerLength: number;
  /** parquet PageType: 0 data, 1 index, 2 dictionary, 3 data v2. */
  type: number;
  uncompressedSize: number;
  compressedSize: number;
  dataPage?: DataPageV1;
  dictionaryPage?: { numValues: number };
  dataPageV2?: DataPageV2;
}

class ThriftCursor {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    start: number,
  ) {
    this.pos = start;
  }

  byte(): number {
    if (this.pos >= this.bytes.length) throw new Error('page header runs past the column chunk');
    return this.bytes[this.pos++] as number;
  }

  /** Exact below 2^53; a varint with bits beyond reads as Number.MAX_VALUE, past every bound. */
  varint(): number {
    let result = 0;
    let shift = 0;
    let beyond = false;
    for (;;) {
      const b = this.byte();
      if (shift < 53) result += (b & 0x7f) * 2 ** shift;
      else if (b & 0x7f) beyond = true;
      if ((b & 0x80) === 0) return beyond ? Number.MAX_VALUE : result;
      shift += 7;
      if (shift > 70) throw new Error('varint longer than 10 bytes');
    }
  }

  /**
   * An integer field of Thrift type `type`, read as hyparquet reads it: a byte (3) as a signed
   * byte, an i16 (4) or i32 (5) as a zigzag varint. hyparquet reads varints into 32 bits (higher
   * bits wrap), so a value outside 32 bits would mean different numbers to it and to this
   * reader: refused, as is an i64 (hyparquet would hand a BigInt on) or any other type.
   */
  int(field: string, type: number): number {
    if (type === T_BYTE) return (this.byte() << 24) >> 24;
    if (type !== T_I16 && type !== T_I32) {
      throw new Error(`page header field ${field} has Thrift type ${type}, expected an i32 (5)`);
    }
    const n = this.varint();
    if (n > 0xffffffff) throw new Error(`page header field ${field} does not fit in 32 bits`);
    return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
  }

  skip(type: number, depth: number): void {
    if (depth > 32) throw new Error('page header nests deeper than 32 levels');
    switch (type) {
      case 1: // true
      case 2: // false
        return;
      case 3:
        this.byte();
        return;
      case 4:
      case 5:
      case 6:
        this.varint();
        return;
      case 7:
        this.advance(8);
        return;
      case 8:
        this.advance(this.varint());
        return;
      case 9:
      case 10: {
        const header = this.byte();
        const size = header >> 4 === 15 ? this.varint() : header >> 4;
        const elementType = header & 0x0f;
        for (let i = 0; i < size; i++) {
          if (elementType === 1 || elementType === 2) this.byte();
          else this.skip(elementType, depth + 1);
        }
        return;
      }
      case 11: {
        const size = this.varint();
        if (size === 0) return;
        const types = this.byte();
        for (let i = 0; i < size; i++) {
          this.skip(types >> 4, depth + 1);
          this.skip(types & 0x0f, depth + 1);
        }
        return;
      }
      case 12:
        this.struct(() => false, depth + 1);
        return;
      default:
        throw new Error(`unknown Thrift type ${type}`);
    }
  }

  advance(n: number): void {
    if (n < 0 || this.pos + n > this.bytes.length) {
      throw new Error('page header field runs past the column chunk');
    }
    this.pos += n;
  }

  /** Walks a struct; `onField` reads a field it wants (and returns true), else it is skipped. */
  struct(onField: (id: number, type: number) => boolean, depth: number): void {
    let id = 0;
    for (;;) {
      const header = this.byte();
      const type = header & 0x0f;
      if (type === 0) return;
      const delta = header >> 4;
      // A long-form id wider than 32 bits would name another field to hyparquet (it wraps).
      id = delta === 0 ? this.int('id', T_I32) : id + delta;
      if (!onField(id, type)) this.skip(type, depth);
    }
  }
}

function expectStruct(field: string, type: number): void {
  if (type !== T_STRUCT) {
    throw new Error(`page header field ${field} has Thrift type ${type}, expected a struct (12)`);
  }
}

/** Reads the struct of `fields` (name by field id) as integers; every one is required. */
function readI32Struct(
  cursor: ThriftCursor,
  name: string,
  fields: Record<number, string>,
  extra?: (id: number, type: number) => boolean,
): Record<string, number> {
  const values: Record<string, number> = {};
  cursor.struct((id, type) => {
    const field = fields[id];
    if (field === undefined) return extra?.(id, type) ?? false;
    values[field] = cursor.int(`${name}.${field}`, type);
    return true;
  }, 1);
  for (const field of Object.values(fields)) {
    if (values[field] === undefined) throw new Error(`${name} has no ${field}`);
  }
  return values;
}

/**
 * Reads the page header at `start`. The fields hyparquet reads must be present, integers as a
 * byte, i16 or i32 (which hyparquet reads alike), structs and bools as such; anything else is an
 * Error naming the field.
 */
export function readPageHeader(bytes: Uint8Array, start: number): PageHeaderSummary {
  const cursor = new ThriftCursor(bytes, start);
  const top: Record<string, number> = {};
  let dataPage: DataPageV1 | undefined;
  let dictionaryPage: { numValues: number } | undefined;
  let dataPageV2: DataPageV2 | undefined;
  const TOP: Record<number, string> = {
    1: 'type',
    2: 'uncompressed_page_size',
    3: 'compressed_page_size',
  };
  cursor.struct((id, type) => {
    const field = TOP[id];
    if (field !== undefined) {
      top[field] = cursor.int(field, type);
    } else if (id === 5) {
      expectStruct('data_page_header', type);
      const v = readI32Struct(cursor, 'data_page_header', {
        1: 'num_values',
        2: 'encoding',
        3: 'definition_level_encoding',
        4: 'repetition_level_encoding',
      });
      dataPage = { numValues: v.num_values as number, encoding: v.encoding as number };
    } else if (id === 7) {
      expectStruct('dictionary_page_header', type);
      const v = readI32Struct(cursor, 'dictionary_page_header', { 1: 'num_values' });
      dictionaryPage = { numValues: v.num_values as number };
    } else if (id === 8) {
      expectStruct('data_page_header_v2', type);
      let isCompressed = true;
      const v = readI32Struct(
        cursor,
        'data_page_header_v2',
        {
          1: 'num_values',
          2: 'num_nulls',
          3: 'num_rows',
          4: 'encoding',
          5: 'definition_levels_byte_length',
          6: 'repetition_levels_byte_length',
        },
        (inner, innerType) => {
          if (inner !== 7) return false;
          if (innerType !== T_TRUE && innerType !== T_FALSE) {
            throw new Error(
              `page header field data_page_header_v2.is_compressed has Thrift type ${innerType}, expected a bool`,
            );
          }
          isCompressed = innerType === T_TRUE;
          return true;
        },
      );
      dataPageV2 = {
        numValues: v.num_values as number,
        numNulls: v.num_nulls as number,
        encoding: v.encoding as number,
        definitionLevelsLength: v.definition_levels_byte_length as number,
        repetitionLevelsLength: v.repetition_levels_byte_length as number,
        isCompressed,
      };
    } else return false;
    return true;
  }, 0);
  for (const field of Object.values(TOP)) {
    if (top[field] === undefined) throw new Error(`page header has no ${field}`);
  }
  const summary: PageHeaderSummary = {
    headerLength: cursor.pos - start,
    type: top.type as number,
    uncompressedSize: top.uncompressed_page_size as number,
    compressedSize: top.compressed_page_size as number,
  };
  if (dataPage) summary.dataPage = dataPage;
  if (dictionaryPage) summary.dictionaryPage = dictionaryPage;
  if (dataPageV2) summary.dataPageV2 = dataPageV2;
  return summary;
}

/**
 * What hyparquet derives from the schema to decode one column: which level streams a page holds
 * and how wide they are (`getMaxDefinitionLevel` / `getMaxRepetitionLevel` in hyparquet).
 */
export interface ColumnLevels {
  /** Physical type of the leaf (`BOOLEAN` pages decode RLE values without a width byte). */
  physicalType: string | undefined;
  maxDefinitionLevel: number;
  maxRepetitionLevel: number;
  /** Schema elements from the root to the leaf; hyparquet reads v1 repetition levels only past the root. */
  pathLength: number;
  /** `type_length` of a FIXED_LEN_BYTE_ARRAY leaf (BYTE_STREAM_SPLIT values are that wide). */
  typeLength?: number | undefined;
}

/** A problem with one page, for the loader to put in its `DatasetsError` message. */
export interface PageProblem {
  /** 0-based page of the column chunk (a dictionary page counts). */
  page: number;
  /** Byte of the page header within the column chunk. */
  byte: number;
  expected: string;
  got: string;
}

/** The stream ended where hyparquet would throw a RangeError itself (a typed error later). */
class EndOfPage extends Error {}

/** A run declaring more values than its page holds, or a DELTA / BYTE_STREAM_SPLIT number past its bound. */
class OutOfBounds extends Error {
  constructor(
    readonly expected: string,
    readonly got: string,
  ) {
    super(got);
  }
}

/** A snappy stream hyparquet's `snappyUncompress` would reject, or loop on forever. */
class BadSnappy extends Error {}

/**
 * The decoded bytes of a page, produced on demand: the level streams a walk needs sit at the
 * start of a v1 page, so a page of PLAIN text is decompressed only as far as its levels.
 */
interface PageBytes {
  /** Decoded size of the page. */
  readonly length: number;
  /** Output buffer; bytes [0, end) are valid after `need(end)` returned true. */
  readonly bytes: Uint8Array;
  /** Decodes at least `end` bytes; false when the page is shorter. */
  need(end: number): boolean;
}

function plainBytes(bytes: Uint8Array): PageBytes {
  return { length: bytes.length, bytes, need: (end) => end <= bytes.length };
}

const WORD_MASK = [0, 0xff, 0xffff, 0xffffff, 0xffffffff];

/**
 * A snappy block decoded lazily, element by element. It decodes exactly the streams that
 * hyparquet's `snappyUncompress` decodes to `length` bytes, to the same bytes, and refuses the
 * rest, including those hyparquet's would not survive: a 4-byte literal length above 2^31 is
 * negative in its 32-bit arithmetic and moves its read position backwards, an endless loop
 * (8 bytes suffice); a negative copy offset makes it copy zeros from past the output. The
 * loader hands {@link snappyDecompress} to hyparquet as its SNAPPY decompressor, so the bytes
 * checked here are the bytes it decodes.
 */
class SnappyBytes implements PageBytes {
  /** Decoded bytes [0, out); grown as needed, so a walk of the levels allocates little. */
  private output: Uint8Array = new Uint8Array(0);
  private pos = 0;
  private out = 0;

  constructor(
    private readonly input: Uint8Array,
    readonly length: number,
  ) {
    // The preamble (the decoded length as a varint) is skipped, as hyparquet does.
    while (this.pos < input.length) {
      if ((input[this.pos++] as number) < 128) break;
    }
    if (length && this.pos >= input.length) throw new BadSnappy('no data after the length header');
  }

  get bytes(): Uint8Array {
    return this.output;
  }

  /** {@link reserve} from inside `advance`, whose decoded count is `out`. */
  private grow(out: number, end: number): Uint8Array {
    this.out = out;
    return this.reserve(end);
  }

  /** Room for `end` decoded bytes (at least doubling, at most the page). */
  private reserve(end: number): Uint8Array {
    if (end <= this.output.length) return this.output;
    const grown = new Uint8Array(
      Math.min(this.length, Math.max(end, 2 * this.output.length, 4096)),
    );
    grown.set(this.output.subarray(0, this.out));
    this.output = grown;
    return grown;
  }

  need(end: number): boolean {
    if (end > this.length) return false;
    this.advance(end);
    return true;
  }

  /** Decodes the whole stream, which must end exactly at `length` (what hyparquet checks). */
  decodeAll(): Uint8Array {
    this.reserve(this.length);
    this.advance(this.length);
    if (this.pos < this.input.length) {
      throw new BadSnappy(`elements past the ${this.length} bytes the page header declares`);
    }
    return this.bytes;
  }

  private advance(end: number): void {
    const input = this.input;
    let output: Uint8Array = this.output;
    const size = this.length;
    let pos = this.pos;
    let out = this.out;
    try {
      while (out < end) {
        if (pos >= input.length) {
          throw new BadSnappy(`${out} bytes where the page header declares ${size}`);
        }
        const tag = input[pos++] as number;
        if (pos >= input.length) throw new BadSnappy('an element cut off at the end');
        let length: number;
        if ((tag & 3) === 0) {
          length = (tag >>> 2) + 1;
          if (length > 60) {
            if (pos + 3 >= input.length) throw new BadSnappy('a literal length cut off');
            const lengthSize = length - 60;
            const word =
              (input[pos] as number) +
              ((input[pos + 1] as number) << 8) +
              ((input[pos + 2] as number) << 16) +
              ((input[pos + 3] as number) << 24);
            length = (word & (WORD_MASK[lengthSize] as number)) + 1;
            pos += lengthSize;
          }
          if (length <= 0 || pos + length > input.length || out + length > size) {
            throw new BadSnappy(`a literal of ${length} bytes at byte ${pos} of the stream`);
          }
          if (out + length > output.length) output = this.grow(out, out + length);
          if (length < 32) {
            for (let i = 0; i < length; i++) output[out + i] = input[pos + i] as number;
          } else output.set(input.subarray(pos, pos + length), out);
          pos += length;
        } else {
          let offset: number;
          if ((tag & 3) === 1) {
            length = ((tag >>> 2) & 7) + 4;
            offset = (input[pos] as number) + ((tag >>> 5) << 8);
            pos += 1;
          } else if ((tag & 3) === 2) {
            if (input.length <= pos + 1) throw new BadSnappy('a copy cut off');
            length = (tag >>> 2) + 1;
            offset = (input[pos] as number) + ((input[pos + 1] as number) << 8);
            pos += 2;
          } else {
            if (input.length <= pos + 3) throw new BadSnappy('a copy cut off');
            length = (tag >>> 2) + 1;
            offset =
              (input[pos] as number) +
              ((input[pos + 1] as number) << 8) +
              ((input[pos + 2] as number) << 16) +
              ((input[pos + 3] as number) << 24);
            pos += 4;
          }
          if (offset <= 0 || offset > out || out + length > size) {
            throw new BadSnappy(
              `a copy of ${length} bytes from ${offset} back at output byte ${out}`,
            );
          }
          if (out + length > output.length) output = this.grow(out, out + length);
          if (offset >= length && length >= 32) {
            output.copyWithin(out, out - offset, out - offset + length);
          } else {
            // Byte by byte: a copy may overlap what it writes (a run of a short pattern).
            for (let i = 0; i < length; i++) output[out + i] = output[out - offset + i] as number;
          }
        }
        out += length;
      }
    } finally {
      this.pos = pos;
      this.out = out;
    }
  }
}

/**
 * A SNAPPY decompressor for hyparquet's `compressors` option: the whole page, exactly
 * `outputLength` bytes, or an Error (never an endless loop).
 */
export function snappyDecompress(input: Uint8Array, outputLength: number): Uint8Array {
  return new SnappyBytes(input, outputLength).decodeAll();
}

const bitWidthOf = (value: number): number => 32 - Math.clz32(value);

/**
 * Walks one RLE / bit-packed hybrid stream exactly as hyparquet's `readRleBitPackedHybrid`
 * reads it (same header varints, same bytes per run, same stopping rule: until the output array,
 * initially `expected` long and grown by any RLE overshoot, is full), without writing values.
 * Throws {@link OutOfBounds} for a run ending past `expected + RUN_PADDING`, {@link EndOfPage}
 * where hyparquet's own reads would run off the page. Returns where hyparquet leaves its reader
 * and, when `match` is given, how many decoded values equal it (hyparquet counts nulls so).
 */
function walkHybrid(
  page: PageBytes,
  offset: number,
  width: number,
  expected: number,
  declaredLength: number | undefined,
  what: string,
  match?: number,
): { end: number; matches: number } {
  let pos = offset;
  let length = declaredLength;
  if (length === undefined) {
    if (pos < 0 || !page.need(pos + 4)) throw new EndOfPage();
    const b = page.bytes;
    length =
      ((b[pos] as number) |
        ((b[pos + 1] as number) << 8) |
        ((b[pos + 2] as number) << 16) |
        ((b[pos + 3] as number) << 24)) >>>
      0;
    pos += 4;
  }
  const start = pos;
  const limit = expected + RUN_PADDING;
  let size = expected;
  let seen = 0;
  let matches = 0;
  const tooLong = (kind: string, count: number): OutOfBounds =>
    new OutOfBounds(
      `${what} covering at most ${limit} values (the page declares ${expected}, + ${RUN_PADDING} padding)`,
      `${seen + count} (a${kind === 'RLE' ? 'n' : ''} ${kind} run of ${count} values after ${seen})`,
    );
  while (seen < size) {
    // hyparquet's readVarInt: 32-bit, shifts wrap, no length limit.
    let header = 0;
    let shift = 0;
    for (;;) {
      if (pos < 0 || !page.need(pos + 1)) throw new EndOfPage();
      const b = page.bytes[pos++] as number;
      header |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
      shift += 7;
    }
    if (header & 1) {
      // Bit-packed: (header >> 1) groups of 8. hyparquet loops over every declared value (an
      // endless loop for width 0 and a negative count) and emits those that fit its array.
      const declared = (header >>> 1) * 8;
      if (seen + declared > limit) throw tooLong('bit-packed', declared);
      const runStart = pos;
      if (page.need(pos + 1)) pos++;
      else if ((1 << width) - 1) throw new EndOfPage();
      const extra = declared > 0 ? Math.max(0, Math.ceil((declared * width) / 8) - 1) : 0;
      if (!page.need(pos + extra)) throw new EndOfPage();
      pos += extra;
      const emitted = Math.min(declared, Math.max(0, size - seen));
      if (match !== undefined) matches += countPacked(page.bytes, runStart, width, emitted, match);
      seen += emitted;
    } else {
      const count = header >>> 1;
      if (seen + count > limit) throw tooLong('RLE', count);
      const valueBytes = (width + 7) >> 3;
      if (!page.need(pos + valueBytes)) throw new EndOfPage();
      let value = 0;
      for (let i = 0; i < valueBytes; i++) {
        value |= (page.bytes[pos + i] as number) << (i << 3);
      }
      pos += valueBytes;
      if (value === match) matches += count;
      seen += count;
      size = Math.max(size, seen);
    }
  }
  return { end: start + length, matches };
}

/** Values equal to `match` among the first `count` of a bit-packed run (LSB first). */
function countPacked(
  bytes: Uint8Array,
  start: number,
  width: number,
  count: number,
  match: number,
): number {
  if (width === 0) return match === 0 ? count : 0;
  let matches = 0;
  let bit = start * 8;
  for (let i = 0; i < count; i++) {
    let value = 0;
    for (let got = 0; got < width; ) {
      const byte = bytes[bit >> 3] ?? 0;
      const offset = bit & 7;
      const take = Math.min(8 - offset, width - got);
      value += ((byte >> offset) & ((1 << take) - 1)) * 2 ** got;
      got += take;
      bit += take;
    }
    if (value === match) matches++;
  }
  return matches;
}

/**
 * A reader over a page's values for the DELTA walks: every read that would leave the page is
 * refused (hyparquet's own reads there would throw, but only after allocations sized by the
 * numbers read before).
 */
class ValueCursor {
  constructor(
    readonly page: PageBytes,
    public pos: number,
    readonly what: string,
  ) {}

  /** Ensures bytes [pos, pos + n) are in the page. */
  need(n: number, part: string): void {
    if (this.pos < 0 || !this.page.need(this.pos + n)) {
      throw new OutOfBounds(
        `${this.what} inside its page (${this.page.length} bytes)`,
        `${part} of ${n} bytes at byte ${this.pos}`,
      );
    }
  }

  /** The varint's bytes, at most {@link MAX_DELTA_VARINT_BYTES}; returns its first byte's position. */
  private varintBytes(part: string): number {
    const start = this.pos;
    for (;;) {
      this.need(1, part);
      const b = this.page.bytes[this.pos++] as number;
      if ((b & 0x80) === 0) return start;
      if (this.pos - start >= MAX_DELTA_VARINT_BYTES) {
        throw new OutOfBounds(
          `${this.what} with varints of at most ${MAX_DELTA_VARINT_BYTES} bytes`,
          `a longer ${part} at byte ${start}`,
        );
      }
    }
  }

  /** An unsigned varint's exact value (below 2^70, all a 10-byte varint holds). */
  unsigned(part: string): number {
    const start = this.varintBytes(part);
    let value = 0;
    for (let i = start; i < this.pos; i++) {
      value += ((this.page.bytes[i] as number) & 0x7f) * 2 ** (7 * (i - start));
    }
    return value;
  }

  /** hyparquet's `readVarInt`: 32 bits, higher groups wrap (JavaScript masks shift counts). */
  private int32Bits(part: string): { low: number; start: number } {
    const start = this.varintBytes(part);
    let low = 0;
    for (let i = start; i < this.pos; i++) {
      low |= ((this.page.bytes[i] as number) & 0x7f) << (7 * (i - start));
    }
    return { low, start };
  }

  /** hyparquet's `readZigZag` (a DELTA stream's first value, on its INT32 path). */
  zigzag32(part: string): number {
    const { low } = this.int32Bits(part);
    return (low >>> 1) ^ -(low & 1);
  }

  /** hyparquet's `readZigZagInt33` (a block's min delta on its INT32 path). */
  zigzag33(part: string): number {
    const { low, start } = this.int32Bits(part);
    const high = this.pos - start === 5 ? ((this.page.bytes[start + 4] as number) >>> 4) & 1 : 0;
    return ((low >>> 1) | (high << 31)) ^ -(low & 1);
  }
}

/**
 * Walks one DELTA_BINARY_PACKED stream as hyparquet's `deltaBinaryUnpack` reads `count` values:
 * header within bounds (block size a multiple of 128 up to {@link MAX_DELTA_BLOCK}, miniblocks
 * dividing it into multiples of 32 values, a total of at most `declared` values), every bit
 * width hyparquet uses at most 64 and every miniblock it reads inside the page. With `onValue`,
 * decodes the values as hyparquet's INT32 path does (the lengths of the byte-array encodings).
 * Leaves `cursor` where hyparquet leaves its reader.
 */
function walkDeltaBinaryPacked(
  cursor: ValueCursor,
  count: number,
  declared: number,
  onValue?: (value: number, index: number) => void,
): void {
  const at = cursor.pos;
  const fail = (expected: string, got: string): OutOfBounds =>
    new OutOfBounds(
      `${cursor.what}: ${expected}`,
      `${got} (DELTA_BINARY_PACKED header at byte ${at})`,
    );
  const blockSize = cursor.unsigned('block size');
  if (blockSize < 128 || blockSize > MAX_DELTA_BLOCK || blockSize % 128 !== 0) {
    throw fail(`a block size that is a multiple of 128 up to ${MAX_DELTA_BLOCK}`, `${blockSize}`);
  }
  const miniblocks = cursor.unsigned('miniblock count');
  const perMiniblock = blockSize / miniblocks;
  if (miniblocks < 1 || !Number.isInteger(perMiniblock) || perMiniblock % 32 !== 0) {
    throw fail(
      `miniblocks dividing the block of ${blockSize} into multiples of 32 values`,
      `${miniblocks} miniblocks`,
    );
  }
  const total = cursor.unsigned('value count');
  if (total > declared) {
    throw fail(`at most the ${declared} values its page declares`, `a value count of ${total}`);
  }
  let value = cursor.zigzag32('first value');
  if (count <= 0) return;
  onValue?.(value, 0);
  let produced = 1;
  const { page } = cursor;
  while (produced < count) {
    const minDelta = cursor.zigzag33('min delta');
    cursor.need(miniblocks, `${miniblocks} miniblock bit widths`);
    const widths = cursor.pos;
    cursor.pos += miniblocks;
    for (let i = 0; i < miniblocks && produced < count; i++) {
      const width = page.bytes[widths + i] as number;
      if (width > 64) {
        throw fail('bit widths of at most 64', `a bit width of ${width} (byte ${widths + i})`);
      }
      const bytes = (perMiniblock * width) / 8;
      cursor.need(bytes, `a miniblock of ${perMiniblock} values at bit width ${width}`);
      const n = Math.min(perMiniblock, count - produced);
      if (onValue) {
        // hyparquet's deltaBinaryUnpackInt32: LSB first, bits past 32 vanish, int32 wrapping.
        let offset = cursor.pos;
        let bitOffset = 0;
        for (let j = 0; j < n; j++) {
          let residual = 0;
          for (let bitsRead = 0; bitsRead < width; ) {
            const take = Math.min(8 - bitOffset, width - bitsRead);
            if (bitsRead < 32) {
              residual |=
                (((page.bytes[offset] as number) >>> bitOffset) & ((1 << take) - 1)) << bitsRead;
            }
            bitsRead += take;
            bitOffset += take;
            if (bitOffset === 8) {
              bitOffset = 0;
              offset++;
            }
          }
          value = (value + minDelta + residual) | 0;
          onValue(value, produced + j);
        }
      }
      cursor.pos += bytes;
      produced += n;
    }
  }
}

/**
 * The values of a DELTA_* or BYTE_STREAM_SPLIT page, from `pos` of its (decoded) bytes, as
 * hyparquet's `readDataPage` / `readDataPageV2` decode `count` of them (see
 * {@link walkDeltaBinaryPacked}); for the byte-array encodings also every length non-negative,
 * every prefix at most its previous value's length, the bytes they cover inside the page and
 * the bytes prefixes add within {@link DELTA_PREFIX_RATIO}. A BYTE_STREAM_SPLIT page must hold
 * `count` values of its type's width.
 */
function walkValueEncoding(
  encoding: number,
  page: PageBytes,
  pos: number,
  count: number,
  declared: number,
  column: ColumnLevels,
): void {
  if (encoding === ALP) {
    throw new OutOfBounds(
      'a value encoding this loader checks (PLAIN, dictionary, RLE, DELTA_*, BYTE_STREAM_SPLIT); re-save the file with pyarrow defaults',
      'ALP',
    );
  }
  // hyparquet throws itself when sizing its output from a negative count.
  if (count < 0) return;
  if (encoding === DELTA_BINARY_PACKED) {
    walkDeltaBinaryPacked(
      new ValueCursor(page, pos, 'DELTA_BINARY_PACKED values'),
      count,
      declared,
    );
  } else if (encoding === DELTA_LENGTH_BYTE_ARRAY) {
    const cursor = new ValueCursor(page, pos, 'DELTA_LENGTH_BYTE_ARRAY values');
    let bytes = 0;
    walkDeltaBinaryPacked(cursor, count, declared, (length, index) => {
      if (length < 0) {
        throw new OutOfBounds(
          'DELTA_LENGTH_BYTE_ARRAY lengths of at least 0',
          `a length of ${length} (value ${index})`,
        );
      }
      bytes += length;
    });
    const left = page.length - cursor.pos;
    if (bytes > left) {
      throw new OutOfBounds(
        `DELTA_LENGTH_BYTE_ARRAY lengths covering at most the ${left} bytes after them`,
        `lengths adding up to ${bytes} bytes`,
      );
    }
  } else if (encoding === DELTA_BYTE_ARRAY) {
    const cursor = new ValueCursor(page, pos, 'DELTA_BYTE_ARRAY prefix lengths');
    // As hyparquet holds them (count ≤ MAX_PAGE_VALUES + RUN_PADDING: at most 64 MiB).
    const prefixes = new Int32Array(count);
    walkDeltaBinaryPacked(cursor, count, declared, (prefix, index) => {
      prefixes[index] = prefix;
    });
    const suffixes = new ValueCursor(page, cursor.pos, 'DELTA_BYTE_ARRAY suffix lengths');
    const maxPrefixed = Math.min(
      MAX_PAGE_BYTES,
      Math.max(DELTA_PREFIX_RATIO * page.length, MIN_PREFIXED_BYTES),
    );
    let previous = 0;
    let suffixBytes = 0;
    let prefixedBytes = 0;
    walkDeltaBinaryPacked(suffixes, count, declared, (suffix, index) => {
      const prefix = prefixes[index] as number;
      if (prefix < 0 || suffix < 0 || prefix > previous) {
        throw new OutOfBounds(
          "DELTA_BYTE_ARRAY prefix and suffix lengths of at least 0, each prefix at most the previous value's length",
          `prefix ${prefix} and suffix ${suffix} for value ${index} (the previous value has ${previous} bytes)`,
        );
      }
      previous = prefix + suffix;
      suffixBytes += suffix;
      if (prefix > 0) prefixedBytes += previous;
      if (prefixedBytes > maxPrefixed) {
        throw new OutOfBounds(
          `DELTA_BYTE_ARRAY values sharing prefixes decoding to at most ${maxPrefixed} bytes (${DELTA_PREFIX_RATIO}× the page's ${page.length} bytes, at least ${MIN_PREFIXED_BYTES})`,
          `${prefixedBytes} bytes by value ${index}`,
        );
      }
    });
    const left = page.length - suffixes.pos;
    if (suffixBytes > left) {
      throw new OutOfBounds(
        `DELTA_BYTE_ARRAY suffix lengths covering at most the ${left} bytes after them`,
        `suffix lengths adding up to ${suffixBytes} bytes`,
      );
    }
  } else if (encoding === BYTE_STREAM_SPLIT) {
    const type = column.physicalType;
    const width =
      type === 'INT32' || type === 'FLOAT'
        ? 4
        : type === 'INT64' || type === 'DOUBLE'
          ? 8
          : type === 'FIXED_LEN_BYTE_ARRAY'
            ? (column.typeLength ?? 0)
            : 0;
    // hyparquet refuses other types, and a missing type_length, before allocating.
    if (width <= 0) return;
    const left = page.length - pos;
    if (count * width > left) {
      throw new OutOfBounds(
        `BYTE_STREAM_SPLIT values inside their page (${left} bytes)`,
        `${count} values of ${width} bytes`,
      );
    }
  }
}

/**
 * The decoded bytes of a page as hyparquet's `decompressPage` produces them, for the codecs it
 * reads without plug-ins; undefined where it throws itself (another codec, a size mismatch).
 */
function pageBytes(body: Uint8Array, size: number, codec: string): PageBytes | undefined {
  if (codec === 'UNCOMPRESSED') return body.length === size ? plainBytes(body) : undefined;
  return codec === 'SNAPPY' ? new SnappyBytes(body, size) : undefined;
}

const isDictionaryLike = (encoding: number): boolean =>
  encoding === PLAIN_DICTIONARY || encoding === RLE_DICTIONARY || encoding === RLE;

/** The level and index streams of one data page, as hyparquet's `readDataPage` reads them. */
function walkDataPageV1(header: DataPageV1, page: PageBytes, column: ColumnLevels): void {
  let pos = 0;
  const { numValues } = header;
  if (column.pathLength > 1 && column.maxRepetitionLevel > 0) {
    const width = bitWidthOf(column.maxRepetitionLevel);
    pos = walkHybrid(page, pos, width, numValues, undefined, 'repetition-level runs').end;
  }
  let nonNull = numValues;
  if (column.maxDefinitionLevel > 0) {
    const width = bitWidthOf(column.maxDefinitionLevel);
    const levels = walkHybrid(
      page,
      pos,
      width,
      numValues,
      undefined,
      'definition-level runs',
      column.maxDefinitionLevel,
    );
    pos = levels.end;
    nonNull = levels.matches;
  }
  if (!isDictionaryLike(header.encoding)) {
    walkValueEncoding(header.encoding, page, pos, nonNull, numValues, column);
    return;
  }
  const boolean = column.physicalType === 'BOOLEAN';
  let width = 1;
  if (!boolean) {
    if (pos < 0 || !page.need(pos + 1)) throw new EndOfPage();
    width = page.bytes[pos++] as number;
  }
  if (width === 0) return;
  const what = boolean ? 'RLE boolean runs' : 'dictionary-index runs';
  walkHybrid(page, pos, width, nonNull, boolean ? undefined : page.length - pos, what);
}

/** The bytes of a v2 page's values as hyparquet decodes them (levels stay uncompressed before them). */
function valuesV2(
  header: DataPageV2,
  body: Uint8Array,
  uncompressedSize: number,
  codec: string,
  column: ColumnLevels,
): PageBytes | undefined {
  // hyparquet skips the definition levels only when the column has some.
  const start =
    header.repetitionLevelsLength +
    (column.maxDefinitionLevel > 0 ? header.definitionLevelsLength : 0);
  const values = body.subarray(start);
  const size = uncompressedSize - header.definitionLevelsLength - header.repetitionLevelsLength;
  return header.isCompressed && size ? pageBytes(values, size, codec) : plainBytes(values);
}

/** The same for `readDataPageV2`, given the values' bytes from {@link valuesV2}. */
function walkDataPageV2(
  header: DataPageV2,
  body: Uint8Array,
  values: PageBytes | undefined,
  uncompressedSize: number,
  column: ColumnLevels,
): void {
  const { numValues, repetitionLevelsLength, definitionLevelsLength } = header;
  const raw = plainBytes(body);
  if (column.maxRepetitionLevel > 0) {
    const width = bitWidthOf(column.maxRepetitionLevel);
    walkHybrid(raw, 0, width, numValues, repetitionLevelsLength, 'repetition-level runs');
  }
  if (column.maxDefinitionLevel > 0) {
    const width = bitWidthOf(column.maxDefinitionLevel);
    const pos = repetitionLevelsLength;
    walkHybrid(raw, pos, width, numValues, definitionLevelsLength, 'definition-level runs');
  }
  const encoding = header.encoding;
  if (values === undefined) return;
  const nonNull = numValues - header.numNulls;
  if (encoding === RLE) {
    walkHybrid(values, 0, 1, nonNull, undefined, 'RLE boolean runs');
  } else if (encoding === PLAIN_DICTIONARY || encoding === RLE_DICTIONARY) {
    if (!values.need(1)) throw new EndOfPage();
    const valuesSize = uncompressedSize - definitionLevelsLength - repetitionLevelsLength;
    const width = values.bytes[0] as number;
    walkHybrid(values, 1, width, nonNull, valuesSize - 1, 'dictionary-index runs');
  } else {
    walkValueEncoding(encoding, values, 0, nonNull, numValues, column);
  }
}

/**
 * Checks every page of one column chunk (its bytes, from the dictionary or first data page to
 * the end): headers readable, sizes non-negative and inside the chunk, decompressed sizes
 * plausible for the codec, value counts within {@link MAX_PAGE_VALUES} and within the chunk's
 * declared total, v2 level lengths and null counts inside their page, every RLE /
 * bit-packed run within its page's value count, and DELTA_* / BYTE_STREAM_SPLIT values within
 * their bounds (see the file comment and {@link walkValueEncoding}). Returns the first
 * problem, or undefined.
 */
export function checkColumnChunkPages(
  chunk: Uint8Array,
  codec: string,
  declaredValues: number,
  column: ColumnLevels,
): PageProblem | undefined {
  let pos = 0;
  let values = 0;
  const withinBounds = 'page headers within bounds';
  for (let index = 0; pos < chunk.length; index++) {
    const problem = (expected: string, got: string): PageProblem => ({
      page: index,
      byte: pos,
      expected,
      got,
    });
    let page: PageHeaderSummary;
    try {
      page = readPageHeader(chunk, pos);
    } catch (error) {
      return problem(withinBounds, `an unreadable page header (${(error as Error).message})`);
    }
    const { compressedSize, uncompressedSize } = page;
    const numValues =
      page.type === DICTIONARY_PAGE
        ? (page.dictionaryPage?.numValues ?? 0)
        : page.type === DATA_PAGE_V2
          ? (page.dataPageV2?.numValues ?? 0)
          : (page.dataPage?.numValues ?? 0);
    const counts = [page.dataPage, page.dictionaryPage, page.dataPageV2].map(
      (h) => h?.numValues ?? 0,
    );
    if (compressedSize < 0 || uncompressedSize < 0 || counts.some((n) => n < 0)) {
      return problem(withinBounds, 'a page header with a negative size or count');
    }
    const maxBytes =
      codec === 'UNCOMPRESSED'
        ? compressedSize
        : codec === 'SNAPPY'
          ? SNAPPY_MAX_RATIO * compressedSize + 64
          : MAX_PAGE_BYTES;
    if (uncompressedSize > Math.min(maxBytes, MAX_PAGE_BYTES)) {
      return problem(
        withinBounds,
        `a page claiming ${uncompressedSize} bytes from ${compressedSize} ${codec} bytes`,
      );
    }
    const most = Math.max(...counts);
    if (most > MAX_PAGE_VALUES) {
      return problem(
        withinBounds,
        `a page claiming ${most} values (at most ${MAX_PAGE_VALUES} are read)`,
      );
    }
    const v2 = page.dataPageV2;
    if (v2) {
      const levels = v2.repetitionLevelsLength + v2.definitionLevelsLength;
      if (v2.repetitionLevelsLength < 0 || v2.definitionLevelsLength < 0) {
        return problem(withinBounds, 'a v2 page header with a negative level length');
      }
      if (levels > Math.min(compressedSize, uncompressedSize)) {
        return problem(
          withinBounds,
          `a v2 page with ${levels} bytes of levels in a page of ${compressedSize} bytes (${uncompressedSize} uncompressed)`,
        );
      }
      if (v2.numNulls < 0 || v2.numNulls > v2.numValues) {
        return problem(
          `between 0 and num_values (${v2.numValues}) nulls`,
          `num_nulls ${v2.numNulls} in a v2 page header`,
        );
      }
    }
    const bodyStart = pos + page.headerLength;
    const bodyEnd = bodyStart + compressedSize;
    if (bodyEnd > chunk.length) {
      return problem(withinBounds, 'a page running past the end of its column chunk');
    }
    values += numValues;
    const body = chunk.subarray(bodyStart, bodyEnd);
    // The bytes hyparquet decodes runs from (v1: the page; v2: the values after the levels),
    // decompressed only as far as the walk reads.
    try {
      if (page.type === DATA_PAGE && page.dataPage) {
        const decoded = pageBytes(body, uncompressedSize, codec);
        if (decoded) walkDataPageV1(page.dataPage, decoded, column);
      } else if (page.type === DATA_PAGE_V2 && v2) {
        const values = valuesV2(v2, body, uncompressedSize, codec, column);
        walkDataPageV2(v2, body, values, uncompressedSize, column);
      }
    } catch (error) {
      if (error instanceof OutOfBounds) return problem(error.expected, error.got);
      if (error instanceof BadSnappy) {
        return problem(`a snappy stream decoding to ${uncompressedSize} bytes`, error.message);
      }
      if (!(error instanceof EndOfPage)) throw error;
    }
    pos = bodyEnd;
  }
  // Dictionary pages count too, so allow the declared total plus the dictionary's entries.
  if (values > 2 * Math.max(declaredValues, 0) + MAX_PAGE_VALUES) {
    return {
      page: 0,
      byte: 0,
      expected: withinBounds,
      got: `pages holding ${values} values for a column chunk declaring ${declaredValues}`,
    };
  }
  return undefined;
}
