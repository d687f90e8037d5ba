// Bounds on the page headers of a parquet file, checked before hyparquet decodes anything.
// hyparquet sizes its arrays from each page header (`new Array(num_values)`,
// `new Uint8Array(uncompressed_page_size)`) without checking them, so one flipped byte in a page
// header made it grow an array to 145 million elements: seconds of work, or a V8 "invalid size"
// abort that no try/catch can stop (found by fuzzing). Page headers are Thrift compact structs;
// this reader walks only the fields it needs and skips the rest.

/** Most values one page may declare: far above real pages (≤ 1 MB, ≤ ~1M values). */
export const MAX_PAGE_VALUES = 1 << 24;
/** Most bytes one page may decompress to. */
export const MAX_PAGE_BYTES = 1 << 30;
/** Snappy's best ratio is under 22:1 (a 3-byte copy of 64 bytes); a larger claim is a lie. */
const SNAPPY_MAX_RATIO = 22;

export interface PageHeaderSummary {
  /** Bytes of the header itself. */
  headerLength: number;
  uncompressedSize: number;
  compressedSize: number;
  /** num_values of the data, data v2 or dictionary page header. */
  numValues: number;
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

  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      if (shift < 53) result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 70) throw new Error('varint longer than 10 bytes');
    }
  }

  zigzag(): number {
    const n = this.varint();
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
      id = delta === 0 ? this.zigzag() : id + delta;
      if (!onField(id, type)) this.skip(type, depth);
    }
  }
}

/** Reads the sizes and value count of the page header at `start`. Throws on malformed bytes. */
export function readPageHeader(bytes: Uint8Array, start: number): PageHeaderSummary {
  const cursor = new ThriftCursor(bytes, start);
  let uncompressedSize = 0;
  let compressedSize = 0;
  let numValues = 0;
  cursor.struct((id, type) => {
    if (id === 2 && type === 5) uncompressedSize = cursor.zigzag();
    else if (id === 3 && type === 5) compressedSize = cursor.zigzag();
    else if ((id === 5 || id === 7 || id === 8) && type === 12) {
      cursor.struct((inner, innerType) => {
        if (inner !== 1 || innerType !== 5) return false;
        numValues = cursor.zigzag();
        return true;
      }, 1);
    } else return false;
    return true;
  }, 0);
  return { headerLength: cursor.pos - start, uncompressedSize, compressedSize, numValues };
}

/**
 * Checks every page header of one column chunk (its bytes, from the dictionary or first data
 * page to the end): sizes non-negative and inside the chunk, decompressed sizes plausible for
 * the codec, value counts within {@link MAX_PAGE_VALUES} and within the chunk's declared total.
 * Returns a description of the first violation, or undefined.
 */
export function checkPageHeaders(
  chunk: Uint8Array,
  codec: string,
  declaredValues: number,
): string | undefined {
  let pos = 0;
  let values = 0;
  while (pos < chunk.length) {
    let page: PageHeaderSummary;
    try {
      page = readPageHeader(chunk, pos);
    } catch (error) {
      return `an unreadable page header at byte ${pos} of the column chunk (${(error as Error).message})`;
    }
    const { compressedSize, uncompressedSize, numValues } = page;
    if (compressedSize < 0 || uncompressedSize < 0 || numValues < 0) {
      return `a page header with a negative size or count at byte ${pos}`;
    }
    const maxBytes =
      codec === 'UNCOMPRESSED'
        ? compressedSize
        : codec === 'SNAPPY'
          ? SNAPPY_MAX_RATIO * compressedSize + 64
          : MAX_PAGE_BYTES;
    if (uncompressedSize > Math.min(maxBytes, MAX_PAGE_BYTES)) {
      return `a page claiming ${uncompressedSize} bytes from ${compressedSize} ${codec} bytes`;
    }
    if (numValues > MAX_PAGE_VALUES) {
      return `a page claiming ${numValues} values (at most ${MAX_PAGE_VALUES} are read)`;
    }
    values += numValues;
    pos += page.headerLength + compressedSize;
    if (pos > chunk.length) return `a page running past the end of its column chunk`;
  }
  // Dictionary pages count too, so allow the declared total plus the dictionary's entries.
  if (values > 2 * Math.max(declaredValues, 0) + MAX_PAGE_VALUES) {
    return `pages holding ${values} values for a column chunk declaring ${declaredValues}`;
  }
  return undefined;
}
