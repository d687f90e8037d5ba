// Issue 11 fuzzing: mutated jsonl / json / csv / parquet files (byte flips, truncation, inserted
// quotes and newlines, huge numbers, deep nesting, invalid UTF-8, BOMs) given to the loaders end
// only in DatasetsError, quickly. CI runs the base counts; QLORA_FUZZ_RUNS multiplies them
// (tools/fuzz/run.ts runs ≥ 10,000 per format).

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePath } from '@qlora/test-utils';
import fc from 'fast-check';
import { parquetMetadata, snappyUncompress } from 'hyparquet';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  expectTypedAsync,
  FUZZ_SEED,
  fuzzRuns,
  mutatedBytesArb,
  mutatedJsonArb,
} from '../../../tools/fuzz/mutate';
import { DATASET_SEEDS } from '../../../tools/fuzz/seeds';
import { readPageHeader, snappyDecompress } from './_parquet-pages';
import { makeBatches } from './batch';
import { loadAlpaca, loadGsm8k, loadHellaswag, loadMmluCsv } from './datasets';
import { DatasetsError } from './errors';
import { loadRecords } from './load';
import { mixDatasets, sampleSubset } from './random';
import { gsm8kRecordSchema, mmluParquetSchema } from './schemas';

const TYPED = [DatasetsError] as const;
const encoder = new TextEncoder();
const temp = mkdtempSync(join(tmpdir(), 'datasets-fuzz-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

/** The campaign's parquet seed files (pyarrow-written, snappy, DataPage v1). */
const PARQUET_SEEDS = ['synthetic_gsm8k.parquet', 'synthetic_mmlu.parquet'].map(
  (f) => new Uint8Array(readFileSync(fixturePath('datasets', f))),
);

interface FormatCase {
  name: string;
  file: string;
  seeds: Uint8Array[];
  load: (path: string) => Promise<unknown>;
}

const FORMAT_CASES: FormatCase[] = [
  {
    name: 'jsonl (loadGsm8k)',
    file: 'case.jsonl',
    seeds: [encoder.encode(DATASET_SEEDS.gsm8kJsonl)],
    load: (path) => loadGsm8k(path),
  },
  {
    name: 'jsonl, skipping bad records',
    file: 'case.jsonl',
    seeds: [encoder.encode(DATASET_SEEDS.gsm8kJsonl)],
    load: (path) => loadRecords(path, gsm8kRecordSchema, { onInvalid: 'skip' }),
  },
  {
    name: 'json array (loadAlpaca)',
    file: 'case.json',
    seeds: [encoder.encode(DATASET_SEEDS.alpacaJson)],
    load: (path) => loadAlpaca(path),
  },
  {
    name: 'csv (loadMmluCsv)',
    file: 'case_test.csv',
    seeds: [encoder.encode(DATASET_SEEDS.mmluCsv)],
    load: (path) => loadMmluCsv(path),
  },
  {
    name: 'jsonl (loadHellaswag, raw or preprocessed)',
    file: 'case.jsonl',
    seeds: [DATASET_SEEDS.hellaswagPreprocessedJsonl, DATASET_SEEDS.hellaswagRawJsonl].map((t) =>
      encoder.encode(t),
    ),
    load: (path) => loadHellaswag(path),
  },
  {
    name: 'parquet (loadRecords)',
    file: 'case.parquet',
    seeds: PARQUET_SEEDS,
    load: async (path) => {
      await loadRecords(path, mmluParquetSchema, { onInvalid: 'skip' });
      await loadRecords(path, gsm8kRecordSchema, { onInvalid: 'skip' });
    },
  },
];

describe('fuzz: dataset loaders on mutated files', () => {
  let n = 0;
  it('every seed file loads as it is (so mutations start from valid input)', async () => {
    for (const format of FORMAT_CASES) {
      for (const seed of format.seeds) {
        const path = join(temp, `seed-${n++}-${format.file}`);
        writeFileSync(path, seed);
        await format.load(path);
      }
    }
  });

  for (const format of FORMAT_CASES) {
    const runs = fuzzRuns(format.file.endsWith('.parquet') ? 300 : 200);
    it(`${format.name}: ${runs} cases`, async () => {
      await fc.assert(
        fc.asyncProperty(mutatedBytesArb(format.seeds), async (bytes) => {
          const path = join(temp, `${n++}-${format.file}`);
          writeFileSync(path, bytes);
          await expectTypedAsync(TYPED, () => format.load(path));
          // Removed at once: a read hyparquet left in flight after an error used to reject
          // unhandled here (ENOENT), which crashes a Node process.
          rmSync(path);
        }),
        { seed: FUZZ_SEED, numRuns: runs },
      );
    });
  }

  it(`json records edited structurally (hostile types, huge numbers, deep nesting, __proto__), ${fuzzRuns(200)} cases`, async () => {
    const seed = JSON.parse(DATASET_SEEDS.alpacaJson) as unknown;
    await fc.assert(
      fc.asyncProperty(mutatedJsonArb([seed]), async (value) => {
        const path = join(temp, `${n++}-edited.json`);
        writeFileSync(path, JSON.stringify(value) ?? '');
        await expectTypedAsync(TYPED, () => loadAlpaca(path));
        rmSync(path);
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(200) },
    );
  });
});

/** Case `index` of the campaign's parquet mutations (same seed files, same seed). */
function campaignCase(index: number): Uint8Array {
  return fc.sample(mutatedBytesArb(PARQUET_SEEDS), { seed: FUZZ_SEED, numRuns: index + 1 })[
    index
  ] as Uint8Array;
}

async function errorOf(promise: Promise<unknown>): Promise<DatasetsError> {
  try {
    await promise;
  } catch (error) {
    return error as DatasetsError;
  }
  throw new Error('expected a rejection');
}

describe('regressions and limits', () => {
  it('a parquet row group with a column chunk outside the schema is a DatasetsError, not a process crash', async () => {
    // Case 122 of the campaign's parquet mutations: one flipped byte renames a column chunk to
    // `choices.list.elemenQ`; hyparquet read it without awaiting it and its snappy error became
    // an unhandled rejection.
    const path = join(temp, 'unknown-column.parquet');
    writeFileSync(path, campaignCase(122));
    await expect(loadRecords(path, mmluParquetSchema)).rejects.toThrow(
      /row group 1: expected one column chunk per schema column .*got an unknown column "choices\.list\.elemenQ"/,
    );
  });

  it('a parquet page header with a corrupt field is refused before hyparquet sizes arrays from it', async () => {
    // Case 1585 of the campaign: 8 bytes inserted into row group 1's "choices" chunk shift the
    // page headers after them; hyparquet grew an array toward 145 million elements (seconds, or
    // a V8 abort). Now the first bad page is refused (here a run inside the shifted page).
    const bytes = campaignCase(1585);
    const path = join(temp, 'bad-page.parquet');
    writeFileSync(path, bytes);
    const start = performance.now();
    await expect(loadRecords(path, mmluParquetSchema)).rejects.toThrow(
      /row group 1 column "choices\.list\.element" page 1 \(byte \d+\): expected definition-level runs covering at most 39 values/,
    );
    expect(performance.now() - start).toBeLessThan(500);
  });

  it('a hostile RLE run inside a snappy data page is refused before hyparquet writes past its array', async () => {
    // Case 6161 of the campaign (`tools/fuzz/run.ts --only parquet`): the dictionary-index
    // stream of a 10-value page of "answer" declares an RLE run of 720,726,777 values. hyparquet's
    // readRle wrote them all, growing its array until V8 aborted the process
    // ("Fatal JavaScript invalid size error"), which no try/catch can stop.
    const path = join(temp, 'hostile-run.parquet');
    writeFileSync(path, campaignCase(6161));
    const start = performance.now();
    const error = await errorOf(loadRecords(path, mmluParquetSchema, { onInvalid: 'skip' }));
    expect(performance.now() - start).toBeLessThan(500);
    expect(error).toBeInstanceOf(DatasetsError);
    expect(error.code).toBe('PARSE_FAILED');
    expect(error.file).toBe(path);
    expect(error.rowGroup).toBe(2);
    expect(error.message).toMatch(
      /row group 2 column "answer" page 1 \(byte \d+\): expected dictionary-index runs covering at most 17 values \(the page declares 10, \+ 7 padding\), got 720726777 \(an RLE run of 720726777 values after 0\)/,
    );
  });

  it('a record whose own "__proto__" key holds the fields is not read through it', async () => {
    const path = join(temp, 'proto.jsonl');
    writeFileSync(path, '{"__proto__": {"question": "q", "answer": "a"}}\n');
    const { records, skippedCount } = await loadRecords(path, gsm8kRecordSchema, {
      onInvalid: 'skip',
    });
    expect(records).toEqual([]);
    expect(skippedCount).toBe(1);
  });

  it('a CSV header cell "__proto__" is kept as a column', async () => {
    // Before the fix `value[name] =` dropped it (assigning a string to __proto__ is a no-op).
    const path = join(temp, 'proto.csv');
    writeFileSync(path, '__proto__,answer\nx,y\n');
    const { z } = await import('zod');
    const { records } = await loadRecords(path, z.unknown());
    expect(Object.keys(records[0] ?? {})).toEqual(['__proto__', 'answer']);
    expect(Object.getPrototypeOf(records[0])).toBe(Object.prototype);
  });

  it('empty inputs: makeBatches says which setting to change; sampleSubset / mixDatasets say n', () => {
    expect(() => makeBatches([], { batchSize: 4, padTokenId: 0 })).toThrow(
      /expected at least one sequence, got 0[\s\S]*Hint/,
    );
    expect(() =>
      makeBatches([{ inputIds: [1], labels: [1] }], {
        batchSize: 4,
        padTokenId: 0,
        dropLast: true,
      }),
    ).toThrow(/dropLast/);
    expect(sampleSubset([], 0, 1)).toEqual([]);
    expect(() => sampleSubset([], 1, 1)).toThrow(/cannot sample 1 of 0 records[\s\S]*Hint/);
    expect(() => mixDatasets([{ records: [], weight: 1 }], { seed: 1, size: 3 })).toThrow(
      /too small[\s\S]*Hint: lower its weight or size/,
    );
  });

  it('an empty file loads as no records (the named loaders say so when a record is needed)', async () => {
    for (const [file, load] of [
      ['empty.jsonl', (p: string) => loadGsm8k(p)],
      ['empty_test.csv', (p: string) => loadMmluCsv(p)],
    ] as const) {
      const path = join(temp, file);
      writeFileSync(path, '');
      await expect(load(path)).rejects.toThrow(/expected at least one record, got 0[\s\S]*Hint/);
    }
    writeFileSync(join(temp, 'empty.json'), '');
    await expect(loadAlpaca(join(temp, 'empty.json'))).rejects.toThrow(
      /expected a JSON array of records, got invalid JSON/,
    );
    expect(await loadGsm8k(join(temp, 'empty.jsonl'), { limit: 0 })).toEqual([]);
  });
});

// --- Hostile pages built byte by byte ---------------------------------------------------------
// A minimal parquet writer (Thrift compact protocol, one optional INT32 column "answer", one row
// group, uncompressed, a PLAIN dictionary of [7, 9] and one data page) so each RLE / bit-packed
// stream hyparquet decodes can be given a hostile run header directly.

type ThriftField = [id: number, type: number, payload: number[]];

const varint = (n: number): number[] => {
  const out: number[] = [];
  let rest = n;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
  return out;
};
const zigzag = (n: number): number => (n >= 0 ? 2 * n : -2 * n - 1);
const i32 = (id: number, n: number): ThriftField => [id, 5, varint(zigzag(n))];
const i64 = (id: number, n: number): ThriftField => [id, 6, varint(zigzag(n))];
const binary = (text: string): number[] => [...varint(text.length), ...encoder.encode(text)];
const list = (id: number, elementType: number, items: number[][]): ThriftField => [
  id,
  9,
  [(items.length << 4) | elementType, ...items.flat()],
];
const struct = (fields: ThriftField[]): number[] => {
  const out: number[] = [];
  let last = 0;
  for (const [id, type, payload] of fields) {
    out.push(((id - last) << 4) | type, ...payload);
    last = id;
  }
  out.push(0);
  return out;
};
const field = (id: number, fields: ThriftField[]): ThriftField => [id, 12, struct(fields)];
const u32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];

/** A snappy stream of literals only (valid: any decoder must return `bytes`). */
function snappyLiterals(bytes: number[]): number[] {
  const out = varint(bytes.length);
  for (let at = 0; at < bytes.length; at += 60) {
    const piece = bytes.slice(at, at + 60);
    out.push((piece.length - 1) << 2, ...piece);
  }
  return out;
}

/**
 * A one-column parquet file: dictionary page [7, 9], then one data page (v1 or v2). With
 * `snappy`, page data is snappy-compressed (v2: the values; its levels stay raw).
 */
/**
 * A one-column, one-row-group parquet file around the given column chunk bytes (an optional
 * dictionary page, then the data page): `PAR1`, chunk, thrift footer, footer length, `PAR1`.
 */
function parquetFile(column: {
  name: string;
  leaf: ThriftField[];
  physicalType: number;
  encodings: number[][];
  codec: number;
  rows: number;
  dictionary: number[];
  data: number[];
}): Uint8Array {
  const chunk = column.dictionary.length + column.data.length;
  const metaData: ThriftField[] = [
    i32(1, column.physicalType),
    list(2, 5, column.encodings),
    list(3, 8, [binary(column.name)]),
    i32(4, column.codec),
    i64(5, column.rows),
    i64(6, chunk),
    i64(7, chunk),
    i64(9, 4 + column.dictionary.length),
  ];
  if (column.dictionary.length > 0) metaData.push(i64(11, 4));
  const footer = struct([
    i32(1, 1),
    list(2, 12, [struct([[4, 8, binary('schema')], i32(5, 1)]), struct(column.leaf)]),
    i64(3, column.rows),
    list(4, 12, [
      struct([
        list(1, 12, [struct([i64(2, 4), field(3, metaData)])]),
        i64(2, chunk),
        i64(3, column.rows),
      ]),
    ]),
  ]);
  const magic = [...encoder.encode('PAR1')];
  return Uint8Array.from([
    ...magic,
    ...column.dictionary,
    ...column.data,
    ...footer,
    ...u32(footer.length),
    ...magic,
  ]);
}

function tinyParquet(page: {
  v2: boolean;
  rows: number;
  nulls?: number;
  levels: number[];
  indices: number[];
  /** Write the data page's compressed_page_size as an i64 (the spec says i32). */
  i64Size?: boolean;
  snappy?: boolean;
  /** The dictionary page's stored bytes, as given (8 bytes of [7, 9] when decoded). */
  dictionaryStream?: number[];
}): Uint8Array {
  const pack = (raw: number[]): number[] => (page.snappy ? snappyLiterals(raw) : raw);
  const dictionaryRaw = [...u32(7), ...u32(9)];
  const dictionaryBody = page.dictionaryStream ?? pack(dictionaryRaw);
  const dictionary = [
    ...struct([
      i32(1, 2), // DICTIONARY_PAGE
      i32(2, dictionaryRaw.length),
      i32(3, dictionaryBody.length),
      field(7, [i32(1, 2), i32(2, 0)]),
    ]),
    ...dictionaryBody,
  ];
  // v1: [u32 length][definition levels][bit width + indices]; v2: levels (length in the header), then indices.
  const dataRaw = page.v2
    ? [...page.levels, ...page.indices]
    : [...u32(page.levels.length), ...page.levels, ...page.indices];
  const dataBody = page.v2 ? [...page.levels, ...pack(page.indices)] : pack(dataRaw);
  const dataHeader = page.v2
    ? [
        i32(1, 3), // DATA_PAGE_V2
        i32(2, dataRaw.length),
        i32(3, dataBody.length),
        field(8, [
          i32(1, page.rows),
          i32(2, page.nulls ?? 0),
          i32(3, page.rows),
          i32(4, 8), // RLE_DICTIONARY
          i32(5, page.levels.length),
          i32(6, 0),
          [7, page.snappy ? 1 : 2, []], // is_compressed
        ]),
      ]
    : [
        i32(1, 0), // DATA_PAGE
        i32(2, dataRaw.length),
        page.i64Size ? i64(3, dataBody.length) : i32(3, dataBody.length),
        field(5, [i32(1, page.rows), i32(2, 8), i32(3, 3), i32(4, 3)]),
      ];
  const data = [...struct(dataHeader), ...dataBody];
  return parquetFile({
    name: 'answer',
    leaf: [i32(1, 1), i32(3, 1), [4, 8, binary('answer')]], // INT32, OPTIONAL
    physicalType: 1,
    encodings: [[0], [6], [16]], // PLAIN, RLE, RLE_DICTIONARY
    codec: page.snappy ? 1 : 0, // SNAPPY or UNCOMPRESSED
    rows: page.rows,
    dictionary,
    data,
  });
}

/** An RLE run header: `count` values of `value` (1-byte width). */
const rleRun = (count: number, value: number): number[] => [...varint(count * 2), value];
/** A bit-packed run header of `groups` groups of 8 (the packed bytes follow). */
const bitPackedHeader = (groups: number): number[] => varint(groups * 2 + 1);

describe('hostile RLE / bit-packed runs inside a data page', () => {
  const answers = z.object({ answer: z.number().nullable() });
  const load = async (bytes: Uint8Array, name: string) => {
    const path = join(temp, name);
    writeFileSync(path, bytes);
    const start = performance.now();
    const outcome = await loadRecords(path, answers).then(
      (result) => result.records,
      (error: unknown) => error as DatasetsError,
    );
    return { outcome, ms: performance.now() - start };
  };
  // Rows [7, null, 9, 7]: definition levels 1 0 1 1 bit-packed in one group (0b1101), then
  // dictionary indices 0 1 0 at width 1 (0b010).
  const levels = [...bitPackedHeader(1), 0b1101];
  const indices = [1, ...bitPackedHeader(1), 0b010];

  it.each([
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ])(
    'the hand-built file reads as [7, null, 9, 7] (DataPage v2: %s, snappy: %s)',
    async (v2, snappy) => {
      const { outcome } = await load(
        tinyParquet({ v2, rows: 4, nulls: 1, levels, indices, snappy }),
        `ok-${v2}-${snappy}.parquet`,
      );
      expect(outcome).toEqual([{ answer: 7 }, { answer: null }, { answer: 9 }, { answer: 7 }]);
    },
  );

  const cases: [name: string, v2: boolean, levels: number[], indices: number[], message: RegExp][] =
    [
      [
        'v1 definition levels: an RLE run of 145,000,000',
        false,
        rleRun(145_000_000, 1),
        indices,
        /page 1 \(byte \d+\): expected definition-level runs covering at most 11 values \(the page declares 4, \+ 7 padding\), got 145000000 \(an RLE run/,
      ],
      [
        'v1 dictionary indices: an RLE run of 2^31 - 1',
        false,
        levels,
        [1, ...rleRun(2 ** 31 - 1, 0)],
        /expected dictionary-index runs covering at most 10 values \(the page declares 3, \+ 7 padding\), got 2147483647/,
      ],
      [
        'v1 dictionary indices: a bit-packed run of 2^27 groups',
        false,
        levels,
        [1, ...bitPackedHeader(2 ** 27), 0],
        /expected dictionary-index runs covering at most 10 values .*got 1073741824 \(a bit-packed run/,
      ],
      [
        'v2 definition levels: an RLE run of 10^8',
        true,
        rleRun(100_000_000, 1),
        indices,
        /expected definition-level runs covering at most 11 values .*got 100000000/,
      ],
      [
        // Width 0 and a header whose count is negative in 32 bits: hyparquet's bit-packed loop
        // counts down from -8 and never reaches 0 (a hang, not an allocation).
        'v2 dictionary indices at bit width 0: a bit-packed header of 0xffffffff',
        true,
        levels,
        [0, 0xff, 0xff, 0xff, 0xff, 0x0f],
        /expected dictionary-index runs covering at most 10 values .*got 17179869176 \(a bit-packed run/,
      ],
    ];
  it.each(cases)(
    '%s: PARSE_FAILED naming file, column and page, < 200 ms',
    async (name, v2, lv, ix, message) => {
      const { outcome, ms } = await load(
        tinyParquet({ v2, rows: 4, nulls: 1, levels: lv, indices: ix }),
        `${name.replace(/\W+/g, '-')}.parquet`,
      );
      expect(outcome).toBeInstanceOf(DatasetsError);
      const error = outcome as DatasetsError;
      expect(error.code).toBe('PARSE_FAILED');
      expect(error.message).toContain(
        `${name.replace(/\W+/g, '-')}.parquet row group 0 column "answer" page 1`,
      );
      expect(error.message).toMatch(message);
      expect(ms).toBeLessThan(200);
    },
  );

  it('a v2 page header with a negative num_nulls is refused (hyparquet would size its index array from it)', async () => {
    const { outcome } = await load(
      tinyParquet({ v2: true, rows: 4, nulls: -100_000_000, levels, indices }),
      'nulls.parquet',
    );
    expect((outcome as DatasetsError).message).toMatch(
      /page 1 \(byte \d+\): expected between 0 and num_values \(4\) nulls, got num_nulls -100000000/,
    );
  });

  it('a page header field with the wrong Thrift type is refused (both readers must see one number)', async () => {
    // hyparquet reads any integer type; an i64 wider than 32 bits would be a different number.
    const bytes = tinyParquet({ v2: false, rows: 4, nulls: 1, levels, indices, i64Size: true });
    const { outcome } = await load(bytes, 'typed.parquet');
    expect((outcome as DatasetsError).message).toMatch(
      /page 1 \(byte \d+\): expected page headers within bounds, got an unreadable page header \(page header field compressed_page_size has Thrift type 6, expected an i32 \(5\)\)/,
    );
  });

  it('the hostile runs are caught inside snappy pages too (v1 levels, v2 indices)', async () => {
    const v1 = await load(
      tinyParquet({
        v2: false,
        rows: 4,
        nulls: 1,
        levels: rleRun(145_000_000, 1),
        indices,
        snappy: true,
      }),
      'snappy-v1.parquet',
    );
    expect((v1.outcome as DatasetsError).message).toMatch(/page 1 .*got 145000000 \(an RLE run/);
    const v2 = await load(
      tinyParquet({
        v2: true,
        rows: 4,
        nulls: 1,
        levels,
        indices: [1, ...rleRun(2 ** 30, 0)],
        snappy: true,
      }),
      'snappy-v2.parquet',
    );
    expect((v2.outcome as DatasetsError).message).toMatch(/dictionary-index runs .*got 1073741824/);
  });

  it('a snappy literal whose 4-byte length is negative in 32 bits is an error, not an endless loop', async () => {
    // hyparquet's own snappyUncompress moves its read position backwards on this literal and
    // never returns (8 bytes: length 8, tag 0xfc, length 0xfffffff0, 2 bytes). The loader hands
    // hyparquet its own decoder, which refuses it.
    const dictionaryStream = [8, 0xfc, 0xf0, 0xff, 0xff, 0xff, 0, 0];
    const { outcome, ms } = await load(
      tinyParquet({
        v2: false,
        rows: 4,
        nulls: 1,
        levels,
        indices,
        snappy: true,
        dictionaryStream,
      }),
      'snappy-loop.parquet',
    );
    expect(outcome).toBeInstanceOf(DatasetsError);
    expect((outcome as DatasetsError).code).toBe('PARSE_FAILED');
    expect((outcome as DatasetsError).message).toMatch(/row group 0 .*got a literal of -15 bytes/);
    expect(ms).toBeLessThan(200);
  });
});

describe('the snappy decoder handed to hyparquet decodes what hyparquet decodes', () => {
  const fixturePages = PARQUET_SEEDS.flatMap((file) => {
    const metadata = parquetMetadata(
      file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength) as ArrayBuffer,
    );
    return metadata.row_groups.flatMap((group) =>
      group.columns.flatMap((chunk) => {
        const meta = chunk.meta_data;
        if (!meta) return [];
        let pos = Number(meta.dictionary_page_offset || meta.data_page_offset);
        const end = pos + Number(meta.total_compressed_size);
        const pages: { stream: Uint8Array; size: number }[] = [];
        while (pos < end) {
          const header = readPageHeader(file, pos);
          const start = pos + header.headerLength;
          pages.push({
            stream: file.subarray(start, start + header.compressedSize),
            size: header.uncompressedSize,
          });
          pos = start + header.compressedSize;
        }
        return pages;
      }),
    );
  });
  const hyparquetDecode = (stream: Uint8Array, size: number): Uint8Array => {
    const output = new Uint8Array(size);
    snappyUncompress(stream, output);
    return output;
  };

  it(`every page of the pyarrow fixtures (${fixturePages.length} pages)`, () => {
    expect(fixturePages.length).toBe(36);
    for (const { stream, size } of fixturePages) {
      expect(snappyDecompress(stream, size)).toEqual(hyparquetDecode(stream, size));
    }
  });

  // Streams of every element form: literals (short and 1–2-byte lengths), copies with 1-, 2- and
  // 4-byte offsets, overlapping copies (offset < length: runs).
  const elementArb = fc.oneof(
    fc.record({ literal: fc.uint8Array({ minLength: 1, maxLength: 300 }) }),
    fc.record({
      form: fc.constantFrom(1, 2, 4),
      offset: fc.nat(),
      length: fc.integer({ min: 1, max: 64 }),
    }),
  );
  const streamArb = fc.array(elementArb, { minLength: 1, maxLength: 60 }).map((elements) => {
    const stream: number[] = [];
    const output: number[] = [];
    for (const element of elements) {
      if ('literal' in element || output.length === 0) {
        const bytes = 'literal' in element ? [...element.literal] : [1, 2, 3];
        const n = bytes.length - 1;
        if (n < 60) stream.push(n << 2);
        else if (n < 256) stream.push(60 << 2, n);
        else stream.push(61 << 2, n & 0xff, n >> 8);
        stream.push(...bytes);
        output.push(...bytes);
        continue;
      }
      const form = element.form;
      const length = form === 1 ? 4 + (element.length % 8) : element.length;
      const offset = 1 + (element.offset % Math.min(output.length, form === 1 ? 2047 : 65535));
      if (form === 1) stream.push(1 | ((length - 4) << 2) | ((offset >> 8) << 5), offset & 0xff);
      else if (form === 2) stream.push(2 | ((length - 1) << 2), offset & 0xff, offset >> 8);
      else stream.push(3 | ((length - 1) << 2), offset & 0xff, (offset >> 8) & 0xff, 0, 0);
      for (let i = 0; i < length; i++) output.push(output[output.length - offset] as number);
    }
    return {
      stream: Uint8Array.from([...varint(output.length), ...stream]),
      output: Uint8Array.from(output),
    };
  });

  it('generated streams of every element form: both decoders return the encoded bytes', () => {
    fc.assert(
      fc.property(streamArb, ({ stream, output }) => {
        expect(snappyDecompress(stream, output.length)).toEqual(output);
        expect(hyparquetDecode(stream, output.length)).toEqual(output);
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(300) },
    );
  });

  it('mutated fixture pages: whatever this decoder accepts, hyparquet decodes to the same bytes', () => {
    // Only accepted streams go to hyparquet's decoder: it may never return on the others.
    const pages = fixturePages.map((page) => page.stream);
    let accepted = 0;
    fc.assert(
      fc.property(mutatedBytesArb(pages), fc.nat(pages.length - 1), (stream, which) => {
        const size = (fixturePages[which] as { size: number }).size;
        let ours: Uint8Array;
        try {
          ours = snappyDecompress(stream, size);
        } catch (error) {
          expect((error as Error).message).not.toBe('');
          return;
        }
        accepted++;
        expect(hyparquetDecode(stream, size)).toEqual(ours);
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(300) },
    );
    expect(accepted).toBeGreaterThan(0);
  });
});

// --- Hostile DELTA_* / BYTE_STREAM_SPLIT pages built byte by byte -------------------------------
// One REQUIRED column, one uncompressed data page (v1 or v2) whose value bytes are given as they
// are, so each number hyparquet's `delta.js` / `byteStreamSplit` sizes an allocation or a loop by
// can be set directly.

const TYPES = { INT32: 1, INT64: 2, FLOAT: 4, BYTE_ARRAY: 6, FIXED_LEN_BYTE_ARRAY: 7 } as const;
const ENCODINGS = {
  DELTA_BINARY_PACKED: 5,
  DELTA_LENGTH_BYTE_ARRAY: 6,
  DELTA_BYTE_ARRAY: 7,
  BYTE_STREAM_SPLIT: 9,
  ALP: 10,
} as const;

function valuePageParquet(page: {
  v2: boolean;
  type: keyof typeof TYPES;
  typeLength?: number;
  encoding: keyof typeof ENCODINGS;
  rows: number;
  values: number[];
}): Uint8Array {
  const encoding = ENCODINGS[page.encoding];
  const size = page.values.length;
  const header = page.v2
    ? [
        i32(1, 3), // DATA_PAGE_V2
        i32(2, size),
        i32(3, size),
        field(8, [
          i32(1, page.rows),
          i32(2, 0),
          i32(3, page.rows),
          i32(4, encoding),
          i32(5, 0),
          i32(6, 0),
          [7, 2, []], // is_compressed: false
        ]),
      ]
    : [
        i32(1, 0), // DATA_PAGE
        i32(2, size),
        i32(3, size),
        field(5, [i32(1, page.rows), i32(2, encoding), i32(3, 3), i32(4, 3)]),
      ];
  const leaf: ThriftField[] = [i32(1, TYPES[page.type])];
  if (page.typeLength !== undefined) leaf.push(i32(2, page.typeLength));
  leaf.push(i32(3, 0), [4, 8, binary('value')]); // REQUIRED
  if (page.type === 'BYTE_ARRAY') leaf.push(i32(6, 0)); // UTF8
  return parquetFile({
    name: 'value',
    leaf,
    physicalType: TYPES[page.type],
    encodings: [varint(zigzag(encoding))],
    codec: 0, // UNCOMPRESSED
    rows: page.rows,
    dictionary: [],
    data: [...struct(header), ...page.values],
  });
}

const zigzagVarint = (n: number): number[] => varint(zigzag(n));

/** A DELTA_BINARY_PACKED stream with its header numbers and blocks given as they are. */
function deltaStream(stream: {
  blockSize?: number;
  miniblocks?: number;
  total: number;
  first: number;
  blocks?: { minDelta: number; widths: number[]; data: number[] }[];
}): number[] {
  const out = [
    ...varint(stream.blockSize ?? 128),
    ...varint(stream.miniblocks ?? 4),
    ...varint(stream.total),
    ...zigzagVarint(stream.first),
  ];
  for (const block of stream.blocks ?? []) {
    out.push(...zigzagVarint(block.minDelta), ...block.widths, ...block.data);
  }
  return out;
}

/** Packs `values` (int32) as writers do: blocks of 128, 4 miniblocks of 32, LSB first, padded. */
function deltaPack(values: number[]): number[] {
  const blocks: { minDelta: number; widths: number[]; data: number[] }[] = [];
  for (let start = 1; start < values.length; start += 128) {
    const deltas: number[] = [];
    for (let i = start; i < Math.min(start + 128, values.length); i++) {
      deltas.push((values[i] as number) - (values[i - 1] as number));
    }
    const minDelta = Math.min(...deltas);
    const widths: number[] = [];
    const data: number[] = [];
    for (let m = 0; m < 4; m++) {
      const mini = deltas.slice(m * 32, m * 32 + 32).map((d) => d - minDelta);
      const width = mini.length ? 32 - Math.clz32(Math.max(...mini)) : 0;
      widths.push(width);
      let bits = 0n;
      for (let j = 0; j < 32; j++) bits |= BigInt(mini[j] ?? 0) << BigInt(j * width);
      for (let b = 0; b < 4 * width; b++) data.push(Number((bits >> BigInt(8 * b)) & 0xffn));
    }
    blocks.push({ minDelta, widths, data });
  }
  return deltaStream({ total: values.length, first: values[0] ?? 0, blocks });
}

describe('hostile DELTA_* / BYTE_STREAM_SPLIT values inside a data page', () => {
  const load = async (bytes: Uint8Array, name: string) => {
    const path = join(temp, name);
    writeFileSync(path, bytes);
    const start = performance.now();
    const outcome = await loadRecords(path, z.unknown()).then(
      (result) => result.records,
      (error: unknown) => error as DatasetsError,
    );
    return { outcome, ms: performance.now() - start };
  };
  const text = (s: string): number[] => [...encoder.encode(s)];
  const words = ['apple', 'applesauce', 'apply', 'banana', 'band', 'bandana', '', 'ηθ'];
  const ints = Array.from({ length: 300 }, (_, i) =>
    i % 7 === 3 ? -(i ** 3) : i * 1000 + (i % 5),
  );
  const sharedPrefix = (a: string, b: string): number => {
    const x = encoder.encode(a);
    const y = encoder.encode(b);
    let n = 0;
    while (n < x.length && x[n] === y[n]) n++;
    return n;
  };

  it.each(['uncompressed', 'snappy'])(
    'hyparquet-writer files with every DELTA_* and BYTE_STREAM_SPLIT encoding load as written (%s)',
    async (codec) => {
      // tools/reference/datasets_delta_parquet.mjs: 300 rows, 2 row groups, several v2 pages per chunk.
      const { rows } = JSON.parse(
        readFileSync(fixturePath('datasets', 'delta_expected.json'), 'utf8'),
      ) as { rows: Record<string, unknown>[] };
      const { records } = await loadRecords(
        fixturePath('datasets', `delta_${codec}.parquet`),
        z.unknown(),
      );
      const asJson = JSON.parse(
        JSON.stringify(records, (_key, value) =>
          typeof value === 'bigint' ? String(value) : value,
        ),
      );
      expect(asJson).toEqual(rows);
    },
  );

  it(`mutated hyparquet-writer DELTA files end in DatasetsError or records, ${fuzzRuns(300)} cases`, async () => {
    const seeds = ['uncompressed', 'snappy'].map(
      (codec) => new Uint8Array(readFileSync(fixturePath('datasets', `delta_${codec}.parquet`))),
    );
    let n = 0;
    await fc.assert(
      fc.asyncProperty(mutatedBytesArb(seeds), async (bytes) => {
        const path = join(temp, `delta-${n++}.parquet`);
        writeFileSync(path, bytes);
        await expectTypedAsync(TYPED, () => loadRecords(path, z.unknown(), { onInvalid: 'skip' }));
        rmSync(path);
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(300) },
    );
  });

  it.each([false, true])(
    'hand-built valid pages read back their values (DataPage v2: %s)',
    async (v2) => {
      const dbp = await load(
        valuePageParquet({
          v2,
          type: 'INT32',
          encoding: 'DELTA_BINARY_PACKED',
          rows: ints.length,
          values: deltaPack(ints),
        }),
        `ok-dbp-${v2}.parquet`,
      );
      expect(dbp.outcome).toEqual(ints.map((value) => ({ value })));
      const dlba = await load(
        valuePageParquet({
          v2,
          type: 'BYTE_ARRAY',
          encoding: 'DELTA_LENGTH_BYTE_ARRAY',
          rows: words.length,
          values: [
            ...deltaPack(words.map((w) => encoder.encode(w).length)),
            ...words.flatMap(text),
          ],
        }),
        `ok-dlba-${v2}.parquet`,
      );
      expect(dlba.outcome).toEqual(words.map((value) => ({ value })));
      const prefixes = words.map((w, i) => (i ? sharedPrefix(words[i - 1] as string, w) : 0));
      const suffixes = words.map((w, i) => encoder.encode(w).subarray(prefixes[i]));
      const dba = await load(
        valuePageParquet({
          v2,
          type: 'BYTE_ARRAY',
          encoding: 'DELTA_BYTE_ARRAY',
          rows: words.length,
          values: [
            ...deltaPack(prefixes),
            ...deltaPack(suffixes.map((s) => s.length)),
            ...suffixes.flatMap((s) => [...s]),
          ],
        }),
        `ok-dba-${v2}.parquet`,
      );
      expect(dba.outcome).toEqual(words.map((value) => ({ value })));
      const floats = [1.5, -2.25, 1e-3, 3e7];
      const split = [0, 1, 2, 3].flatMap((b) =>
        floats.map((f) => new Uint8Array(Float32Array.of(f).buffer)[b] as number),
      );
      const bss = await load(
        valuePageParquet({
          v2,
          type: 'FLOAT',
          encoding: 'BYTE_STREAM_SPLIT',
          rows: 4,
          values: split,
        }),
        `ok-bss-${v2}.parquet`,
      );
      expect(bss.outcome).toEqual(floats.map((value) => ({ value: Math.fround(value) })));
    },
  );

  const block = (widths: number[], data: number[] = []) => ({ minDelta: 1, widths, data });
  type Page = Omit<Parameters<typeof valuePageParquet>[0], 'v2'>;
  const dbp = (values: number[], type: Page['type'] = 'INT64', rows = 4): Page => ({
    type,
    encoding: 'DELTA_BINARY_PACKED',
    rows,
    values,
  });
  const cases: [name: string, page: Page, message: RegExp][] = [
    [
      'DELTA_BINARY_PACKED block size 100 (not a multiple of 128)',
      dbp(deltaStream({ blockSize: 100, total: 4, first: 0 })),
      /expected DELTA_BINARY_PACKED values: a block size that is a multiple of 128 up to 65536, got 100 \(DELTA_BINARY_PACKED header at byte 0\)/,
    ],
    [
      'DELTA_BINARY_PACKED block size 2^31 - 128',
      dbp(deltaStream({ blockSize: 2 ** 31 - 128, miniblocks: 1, total: 4, first: 0 })),
      /a block size that is a multiple of 128 up to 65536, got 2147483520/,
    ],
    [
      // hyparquet's INT64 path: new Uint8Array(miniblockPerBlock) for every block.
      'DELTA_BINARY_PACKED miniblock count 2^31 - 1',
      dbp(deltaStream({ miniblocks: 2 ** 31 - 1, total: 4, first: 0, blocks: [block([])] })),
      /miniblocks dividing the block of 128 into multiples of 32 values, got 2147483647 miniblocks/,
    ],
    [
      // -1 to hyparquet's 32-bit varint: its INT32 path moves the reader back before the block's
      // min delta and reads the same block forever.
      'DELTA_BINARY_PACKED miniblock count 2^32 - 1 (an endless loop in hyparquet)',
      dbp(
        deltaStream({ miniblocks: 2 ** 32 - 1, total: 4, first: 0, blocks: [block([])] }),
        'INT32',
      ),
      /got 4294967295 miniblocks/,
    ],
    [
      'DELTA_BINARY_PACKED miniblock count 0',
      dbp(deltaStream({ miniblocks: 0, total: 4, first: 0 })),
      /got 0 miniblocks/,
    ],
    [
      'DELTA_BINARY_PACKED 8 miniblocks of 16 values',
      dbp(deltaStream({ miniblocks: 8, total: 4, first: 0 })),
      /got 8 miniblocks/,
    ],
    [
      'DELTA_BINARY_PACKED total value count 10^9',
      dbp(deltaStream({ total: 1e9, first: 0 })),
      /at most the 4 values its page declares, got a value count of 1000000000/,
    ],
    [
      'DELTA_BINARY_PACKED bit width 65',
      dbp(deltaStream({ total: 4, first: 0, blocks: [block([65, 0, 0, 0])] })),
      /bit widths of at most 64, got a bit width of 65/,
    ],
    [
      'DELTA_BINARY_PACKED miniblock data past the page',
      dbp(deltaStream({ total: 4, first: 0, blocks: [block([32, 0, 0, 0], [1, 2, 3])] })),
      /expected DELTA_BINARY_PACKED values inside its page \(\d+ bytes\), got a miniblock of 32 values at bit width 32 of 128 bytes at byte \d+/,
    ],
    [
      'DELTA_BINARY_PACKED bit widths past the page',
      dbp(deltaStream({ total: 4, first: 0, blocks: [block([0, 0])] })),
      /got 4 miniblock bit widths of 4 bytes at byte \d+/,
    ],
    [
      // hyparquet's INT64 path reads it into a BigInt with a shift per byte (quadratic).
      'DELTA_BINARY_PACKED first value: a varint of 100,000 bytes',
      dbp([...deltaStream({ total: 4, first: 0 }).slice(0, 4), ...Array(100_000).fill(0xff), 1]),
      /with varints of at most 10 bytes, got a longer first value at byte 4/,
    ],
    [
      'DELTA_LENGTH_BYTE_ARRAY length -5',
      {
        type: 'BYTE_ARRAY',
        encoding: 'DELTA_LENGTH_BYTE_ARRAY',
        rows: 2,
        values: [...deltaPack([3, -5]), 1, 2, 3],
      },
      /expected DELTA_LENGTH_BYTE_ARRAY lengths of at least 0, got a length of -5 \(value 1\)/,
    ],
    [
      'DELTA_LENGTH_BYTE_ARRAY lengths of 2^30 past the page',
      {
        type: 'BYTE_ARRAY',
        encoding: 'DELTA_LENGTH_BYTE_ARRAY',
        rows: 2,
        values: [...deltaPack([3, 2 ** 30]), 1, 2, 3],
      },
      /expected DELTA_LENGTH_BYTE_ARRAY lengths covering at most the 3 bytes after them, got lengths adding up to 1073741827 bytes/,
    ],
    [
      // hyparquet: new Uint8Array(prefix + suffix), 1 GiB from a 20-byte page.
      'DELTA_BYTE_ARRAY prefix 2^30 after a value of 3 bytes',
      {
        type: 'BYTE_ARRAY',
        encoding: 'DELTA_BYTE_ARRAY',
        rows: 2,
        values: [...deltaPack([0, 2 ** 30]), ...deltaPack([3, 0]), 1, 2, 3],
      },
      /each prefix at most the previous value's length, got prefix 1073741824 and suffix 0 for value 1 \(the previous value has 3 bytes\)/,
    ],
    [
      'DELTA_BYTE_ARRAY a prefix on the first value',
      {
        type: 'BYTE_ARRAY',
        encoding: 'DELTA_BYTE_ARRAY',
        rows: 2,
        values: [...deltaPack([2, 0]), ...deltaPack([3, 0]), 1, 2, 3],
      },
      /got prefix 2 and suffix 3 for value 0 \(the previous value has 0 bytes\)/,
    ],
    [
      'DELTA_BYTE_ARRAY a negative suffix length',
      {
        type: 'BYTE_ARRAY',
        encoding: 'DELTA_BYTE_ARRAY',
        rows: 2,
        values: [...deltaPack([0, 0]), ...deltaPack([3, -1]), 1, 2, 3],
      },
      /got prefix 0 and suffix -1 for value 1/,
    ],
    [
      'DELTA_BYTE_ARRAY suffixes past the page',
      {
        type: 'BYTE_ARRAY',
        encoding: 'DELTA_BYTE_ARRAY',
        rows: 2,
        values: [...deltaPack([0, 1]), ...deltaPack([3, 100_000]), 1, 2, 3],
      },
      /expected DELTA_BYTE_ARRAY suffix lengths covering at most the 3 bytes after them, got suffix lengths adding up to 100003 bytes/,
    ],
    [
      // hyparquet would allocate 2^20 values of 1,000 bytes (1 GiB) from a page of ~1.1 kB.
      'DELTA_BYTE_ARRAY 2^20 values repeating a 1,000-byte prefix',
      {
        type: 'BYTE_ARRAY',
        encoding: 'DELTA_BYTE_ARRAY',
        rows: 2 ** 20,
        values: [
          ...deltaPack([0, ...Array(2 ** 20 - 1).fill(1000)]),
          ...deltaPack([1000, ...Array(2 ** 20 - 1).fill(0)]),
          ...Array(1000).fill(97),
        ],
      },
      /expected DELTA_BYTE_ARRAY values sharing prefixes decoding to at most 16777216 bytes \(64× the page's \d+ bytes, at least 16777216\), got 16778000 bytes by value 16778/,
    ],
    [
      // hyparquet: new Uint8Array(count * type_length), 4 GiB.
      'BYTE_STREAM_SPLIT of FIXED_LEN_BYTE_ARRAY with type_length 2^30',
      {
        type: 'FIXED_LEN_BYTE_ARRAY',
        typeLength: 2 ** 30,
        encoding: 'BYTE_STREAM_SPLIT',
        rows: 4,
        values: [1, 2, 3, 4],
      },
      /expected BYTE_STREAM_SPLIT values inside their page \(4 bytes\), got 4 values of 1073741824 bytes/,
    ],
    [
      'BYTE_STREAM_SPLIT of 10^6 floats in 8 bytes',
      { type: 'FLOAT', encoding: 'BYTE_STREAM_SPLIT', rows: 1e6, values: [1, 2, 3, 4, 5, 6, 7, 8] },
      /got 1000000 values of 4 bytes/,
    ],
    [
      'an ALP page (an encoding no walk checks: refused)',
      { type: 'FLOAT', encoding: 'ALP', rows: 4, values: [0, 0, 0, 0, 1, 2, 3, 4] },
      /expected a value encoding this loader checks .*got ALP/,
    ],
  ];
  for (const v2 of [false, true]) {
    it.each(cases)(
      `%s (DataPage v2: ${v2}): PARSE_FAILED naming file, column and page, < 300 ms`,
      async (name, page, message) => {
        const file = `${name.replace(/\W+/g, '-')}-${v2}.parquet`;
        const { outcome, ms } = await load(valuePageParquet({ v2, ...page }), file);
        expect(outcome).toBeInstanceOf(DatasetsError);
        const error = outcome as DatasetsError;
        expect(error.code).toBe('PARSE_FAILED');
        expect(error.message).toContain(`${file} row group 0 column "value" page 0 (byte 4)`);
        expect(error.message).toMatch(message);
        expect(ms).toBeLessThan(300);
      },
    );
  }
});
