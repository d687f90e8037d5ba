import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sharedDataPath } from '@qlora/test-utils';
import { parse as parseCsvSync } from 'csv-parse/sync';
import { type BenchRow, type BenchSuite, medianMs, ratioRow } from '../../../tools/bench/harness';
import { loadHfTokenizer } from '../src/_hf-tokenizer';
import {
  alpacaRecordSchema,
  gsm8kRecordSchema,
  loadMmluCsv,
  loadRecords,
  renderPrompt,
  STANFORD_ALPACA_TEMPLATE,
  tokenizeForSft,
} from '../src/index';

const suite: BenchSuite = {
  title: 'Loading (zod-validated, streamed) and SFT tokenization',
  async run(): Promise<BenchRow[]> {
    const rows: BenchRow[] = [];
    const perSecond = (count: number, ms: number) => (count * 1000) / ms;

    // Alpaca json array: our loader (read + parse + validate) vs read + JSON.parse of the same bytes.
    const alpacaPath = sharedDataPath('alpaca', 'alpaca_5000.json');
    const alpacaCount = 5000;
    const alpacaOurs = await medianMs('alpaca loadRecords', () =>
      loadRecords(alpacaPath, alpacaRecordSchema),
    );
    const alpacaRef = await medianMs('alpaca JSON.parse', () =>
      JSON.parse(readFileSync(alpacaPath, 'utf8')),
    );
    rows.push(
      ratioRow('Alpaca json, 5000 records', perSecond(alpacaCount, alpacaOurs), 'records/s', {
        name: 'readFileSync + JSON.parse',
        value: perSecond(alpacaCount, alpacaRef),
      }),
    );

    // GSM8K train jsonl: readline stream + per-line JSON.parse + zod vs split + JSON.parse.
    const gsmPath = sharedDataPath('gsm8k', 'train.jsonl');
    const gsmCount = 7473;
    const gsmOurs = await medianMs('gsm8k loadRecords', () =>
      loadRecords(gsmPath, gsm8kRecordSchema),
    );
    const gsmRef = await medianMs('gsm8k split+parse', () =>
      readFileSync(gsmPath, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as unknown),
    );
    rows.push(
      ratioRow('GSM8K train jsonl, 7473 records', perSecond(gsmCount, gsmOurs), 'records/s', {
        name: 'readFileSync + split + JSON.parse',
        value: perSecond(gsmCount, gsmRef),
      }),
    );

    // MMLU test: 57 CSV files through the csv-parse stream + zod vs csv-parse/sync on the same bytes.
    const mmluDir = sharedDataPath('mmlu', 'test');
    const mmluFiles = readdirSync(mmluDir).filter((f) => f.endsWith('.csv'));
    const mmluCount = 14042;
    const mmluOurs = await medianMs('mmlu loadMmluCsv', () => loadMmluCsv(mmluDir), {
      timeMs: 2000,
    });
    const mmluRef = await medianMs(
      'mmlu csv-parse/sync',
      () => {
        for (const f of mmluFiles) parseCsvSync(readFileSync(join(mmluDir, f)));
      },
      { timeMs: 2000 },
    );
    rows.push(
      ratioRow('MMLU test csv, 57 files, 14042 rows', perSecond(mmluCount, mmluOurs), 'records/s', {
        name: 'csv-parse/sync, no validation',
        value: perSecond(mmluCount, mmluRef),
      }),
    );

    // SFT tokenization: prompt + full text tokenized (exact boundary) vs one encode of the full text.
    const dir = sharedDataPath('tokenizers', 'tinyllama');
    const tokenizer = loadHfTokenizer(
      join(dir, 'tokenizer.json'),
      join(dir, 'tokenizer_config.json'),
    );
    const { records } = await loadRecords(alpacaPath, alpacaRecordSchema, { limit: 100 });
    const rendered = records.map((r) => renderPrompt(r, STANFORD_ALPACA_TEMPLATE));
    let tokens = 0;
    for (const r of rendered) tokens += tokenizeForSft(r, tokenizer).inputIds.length;
    // @huggingface/tokenizers caches whole pre-tokens (LRU, 10k) and a Llama text is one
    // pre-token, so a per-iteration prefix keeps every encode cold, as in a real epoch.
    let round = 0;
    const sftOurs = await medianMs(
      'tokenizeForSft',
      () => {
        round++;
        for (const r of rendered)
          tokenizeForSft({ prompt: `${round} ${r.prompt}`, response: r.response }, tokenizer);
      },
      { timeMs: 3000 },
    );
    const sftRef = await medianMs(
      'tokenizer.encode(full text)',
      () => {
        round++;
        for (const r of rendered) tokenizer.encode(`${round} ${r.prompt}${r.response}`);
      },
      { timeMs: 3000 },
    );
    rows.push(
      ratioRow(
        'tokenizeForSft, 100 Alpaca records, TinyLlama',
        perSecond(tokens, sftOurs),
        'tokens/s',
        {
          name: 'one encode of prompt+response (@huggingface/tokenizers)',
          value: perSecond(tokens, sftRef),
        },
        {
          note: 'two encodes per record (prompt alone + full text) for the exact mask boundary, so ratio < 1 is expected',
        },
      ),
    );
    return rows;
  },
};

export default suite;
