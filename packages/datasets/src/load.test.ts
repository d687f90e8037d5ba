import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePath, sharedDataPath } from '@qlora/test-utils';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadAlpaca, loadGsm8k, loadHellaswag, loadMmluCsv } from './datasets';
import { DatasetsError } from './errors';
import { formatFromPath, loadRecords, streamRecords } from './load';
import {
  gsm8kRecordSchema,
  hellaswagRawSchema,
  MMLU_CSV_COLUMNS,
  mmluCsvRowSchema,
  mmluParquetSchema,
  toMmluItem,
} from './schemas';

const tmp = mkdtempSync(join(tmpdir(), 'qlora-datasets-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function write(name: string, content: string | Uint8Array): string {
  const path = join(tmp, name);
  writeFileSync(path, content);
  return path;
}

async function errorOf(promise: Promise<unknown>): Promise<DatasetsError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(DatasetsError);
    return error as DatasetsError;
  }
  throw new Error('expected a DatasetsError');
}

describe('shared data: exact record counts', () => {
  it('Alpaca 5000 (json array)', async () => {
    const records = await loadAlpaca(sharedDataPath('alpaca', 'alpaca_5000.json'));
    expect(records).toHaveLength(5000);
    expect(records[1]).toEqual({
      instruction: 'Arrange the following musical notes',
      input: 'G, B, E',
      output: 'E, G, B',
    });
  });

  it('GSM8K train 7473 / test 1319 (jsonl)', async () => {
    expect(await loadGsm8k(sharedDataPath('gsm8k', 'train.jsonl'))).toHaveLength(7473);
    const test = await loadGsm8k(sharedDataPath('gsm8k', 'test.jsonl'));
    expect(test).toHaveLength(1319);
    expect(test.every((r) => r.answer.includes('#### '))).toBe(true);
  });

  it('HellaSwag preprocessed 10042 and raw subset 1000', async () => {
    const pre = await loadHellaswag(
      sharedDataPath('hellaswag', 'hellaswag_val_preprocessed.jsonl'),
    );
    expect(pre).toHaveLength(10042);
    expect('ctx_a' in (pre[0] as object)).toBe(false);
    const raw = await loadHellaswag(
      sharedDataPath('hellaswag', 'hellaswag_val_raw_subset1000.jsonl'),
    );
    expect(raw).toHaveLength(1000);
    const first = raw[0];
    expect(first && 'ctx_a' in first ? first.ind : undefined).toBe(20022);
    expect(first?.label).toBe(3);
    // Label distribution of the full preprocessed set (SOURCES.md).
    const counts = [0, 0, 0, 0];
    for (const r of pre) counts[r.label] = (counts[r.label] ?? 0) + 1;
    expect(counts).toEqual([2515, 2485, 2584, 2458]);
  });

  it('HellaSwag raw schema accepts the Hugging Face string label', () => {
    const hf = {
      ind: 24,
      activity_label: 'Roof shingle removal',
      ctx_a: 'A man is sitting on a roof.',
      ctx_b: 'he',
      ctx: 'A man is sitting on a roof. he',
      endings: ['a', 'b', 'c', 'd'],
      source_id: 'activitynet~v_-JhWjGDPHMY',
      split: 'val',
      split_type: 'indomain',
      label: '3',
    };
    expect(hellaswagRawSchema.parse(hf).label).toBe(3);
    expect(hellaswagRawSchema.safeParse({ ...hf, label: '' }).success).toBe(false);
  });

  it('MMLU: 57 test CSVs = 14042 rows, dev = 285, quoted newlines kept', async () => {
    const test = await loadMmluCsv(sharedDataPath('mmlu', 'test'));
    expect(test).toHaveLength(14042);
    expect(new Set(test.map((r) => r.subject)).size).toBe(57);
    const dev = await loadMmluCsv(sharedDataPath('mmlu', 'dev'));
    expect(dev).toHaveLength(285);
    expect(dev.some((r) => r.question.includes('\n'))).toBe(true);
    const cs = {
      college_computer_science: 100,
      high_school_computer_science: 100,
      computer_security: 100,
      machine_learning: 112,
    };
    for (const [subject, n] of Object.entries(cs)) {
      expect(await loadMmluCsv(sharedDataPath('mmlu', 'test'), subject)).toHaveLength(n);
    }
    const algebra = await loadMmluCsv(sharedDataPath('mmlu', 'dev', 'abstract_algebra_dev.csv'));
    expect(algebra[1]).toMatchObject({
      question:
        'Statement 1 | If aH is an element of a factor group, then |aH| divides |a|. Statement 2 | If H and K are subgroups of G then HK is a subgroup of G.',
      A: 'True, True',
      answer: 'B',
      subject: 'abstract_algebra',
    });
    expect(toMmluItem(algebra[1] as (typeof algebra)[number], 'abstract_algebra').answer).toBe(1);
  });

  it('suggests a subject on a near miss', async () => {
    const error = await errorOf(loadMmluCsv(sharedDataPath('mmlu', 'test'), 'machine_learn'));
    expect(error.code).toBe('FILE_NOT_FOUND');
    expect(error.message).toContain('Did you mean "machine_learning"');
  });

  it('reads QLoRA zero_shot_mmlu_val JSON Lines (also under a .json name)', async () => {
    const schema = z.object({
      subject: z.string(),
      input: z.string(),
      output: z.enum(['A', 'B', 'C', 'D']),
    });
    const path = sharedDataPath('mmlu', 'qlora', 'zero_shot_mmlu_val.jsonl');
    expect((await loadRecords(path, schema)).records).toHaveLength(1531);
    const asJson = write('zero_shot_mmlu_val.json', readFileSync(path));
    expect((await loadRecords(asJson, schema)).records).toHaveLength(1531);
  });
});

describe('parquet (pyarrow-written fixtures, several row groups)', () => {
  const expected = JSON.parse(
    readFileSync(fixturePath('datasets', 'parquet_expected.json'), 'utf8'),
  ) as {
    gsm8k: { rows: unknown[]; rowGroups: number };
    mmlu: { rows: unknown[]; rowGroups: number };
  };

  it('reads GSM8K-shaped rows equal to what pyarrow reads back', async () => {
    expect(expected.gsm8k.rowGroups).toBe(3);
    const rows = await loadGsm8k(fixturePath('datasets', 'synthetic_gsm8k.parquet'));
    expect(rows).toEqual(expected.gsm8k.rows);
  });

  it('reads cais/mmlu-shaped rows (list<string> choices, int64 answer)', async () => {
    const { records } = await loadRecords(
      fixturePath('datasets', 'synthetic_mmlu.parquet'),
      mmluParquetSchema,
    );
    expect(records).toEqual(expected.mmlu.rows);
    expect(typeof records[0]?.answer).toBe('number');
  });

  it('streams row group by row group and reports the row group of a bad record', async () => {
    const strict = z.object({ question: z.string(), answer: z.string().max(60) });
    const error = await errorOf(
      loadRecords(fixturePath('datasets', 'synthetic_gsm8k.parquet'), strict),
    );
    expect(error.code).toBe('INVALID_RECORD');
    expect(error.file).toContain('synthetic_gsm8k.parquet');
    expect(error.rowGroup).toBeTypeOf('number');
    expect(error.record).toBeTypeOf('number');
    expect(error.path).toEqual(['answer']);
    expect(error.message).toMatch(/row group \d+ \(record \d+\), field answer/);
    const lenient = await loadRecords(fixturePath('datasets', 'synthetic_gsm8k.parquet'), strict, {
      onInvalid: 'skip',
    });
    expect(lenient.records.length + lenient.skippedCount).toBe(50);
  });

  it('names the file of a bad parquet', async () => {
    const bytes = readFileSync(fixturePath('datasets', 'synthetic_gsm8k.parquet'));
    const truncated = write('truncated.parquet', bytes.subarray(0, bytes.length - 100));
    const error = await errorOf(loadRecords(truncated, gsm8kRecordSchema));
    expect(error.code).toBe('PARSE_FAILED');
    expect(error.file).toBe(truncated);
    expect(error.message).toContain(truncated);
    const notParquet = write('text.parquet', 'version https://git-lfs.github.com/spec/v1\n');
    expect((await errorOf(loadRecords(notParquet, gsm8kRecordSchema))).code).toBe('PARSE_FAILED');
  });
});

describe('corrupted copies: errors name file, line and field', () => {
  const gsm8kLines = readFileSync(sharedDataPath('gsm8k', 'test.jsonl'), 'utf8')
    .split('\n')
    .slice(0, 5);

  it('truncated jsonl line', async () => {
    const lines = [...gsm8kLines];
    lines[2] = (lines[2] as string).slice(0, 40);
    const path = write('truncated.jsonl', lines.join('\n'));
    const error = await errorOf(loadRecords(path, gsm8kRecordSchema));
    expect(error.code).toBe('PARSE_FAILED');
    expect(error.file).toBe(path);
    expect(error.line).toBe(3);
    expect(error.message).toContain(`${path}:3`);
  });

  it('wrong type and missing field (jsonl), with zod prettified detail', async () => {
    const lines = gsm8kLines.map((l) => JSON.parse(l) as Record<string, unknown>);
    (lines[1] as Record<string, unknown>).answer = 42;
    delete (lines[3] as Record<string, unknown>).question;
    const path = write('typed.jsonl', lines.map((l) => JSON.stringify(l)).join('\n'));
    const error = await errorOf(loadRecords(path, gsm8kRecordSchema));
    expect(error.code).toBe('INVALID_RECORD');
    expect([error.line, error.record, error.path]).toEqual([2, 1, ['answer']]);
    expect(error.message).toContain(`${path}:2 (record 1), field answer: expected string, got 42`);
    expect(error.message).toContain('→ at answer');

    const lenient = await loadRecords(path, gsm8kRecordSchema, { onInvalid: 'skip' });
    expect(lenient.records).toHaveLength(3);
    expect(lenient.skippedCount).toBe(2);
    expect(lenient.skipped.map((s) => [s.line, s.path])).toEqual([
      [2, ['answer']],
      [4, ['question']],
    ]);
    expect(lenient.skipped[1]?.message).toContain('got nothing (the field is missing)');
  });

  it('json array: the record line is found', async () => {
    const records = JSON.parse(
      readFileSync(sharedDataPath('alpaca', 'alpaca_5000.json'), 'utf8'),
    ) as unknown[];
    const small = records.slice(0, 4) as Record<string, unknown>[];
    (small[2] as Record<string, unknown>).output = null;
    const path = write('alpaca.json', JSON.stringify(small, null, 2));
    const error = await errorOf(loadAlpaca(path));
    expect(error.record).toBe(2);
    expect(error.path).toEqual(['output']);
    const text = readFileSync(path, 'utf8');
    // Pretty-printed: each record opens with a line '  {'; record 2 is the third.
    const opens = text.split('\n').flatMap((l, i) => (l === '  {' ? [i + 1] : []));
    expect(error.line).toBe(opens[2]);
    const broken = write('broken.json', text.slice(0, text.length - 20));
    const parseError = await errorOf(loadAlpaca(broken));
    expect(parseError.code).toBe('PARSE_FAILED');
    expect(parseError.line).toBeTypeOf('number');
  });

  it('csv: broken quoting and a wrong field count', async () => {
    const good = readFileSync(sharedDataPath('mmlu', 'dev', 'abstract_algebra_dev.csv'), 'utf8');
    const lines = good.split('\n');
    // Line 2 starts a quoted field; removing its closing quote leaves it open to the end of file.
    lines[1] = (lines[1] as string).replace('of G.",', 'of G.,');
    const unclosed = write('unclosed.csv', lines.join('\n'));
    const error = await errorOf(loadMmluCsv(unclosed));
    expect(error.code).toBe('PARSE_FAILED');
    expect(error.file).toBe(unclosed);
    expect(error.message).toContain(`${unclosed}:2 (record 1)`);
    expect(error.line).toBe(2);

    // A quote opened on line 3 and never closed: the parser reads to the end of the file.
    const open = write('open.csv', 'q1,a,b,c,d,A\nq2,a,b,c,d,B\n"q3,a,b,c,d,C\nq4,a,b,c,d,D\n');
    const openError = await errorOf(loadMmluCsv(open));
    expect([openError.line, openError.record]).toEqual([3, 2]);
    expect(openError.message).toContain(`${open}:3 (record 2, parser stopped at line 4)`);

    const fewer = good.split('\n');
    fewer[3] = 'only,three,fields';
    const short = write('short.csv', fewer.join('\n'));
    const shortError = await errorOf(loadMmluCsv(short));
    expect([shortError.line, shortError.record]).toEqual([4, 3]);
    expect(shortError.message).toContain('expected 6 fields');
    const lenient = await loadRecords(short, mmluCsvRowSchema, {
      csv: { columns: MMLU_CSV_COLUMNS },
      onInvalid: 'skip',
    });
    expect(lenient.records).toHaveLength(4);
    expect(lenient.skipped[0]?.line).toBe(4);
  });

  it('csv: a bad answer letter after a multi-line quoted field has the right start line', async () => {
    const path = write(
      'multiline.csv',
      'q1,a,b,c,d,A\n"q2\nspans\nlines",a,b,c,d,B\nq3,a,b,c,d,E\n',
    );
    const error = await errorOf(loadMmluCsv(path));
    expect([error.line, error.record, error.path]).toEqual([5, 2, ['answer']]);
    expect(error.message).toContain('expected one of "A", "B", "C", "D", got "E"');
  });

  it('csv with a header row', async () => {
    const path = write('header.csv', 'question,answer\n"Is 1, 2?","yes\n#### 1"\n');
    const { records } = await loadRecords(path, gsm8kRecordSchema);
    expect(records).toEqual([{ question: 'Is 1, 2?', answer: 'yes\n#### 1' }]);
  });

  it('unknown extension and missing file', async () => {
    const path = write('data.txt', '{}');
    const error = await errorOf(loadRecords(path, z.unknown()));
    expect(error.code).toBe('UNKNOWN_FORMAT');
    expect((await loadRecords(path, z.unknown(), { format: 'jsonl' })).records).toEqual([{}]);
    expect((await errorOf(loadRecords(join(tmp, 'nope.jsonl'), z.unknown()))).code).toBe(
      'FILE_NOT_FOUND',
    );
  });
});

describe('streaming', () => {
  it('streamRecords yields lazily and stops at limit', async () => {
    const seen: string[] = [];
    for await (const r of streamRecords(
      sharedDataPath('gsm8k', 'train.jsonl'),
      gsm8kRecordSchema,
    )) {
      seen.push(r.question);
      if (seen.length === 3) break;
    }
    expect(seen).toHaveLength(3);
    const { records } = await loadRecords(
      sharedDataPath('gsm8k', 'train.jsonl'),
      gsm8kRecordSchema,
      { limit: 10 },
    );
    expect(records).toHaveLength(10);
  });

  it('jsonl with BOM, CRLF, blank lines and multi-byte text keeps line numbers', async () => {
    const path = write(
      'crlf.jsonl',
      '\ufeff{"question":"café ☕","answer":"#### 1"}\r\n\r\n{"question":"x","answer":"no marker"}\r\n',
    );
    const error = await errorOf(loadRecords(path, gsm8kRecordSchema));
    expect([error.line, error.record, error.path]).toEqual([3, 1, ['answer']]);
    const { records } = await loadRecords(path, gsm8kRecordSchema, { onInvalid: 'skip' });
    expect(records).toEqual([{ question: 'café ☕', answer: '#### 1' }]);
  });

  it('formatFromPath', () => {
    expect(formatFromPath('a/train-00000-of-00001.parquet')).toBe('parquet');
    expect(formatFromPath('x.NDJSON')).toBe('jsonl');
    expect(formatFromPath('x.json')).toBe('json');
    expect(formatFromPath('x.csv')).toBe('csv');
    expect(formatFromPath('x.tsv')).toBeUndefined();
  });
});
