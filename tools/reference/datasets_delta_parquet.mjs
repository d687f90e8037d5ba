// Writes test-fixtures/datasets/delta_*.parquet: parquet files whose pages use the DELTA_*
// and BYTE_STREAM_SPLIT encodings (DataPage v2, one uncompressed, one snappy), written by
// hyparquet-writer, an encoder independent of the loader's page checks, and
// delta_expected.json, the rows they hold (int64 and non-finite values as strings).
//
// hyparquet-writer is not a dependency of the repository: install it anywhere and point
// HYPARQUET_WRITER_DIR at the folder holding its node_modules, e.g.
//   (cd /tmp/w && npm i hyparquet-writer@0.17.0)
//   HYPARQUET_WRITER_DIR=/tmp/w node tools/reference/datasets_delta_parquet.mjs

import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = new URL('../../', import.meta.url).pathname;
const from = process.env.HYPARQUET_WRITER_DIR ?? join(root, '.ref/ds-scratch');
const require = createRequire(join(from, 'package.json'));
const entry = require.resolve('hyparquet-writer');
const { parquetWriteBuffer } = await import(pathToFileURL(entry).href);
const version = JSON.parse(
  readFileSync(join(from, 'node_modules/hyparquet-writer/package.json'), 'utf8'),
).version;

const ROWS = 300;
// A fixed LCG, so the file is the same on every run.
let state = 12345;
const next = () => {
  state = (state * 1103515245 + 12345) % 2 ** 31;
  return state;
};
const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'ηθ', '日本語', ''];
const ids = [];
const bigs = [];
const texts = [];
const sorted = [];
const maybe = [];
const floats = [];
const doubles = [];
for (let i = 0; i < ROWS; i++) {
  // Deltas of every size: runs of +1, jumps, negatives, the int32 extremes.
  ids.push(
    i % 50 === 7 ? -(2 ** 31) : i % 50 === 8 ? 2 ** 31 - 1 : i < 140 ? 1000 + i : next() - 2 ** 30,
  );
  bigs.push(BigInt(next()) * 4_000_000_007n - 2n ** 62n);
  texts.push(Array.from({ length: next() % 4 }, () => words[next() % words.length]).join(' '));
  sorted.push(`https://example.org/item/${String(i * 7).padStart(6, '0')}/${words[i % 8]}`);
  maybe.push(i % 3 === 0 ? null : `value ${words[next() % words.length]} ${i}`);
  floats.push(Math.fround((next() % 20001) / 100 - 100));
  doubles.push((next() - 2 ** 30) / 7);
}

const columnData = [
  { name: 'id', data: ids, type: 'INT32', nullable: false, encoding: 'DELTA_BINARY_PACKED' },
  { name: 'big', data: bigs, type: 'INT64', nullable: false, encoding: 'DELTA_BINARY_PACKED' },
  {
    name: 'text',
    data: texts,
    type: 'STRING',
    nullable: false,
    encoding: 'DELTA_LENGTH_BYTE_ARRAY',
  },
  { name: 'sorted', data: sorted, type: 'STRING', nullable: false, encoding: 'DELTA_BYTE_ARRAY' },
  { name: 'maybe', data: maybe, type: 'STRING', nullable: true, encoding: 'DELTA_BYTE_ARRAY' },
  { name: 'float', data: floats, type: 'FLOAT', nullable: false, encoding: 'BYTE_STREAM_SPLIT' },
  { name: 'double', data: doubles, type: 'DOUBLE', nullable: false, encoding: 'BYTE_STREAM_SPLIT' },
];

const out = join(root, 'test-fixtures/datasets');
for (const codec of ['UNCOMPRESSED', 'SNAPPY']) {
  const buffer = parquetWriteBuffer({
    columnData,
    codec,
    // Several pages per column chunk and two row groups, so page walks continue past the first.
    pageSize: 1024,
    rowGroupSize: 200,
    statistics: false,
  });
  writeFileSync(join(out, `delta_${codec.toLowerCase()}.parquet`), new Uint8Array(buffer));
}
const rows = ids.map((id, i) => ({
  id,
  big: String(bigs[i]),
  text: texts[i],
  sorted: sorted[i],
  maybe: maybe[i],
  float: floats[i],
  double: doubles[i],
}));
writeFileSync(
  join(out, 'delta_expected.json'),
  `${JSON.stringify({ writer: `hyparquet-writer ${version}`, rows })}\n`,
);
console.log(
  `wrote delta_uncompressed.parquet, delta_snappy.parquet, delta_expected.json (hyparquet-writer ${version})`,
);
