// The long fuzz campaign of issue 11: ≥ 10,000 seeded cases per parser for every file format the
// project reads, including the trainer's config.json / tokenizer readers and the CLI's
// experiment config (used read-only here). Only each package's typed error may come out; a case
// slower than the bound counts as a hang. Prints a table and exits 1 on any untyped exception.
//
//   node --conditions=@qlora/source --import tsx tools/fuzz/run.ts [--runs 10000] [--seed N] [--only text]
//
// Reproduce a reported case: same --seed and --only; the case index is in the failure line.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import {
  applyMutations,
  CASE_MS_BOUND,
  FUZZ_SEED,
  hostileValueArb,
  mutatedBytesArb,
  mutatedJsonArb,
  mutatedJsonBytesArb,
  mutationsArb,
} from './mutate';
import { CACHE_SEED, DATASET_SEEDS } from './seeds';

type ErrorClass = abstract new (...args: never[]) => Error;

interface Target<T> {
  parser: string;
  typed: readonly ErrorClass[];
  arbitrary: fc.Arbitrary<T>;
  run: (input: T, index: number) => unknown;
  /** Cases relative to --runs (file-heavy targets may scale down; never below 10,000 by default). */
  share?: number;
}

/** A target with its input type erased, so targets of different inputs share one list. */
interface AnyTarget {
  parser: string;
  typed: readonly ErrorClass[];
  arbitrary: fc.Arbitrary<unknown>;
  run: (input: never, index: number) => unknown;
  share?: number;
}

interface Result {
  parser: string;
  cases: number;
  outcomes: Map<string, number>;
  codes: Set<string>;
  maxMs: number;
  failures: string[];
}

const args = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : undefined;
};
const RUNS = Number(option('runs') ?? 10_000);
const SEED = Number(option('seed') ?? FUZZ_SEED);
const ONLY = option('only');

const root = new URL('../../', import.meta.url).pathname;
const fixture = (...parts: string[]): string => join(root, 'test-fixtures', ...parts);
const encoder = new TextEncoder();
const lenient = new TextDecoder('utf-8');
const temp = mkdtempSync(join(tmpdir(), 'qlora-fuzz-'));

async function targets(): Promise<AnyTarget[]> {
  const list: AnyTarget[] = [];
  const add = <T>(target: Target<T>): void => {
    list.push(target as unknown as AnyTarget);
  };

  // --- @qlora/safetensors -------------------------------------------------------------------
  const st = await import('../../packages/safetensors/src/index');
  const stNode = await import('../../packages/safetensors/src/node');
  const stSeeds = ['all-dtypes', 'mixed-order', 'numpy', 'multi-meta', 'conversions', 'empty'].map(
    (f) => new Uint8Array(readFileSync(fixture('safetensors', `${f}.safetensors`))),
  );
  const headerOf = (file: Uint8Array): unknown => {
    const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
    return JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n)));
  };
  const withHeader = (header: string, body: Uint8Array): Uint8Array => {
    const json = encoder.encode(header);
    const out = new Uint8Array(8 + json.length + body.length);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(json, 8);
    out.set(body, 8 + json.length);
    return out;
  };
  const decodeAll = (bytes: Uint8Array): void => {
    for (const entry of Object.values(st.parseSafetensors(bytes).tensors)) {
      try {
        st.toFloat32(entry);
      } catch (error) {
        if (!(error instanceof st.SafetensorsError) || error.code !== 'UNSUPPORTED_DTYPE')
          throw error;
      }
    }
  };
  add({
    parser: 'safetensors: parseSafetensors + toFloat32 (mutated files)',
    typed: [st.SafetensorsError],
    arbitrary: mutatedBytesArb(stSeeds),
    run: decodeAll,
  });
  add({
    parser: 'safetensors: parseSafetensors (edited headers)',
    typed: [st.SafetensorsError],
    arbitrary: fc.tuple(fc.nat({ max: stSeeds.length - 1 }), mutatedJsonArb(stSeeds.map(headerOf))),
    run: ([i, header]) => {
      const seed = stSeeds[i] as Uint8Array;
      const n = Number(new DataView(seed.buffer, seed.byteOffset).getBigUint64(0, true));
      decodeAll(withHeader(JSON.stringify(header) ?? '', seed.subarray(8 + n)));
    },
  });
  const shardDir = join(temp, 'sharded');
  mkdirSync(shardDir);
  const shardSource = fixture('safetensors', 'sharded');
  for (const f of ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']) {
    writeFileSync(join(shardDir, f), readFileSync(join(shardSource, f)));
  }
  const index = JSON.parse(readFileSync(join(shardSource, 'model.safetensors.index.json'), 'utf8'));
  add({
    parser: 'safetensors: openSafetensorsDir (mutated index.json)',
    typed: [st.SafetensorsError],
    arbitrary: mutatedJsonBytesArb([index]),
    run: async (bytes) => {
      writeFileSync(join(shardDir, 'model.safetensors.index.json'), bytes);
      const reader = await stNode.openSafetensorsDir(shardDir);
      for (const name of reader.names) await reader.read(name);
      await reader.close();
    },
  });
  add({
    parser: 'safetensors: openSafetensors + read (mutated files on disk)',
    typed: [st.SafetensorsError],
    arbitrary: mutatedBytesArb(stSeeds),
    run: async (bytes) => {
      const path = join(temp, 'case.safetensors');
      writeFileSync(path, bytes);
      const file = await stNode.openSafetensors(path);
      try {
        for (const name of file.names) await file.read(name);
      } finally {
        await file.close();
      }
    },
  });

  // --- @qlora/nf4 ---------------------------------------------------------------------------
  const nf4 = await import('../../packages/nf4/src/index');
  const prefix = 'layer';
  const weights = (n: number): Float32Array =>
    Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 7)));
  const nf4Seeds = [
    nf4.toBnbTensors(nf4.quantize4bit(weights(128), { shape: [2, 64] }), prefix),
    nf4.toBnbTensors(
      nf4.quantize4bit(weights(201), { shape: [3, 67], quantType: 'fp4', blocksize: 128 }),
      prefix,
    ),
    nf4.toBnbTensors(
      nf4.quantize4bit(weights(64 * 300), { shape: [300, 64], doubleQuant: true }),
      prefix,
    ),
  ];
  const blobKey = (t: Record<string, unknown>): string =>
    Object.keys(t).find((k) => k.includes('.quant_state.')) as string;
  const withBlob = (i: number, bytes: Uint8Array): Record<string, unknown> => {
    const seed = nf4Seeds[i] as Record<string, unknown>;
    return { ...seed, [blobKey(seed)]: { dtype: 'U8', shape: [bytes.length], data: bytes } };
  };
  const loadNf4 = (tensors: Record<string, unknown>): void => {
    nf4.dequantize4bit(nf4.fromBnbTensors(tensors as never, prefix));
  };
  const blobJson = nf4Seeds.map((t) =>
    JSON.parse(new TextDecoder().decode((t[blobKey(t)] as { data: Uint8Array }).data)),
  );
  add({
    parser: 'nf4: fromBnbTensors (edited quant_state JSON)',
    typed: [nf4.Nf4Error],
    arbitrary: fc.tuple(fc.nat({ max: 2 }), mutatedJsonArb(blobJson)),
    run: ([i, json]) => loadNf4(withBlob(i, encoder.encode(JSON.stringify(json) ?? ''))),
  });
  add({
    parser: 'nf4: fromBnbTensors (byte-mutated quant_state blob)',
    typed: [nf4.Nf4Error],
    arbitrary: fc.tuple(fc.nat({ max: 2 }), mutationsArb),
    run: ([i, m]) => {
      const seed = nf4Seeds[i] as Record<string, { data: Uint8Array }>;
      loadNf4(withBlob(i, applyMutations((seed[blobKey(seed)] as { data: Uint8Array }).data, m)));
    },
  });
  const typedArrayArb = fc.oneof(
    fc.integer({ min: 0, max: 64 }).map((n) => new Uint8Array(n) as unknown),
    fc.integer({ min: 0, max: 64 }).map((n) => new Float32Array(n) as unknown),
    hostileValueArb,
  );
  add({
    parser: 'nf4: fromBnbTensors (edited tensor records)',
    typed: [nf4.Nf4Error],
    arbitrary: fc.tuple(
      fc.nat({ max: 2 }),
      fc.array(
        fc.tuple(
          fc.nat(),
          fc.constantFrom('dtype', 'shape', 'data', 'delete', 'record'),
          typedArrayArb,
        ),
        {
          minLength: 1,
          maxLength: 3,
        },
      ),
    ),
    run: ([i, edits]) => {
      const out: Record<string, unknown> = { ...(nf4Seeds[i] as Record<string, unknown>) };
      for (const [at, op, value] of edits) {
        const keys = Object.keys(out);
        const key = keys[at % keys.length] as string;
        if (op === 'delete') delete out[key];
        else if (op === 'record') out[key] = value;
        else out[key] = { ...(out[key] as object), [op]: value };
      }
      loadNf4(out);
    },
  });

  // --- @qlora/lora --------------------------------------------------------------------------
  const lora = await import('../../packages/lora/src/index');
  const loraNode = await import('../../packages/lora/src/node');
  // tfjs through the lora package's own dependencies (the root has none); cpu backend only.
  const loraRequire = createRequire(join(root, 'packages', 'lora', 'package.json'));
  const tf = (await import(pathToFileURL(loraRequire.resolve('@tensorflow/tfjs-core')).href)) as {
    setBackend(name: string): Promise<boolean>;
    zeros(shape: number[]): unknown;
  };
  await import(pathToFileURL(loraRequire.resolve('@tensorflow/tfjs-backend-cpu')).href);
  await tf.setBackend('cpu');
  /** q/k/v/o projections of one layer, as the trainer's LlamaModel exposes them. */
  const toyModel = () => {
    const layer: Record<string, InstanceType<typeof lora.DenseLinear>> = {};
    for (const [field, shape] of Object.entries({
      'self_attn.q_proj': [16, 16],
      'self_attn.k_proj': [8, 16],
      'self_attn.v_proj': [8, 16],
      'self_attn.o_proj': [16, 16],
    })) {
      layer[field] = new lora.DenseLinear(
        `model.layers.0.${field}`,
        tf.zeros(shape as [number, number]) as never,
      );
    }
    const fields = layer as Record<string, unknown>;
    return {
      mapProjections(fn: (linear: never, layer: number, field: string) => unknown) {
        for (const field of Object.keys(fields))
          fields[field] = fn(fields[field] as never, 0, field);
      },
      namedWeights() {
        const out = new Map<string, unknown>();
        for (const linear of Object.values(fields)) {
          const l = linear as { name: string; weights(): Record<string, unknown> };
          for (const [suffix, t] of Object.entries(l.weights())) out.set(`${l.name}.${suffix}`, t);
        }
        return out;
      },
      dispose() {
        for (const linear of Object.values(fields)) (linear as { dispose(): void }).dispose();
      },
    };
  };
  const adapterDir = join(temp, 'adapter-seed');
  {
    const model = toyModel();
    lora.injectLora(model as never, {
      r: 2,
      alpha: 4,
      initLoraWeights: false,
      seed: 1,
      targetModules: ['q_proj', 'v_proj'],
    });
    await loraNode.saveAdapter(model as never, adapterDir);
    model.dispose();
  }
  const adapterConfig = JSON.parse(readFileSync(join(adapterDir, 'adapter_config.json'), 'utf8'));
  const adapterWeights = new Uint8Array(
    readFileSync(join(adapterDir, 'adapter_model.safetensors')),
  );
  add({
    parser: 'lora: parseAdapterConfig (edited adapter_config.json)',
    typed: [lora.LoraError],
    arbitrary: mutatedJsonArb([adapterConfig]),
    run: (json) => lora.parseAdapterConfig(json),
  });
  const caseAdapter = join(temp, 'adapter-case');
  mkdirSync(caseAdapter);
  add({
    parser: 'lora: loadAdapter (mutated config text / weights)',
    typed: [lora.LoraError],
    arbitrary: fc.oneof(
      fc.tuple(mutatedJsonBytesArb([adapterConfig]), fc.constant(adapterWeights)),
      fc.tuple(
        fc.constant(encoder.encode(JSON.stringify(adapterConfig))),
        mutatedBytesArb([adapterWeights]),
      ),
    ),
    run: async ([config, weightsBytes]) => {
      writeFileSync(join(caseAdapter, 'adapter_config.json'), config);
      writeFileSync(join(caseAdapter, 'adapter_model.safetensors'), weightsBytes);
      const model = toyModel();
      try {
        await loraNode.loadAdapter(model as never, caseAdapter);
      } finally {
        model.dispose();
      }
    },
  });

  // --- @qlora/datasets and the benchmark loaders --------------------------------------------
  const ds = await import('../../packages/datasets/src/index');
  const parquetSeeds = ['synthetic_gsm8k.parquet', 'synthetic_mmlu.parquet'].map(
    (f) => new Uint8Array(readFileSync(fixture('datasets', f))),
  );
  const fileCase = (
    name: string,
    typed: readonly ErrorClass[],
    seeds: Uint8Array[],
    file: string,
    load: (path: string) => Promise<unknown>,
  ): void =>
    add({
      parser: name,
      typed,
      arbitrary: mutatedBytesArb(seeds),
      run: async (bytes) => {
        const path = join(temp, file);
        writeFileSync(path, bytes);
        await load(path);
      },
    });
  const enc = (s: string): Uint8Array[] => [encoder.encode(s)];
  const hellaswagSeeds = [
    DATASET_SEEDS.hellaswagPreprocessedJsonl,
    DATASET_SEEDS.hellaswagRawJsonl,
  ].map((t) => encoder.encode(t));
  fileCase(
    'datasets: jsonl (loadGsm8k)',
    [ds.DatasetsError],
    enc(DATASET_SEEDS.gsm8kJsonl),
    'c.jsonl',
    (p) => ds.loadGsm8k(p),
  );
  fileCase(
    'datasets: jsonl, onInvalid skip (loadRecords)',
    [ds.DatasetsError],
    enc(DATASET_SEEDS.gsm8kJsonl),
    'c.jsonl',
    (p) => ds.loadRecords(p, ds.gsm8kRecordSchema, { onInvalid: 'skip' }),
  );
  fileCase(
    'datasets: json array (loadAlpaca)',
    [ds.DatasetsError],
    enc(DATASET_SEEDS.alpacaJson),
    'c.json',
    (p) => ds.loadAlpaca(p),
  );
  fileCase(
    'datasets: csv (loadMmluCsv)',
    [ds.DatasetsError],
    enc(DATASET_SEEDS.mmluCsv),
    'c_test.csv',
    (p) => ds.loadMmluCsv(p),
  );
  fileCase('datasets: jsonl (loadHellaswag)', [ds.DatasetsError], hellaswagSeeds, 'c.jsonl', (p) =>
    ds.loadHellaswag(p),
  );
  fileCase(
    'datasets: parquet (loadRecords)',
    [ds.DatasetsError],
    parquetSeeds,
    'c.parquet',
    async (p) => {
      await ds.loadRecords(p, ds.mmluParquetSchema, { onInvalid: 'skip' });
      await ds.loadRecords(p, ds.gsm8kRecordSchema, { onInvalid: 'skip' });
    },
  );
  add({
    parser: 'datasets: json array (edited records)',
    typed: [ds.DatasetsError],
    arbitrary: mutatedJsonArb([JSON.parse(DATASET_SEEDS.alpacaJson)]),
    run: async (value) => {
      const path = join(temp, 'edited.json');
      writeFileSync(path, JSON.stringify(value) ?? '');
      await ds.loadAlpaca(path);
    },
  });
  const hs = await import('../../packages/bench-hellaswag/src/index');
  fileCase(
    'bench-hellaswag: loadHellaswagDocs (jsonl)',
    [ds.DatasetsError, hs.BenchHellaswagError],
    hellaswagSeeds,
    'h.jsonl',
    (p) => hs.loadHellaswagDocs(p),
  );
  const gsm = await import('../../packages/bench-gsm8k/src/index');
  fileCase(
    'bench-gsm8k: loadGsm8kDocs (jsonl)',
    [ds.DatasetsError, gsm.BenchGsm8kError],
    enc(DATASET_SEEDS.gsm8kJsonl),
    'g.jsonl',
    (p) => gsm.loadGsm8kDocs(p),
  );
  const mmlu = await import('../../packages/bench-mmlu/src/index');
  const mmluDir = join(temp, 'mmlu');
  mkdirSync(mmluDir);
  fileCase(
    'bench-mmlu: loadMmluCsvDocs + prompt (csv)',
    [ds.DatasetsError, mmlu.BenchMmluError],
    enc(DATASET_SEEDS.mmluCsv),
    'mmlu/machine_learning_test.csv',
    async () => {
      for (const doc of await mmlu.loadMmluCsvDocs(mmluDir, 'machine_learning'))
        mmlu.buildMmluPrompt(doc);
    },
  );
  fileCase(
    'bench-mmlu: loadMmluParquetDocs + prompt',
    [ds.DatasetsError, mmlu.BenchMmluError],
    parquetSeeds.slice(1),
    'm.parquet',
    async (p) => {
      for (const doc of await mmlu.loadMmluParquetDocs(p)) mmlu.buildMmluPrompt(doc);
    },
  );
  const core = await import('../../packages/bench-core/src/index');
  const coreNode = await import('../../packages/bench-core/src/node');
  fileCase(
    'bench-core: openJsonlRequestCache (jsonl)',
    [core.BenchCoreError],
    enc(CACHE_SEED),
    'cache.jsonl',
    async (p) => {
      const cache = await coreNode.openJsonlRequestCache(p);
      await cache.set('z'.repeat(64), 'x');
      await cache.flush();
    },
  );

  // --- @qlora/metrics -----------------------------------------------------------------------
  const metrics = await import('../../packages/metrics/src/index');
  const trimmed = (results: Record<string, unknown>): Record<string, unknown> =>
    Object.fromEntries(
      Object.entries(results).map(([k, v]) => [
        k,
        v !== null && typeof v === 'object' && !Array.isArray(v) && k !== 'config'
          ? Object.fromEntries(Object.entries(v).slice(0, 3))
          : v,
      ]),
    );
  const resultSeeds = ['results-base.json', 'results-ft.json', 'results-bootstrap0.json'].map((f) =>
    trimmed(JSON.parse(readFileSync(fixture('metrics', f), 'utf8'))),
  );
  const roundTrip = (input: string | object): void => {
    metrics.parseLmEvalResults(metrics.toLmEvalResults(metrics.parseLmEvalResults(input)));
  };
  add({
    parser: 'metrics: parseLmEvalResults (mutated text)',
    typed: [metrics.MetricsError],
    arbitrary: mutatedJsonBytesArb(resultSeeds),
    run: (bytes) => roundTrip(lenient.decode(bytes)),
  });
  add({
    parser: 'metrics: parseLmEvalResults (edited objects)',
    typed: [metrics.MetricsError],
    arbitrary: mutatedJsonArb(resultSeeds),
    run: (value) => roundTrip(value as object),
  });

  // --- @qlora/trainer (read-only: config.json and tokenizer files) ---------------------------
  try {
    const { parseLlamaConfig } = await import('../../packages/trainer/src/config');
    const { HfTokenizer } = await import('../../packages/trainer/src/hf-tokenizer');
    const { TrainerError } = await import('../../packages/trainer/src/errors');
    const configSeeds = [
      'llama3-gqa-tied',
      'mha-headdim-llama3',
      'mqa-untied',
      'tinyllama-tok',
    ].map((d) => JSON.parse(readFileSync(fixture('trainer', d, 'config.json'), 'utf8')));
    add({
      parser: 'trainer: parseLlamaConfig (edited config.json)',
      typed: [TrainerError],
      arbitrary: mutatedJsonArb(configSeeds),
      run: (json) => parseLlamaConfig(json),
    });
    const embedded = join(root, 'packages', 'cli', 'assets', 'embedded', 'model');
    const tokenizerJson = JSON.parse(readFileSync(join(embedded, 'tokenizer.json'), 'utf8'));
    const tokenizerConfig = JSON.parse(
      readFileSync(join(embedded, 'tokenizer_config.json'), 'utf8'),
    );
    add({
      parser: 'trainer: HfTokenizer.fromJson + encode/decode (edited tokenizer files)',
      typed: [TrainerError],
      arbitrary: fc.oneof(
        fc.tuple(mutatedJsonArb([tokenizerJson]), fc.constant(tokenizerConfig as unknown)),
        fc.tuple(fc.constant(tokenizerJson as unknown), mutatedJsonArb([tokenizerConfig])),
      ),
      run: ([json, config]) => {
        const tokenizer = HfTokenizer.fromJson(json, config);
        tokenizer.decode(tokenizer.encode('Hello world, "quoted" [x] 42\n'));
      },
    });
  } catch (error) {
    console.error(
      `trainer targets skipped: cannot import packages/trainer (${(error as Error).message})`,
    );
  }

  // --- @qlora/cli (read-only: experiment config) ----------------------------------------------
  try {
    const { parseExperimentConfig } = await import('../../packages/cli/src/config');
    const { CliError } = await import('../../packages/cli/src/errors');
    const experiment = JSON.parse(
      readFileSync(join(root, 'packages', 'cli', 'assets', 'embedded', 'experiment.json'), 'utf8'),
    );
    add({
      parser: 'cli: parseExperimentConfig (mutated experiment.json)',
      typed: [CliError],
      arbitrary: mutatedJsonBytesArb([experiment]),
      run: (bytes) => parseExperimentConfig(lenient.decode(bytes), 'experiment.json'),
    });
  } catch (error) {
    console.error(`cli target skipped: cannot import packages/cli (${(error as Error).message})`);
  }

  return list.filter((t) => ONLY === undefined || t.parser.includes(ONLY));
}

async function runTarget(target: AnyTarget): Promise<Result> {
  const result: Result = {
    parser: target.parser,
    cases: 0,
    outcomes: new Map(),
    codes: new Set(),
    maxMs: 0,
    failures: [],
  };
  const numRuns = Math.round(RUNS * (target.share ?? 1));
  await fc.check(
    fc.asyncProperty(target.arbitrary, async (input) => {
      const index = result.cases++;
      const start = performance.now();
      let outcome = 'ok';
      try {
        await target.run(input as never, index);
      } catch (error) {
        const typed = target.typed.find((cls) => error instanceof cls);
        if (typed) {
          outcome = (error as Error).name;
          result.codes.add(`${outcome}:${String((error as { code?: unknown }).code)}`);
        } else {
          outcome = `UNTYPED ${(error as Error)?.name ?? typeof error}`;
          result.failures.push(
            `case ${index}: ${String((error as Error)?.stack ?? error)
              .split('\n')
              .slice(0, 4)
              .join(' | ')}`,
          );
        }
      }
      const ms = performance.now() - start;
      result.maxMs = Math.max(result.maxMs, ms);
      if (ms > CASE_MS_BOUND)
        result.failures.push(`case ${index}: took ${ms.toFixed(0)} ms (bound ${CASE_MS_BOUND})`);
      result.outcomes.set(outcome, (result.outcomes.get(outcome) ?? 0) + 1);
      return true;
    }),
    { seed: SEED, numRuns },
  );
  return result;
}

const unhandled: string[] = [];
process.on('unhandledRejection', (reason) => {
  unhandled.push(
    String((reason as Error)?.stack ?? reason)
      .split('\n')
      .slice(0, 3)
      .join(' | '),
  );
});

const results: Result[] = [];
const started = performance.now();
for (const target of await targets()) {
  const t0 = performance.now();
  const result = await runTarget(target);
  results.push(result);
  const outcomes = [...result.outcomes].map(([k, v]) => `${k} ${v}`).join(' · ');
  console.error(
    `${result.parser}: ${result.cases} cases in ${((performance.now() - t0) / 1000).toFixed(1)} s (${outcomes})`,
  );
}
rmSync(temp, { recursive: true, force: true });

const rows = results.map((r) => [
  r.parser,
  String(r.cases),
  String(SEED),
  [...r.outcomes].map(([k, v]) => `${k} ${v}`).join(' · '),
  String(r.codes.size),
  r.maxMs.toFixed(1),
]);
console.log('| parser | cases | seed | outcomes by error class | distinct codes | max ms/case |');
console.log('|---|---:|---:|---|---:|---:|');
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
const failures = results.flatMap((r) => r.failures.map((f) => `${r.parser}: ${f}`));
console.log(
  `\n${results.reduce((n, r) => n + r.cases, 0)} cases, ${results.length} parsers, seed ${SEED}, ${((performance.now() - started) / 1000).toFixed(0)} s; ${failures.length} failure(s), ${unhandled.length} unhandled rejection(s).`,
);
for (const f of [...failures, ...unhandled.map((u) => `unhandled rejection: ${u}`)].slice(0, 50))
  console.log(`FAIL ${f}`);
process.exit(failures.length > 0 || unhandled.length > 0 ? 1 : 0);
