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
  const chunk = dictionary.length + data.length;
  const footer = struct([
    i32(1, 1),
    list(2, 12, [
      struct([[4, 8, binary('schema')], i32(5, 1)]),
      struct([i32(1, 1), i32(3, 1), [4, 8, binary('answer')]]), // INT32, OPTIONAL
    ]),
    i64(3, page.rows),
    list(4, 12, [
      struct([
        list(1, 12, [
          struct([
            i64(2, 4),
            field(3, [
              i32(1, 1),
              list(2, 5, [[0], [6], [16]]), // PLAIN, RLE, RLE_DICTIONARY
              list(3, 8, [binary('answer')]),
              i32(4, page.snappy ? 1 : 0), // SNAPPY or UNCOMPRESSED
              i64(5, page.rows),
              i64(6, chunk),
              i64(7, chunk),
              i64(9, 4 + dictionary.length),
              i64(11, 4),
            ]),
          ]),
        ]),
        i64(2, chunk),
        i64(3, page.rows),
      ]),
    ]),
  ]);
  const magic = [...encoder.encode('PAR1')];
  return Uint8Array.from([
    ...magic,
    ...dictionary,
    ...data,
    ...footer,
    ...u32(footer.length),
    ...magic,
  ]);
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
