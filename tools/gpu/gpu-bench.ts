// The Node side of the GPU-host benchmark (bundled by tools/gpu/build.mjs, run by
// tools/gpu/run-on-gpu.sh): starts a tfjs backend (webgpu by default), checks logit parity against
// the transformers fixtures, loads a Llama-3.2-1B-shaped checkpoint while sampling host memory,
// compares its last-position logits with PyTorch fp32, and times forward passes of B × T tokens.
// Results go to --out as JSON, rewritten after every stage so a crash still leaves what was measured.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  type BackendName,
  initBackend,
  type LlamaModel,
  loadModel,
} from '../../packages/trainer/src/index';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'webgpu' },
    fixtures: { type: 'string', default: 'test-fixtures/trainer' },
    model: { type: 'string' },
    'torch-ref': { type: 'string' },
    out: { type: 'string', default: 'node-bench.json' },
    batch: { type: 'string', default: '32' },
    seq: { type: 'string', default: '128' },
    iterations: { type: 'string', default: '3' },
    'time-budget-s': { type: 'string', default: '60' },
  },
});

/** The few tfjs-core calls needed here; tensors have no chained ops in tfjs-core's Node build. */
interface TfCore {
  slice(x: unknown, begin: number[], size: number[]): TensorLike;
  memory(): { numBytes: number; numTensors: number };
}
interface TensorLike {
  data(): Promise<ArrayLike<number>>;
  dispose(): void;
}
// The same tfjs-core instance the bundle imports (external, resolved beside the bundle).
const tf = createRequire(import.meta.url)('@tensorflow/tfjs-core') as TfCore;

const PARITY_CASES = ['llama3-gqa-tied', 'mqa-untied', 'mha-headdim-llama3'] as const;
const PARITY_BOUND = 1e-4;
const MIB = 2 ** 20;

interface ReferenceCase {
  sequences: { input_ids: number[]; logits_offset: number; shape: number[] }[];
  left_padded_batch?: {
    input_ids: number[][];
    attention_mask: number[][];
    logits_offset: number;
    shape: number[];
  };
  greedy?: { prompt: number[]; max_new_tokens: number; tokens: number[] }[];
}

const results: Record<string, unknown> = { node: process.version, backend: args.backend };
const save = () => writeFileSync(args.out, `${JSON.stringify(results, null, 2)}\n`);
const log = (line: string) => console.log(`[gpu-bench] ${line}`);

/** max |a − b| / max |b|, the parity measure of the trainer tests. */
function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs((actual[i] as number) - (expected[i] as number)));
    maxRef = Math.max(maxRef, Math.abs(expected[i] as number));
  }
  return maxDiff / maxRef;
}

/** Peak resident set of this process so far (VmHWM), in bytes. */
function peakRssBytes(): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) * 1024 : Number.NaN;
}

/** The token ids tools/gpu/torch_bench.py uses too: deterministic, spread over the vocabulary. */
function benchIds(batch: number, seq: number, vocab: number): number[][] {
  return Array.from({ length: batch }, (_, b) =>
    Array.from({ length: seq }, (_, t) => (b * 7919 + t * 104729 + 12345) % vocab),
  );
}

async function adapterInfo(): Promise<Record<string, unknown>> {
  type Adapter = { info?: Record<string, unknown>; limits: Record<string, number> };
  const gpu = (
    globalThis as unknown as {
      navigator?: { gpu?: { requestAdapter(o: unknown): Promise<Adapter | null> } };
    }
  ).navigator?.gpu;
  const adapter = await gpu?.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return {};
  const info = adapter.info ?? {};
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    maxBufferSize: adapter.limits.maxBufferSize,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
  };
}

async function parity(): Promise<void> {
  const cases: Record<string, unknown>[] = [];
  results.parity = cases;
  for (const name of PARITY_CASES) {
    const dir = join(args.fixtures, name);
    const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as ReferenceCase;
    const bytes = readFileSync(join(dir, 'logits.bin'));
    const refLogits = new Float32Array(
      bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    );
    const { model } = await loadModel(dir, { skipTokenizer: true });
    const entry: Record<string, unknown> = { case: name };
    cases.push(entry);
    try {
      let worst = 0;
      const lengths: number[] = [];
      for (const seq of ref.sequences) {
        const logits = await model.forwardLogits(seq.input_ids);
        const size = seq.shape.reduce((a, b) => a * b, 1);
        const expected = refLogits.subarray(seq.logits_offset, seq.logits_offset + size);
        worst = Math.max(worst, relativeError(logits, expected));
        lengths.push(seq.input_ids.length);
      }
      entry.sequenceLengths = lengths;
      entry.maxRelError = worst;
      const batch = ref.left_padded_batch;
      if (batch) {
        const logits = model.forward(batch.input_ids, { attentionMask: batch.attention_mask });
        const actual = await logits.data();
        logits.dispose();
        const [b, t, v] = batch.shape as [number, number, number];
        const expected = refLogits.subarray(batch.logits_offset, batch.logits_offset + b * t * v);
        const got: number[] = [];
        const want: number[] = [];
        for (let i = 0; i < b; i++) {
          for (let j = 0; j < t; j++) {
            if (batch.attention_mask[i]?.[j] === 0) continue;
            const at = (i * t + j) * v;
            got.push(...actual.subarray(at, at + v));
            want.push(...expected.subarray(at, at + v));
          }
        }
        entry.leftPaddedBatchRelError = relativeError(got, want);
      }
      let identical = true;
      for (const g of ref.greedy ?? []) {
        const tokens = await model.generateGreedy(g.prompt, g.max_new_tokens);
        identical &&= JSON.stringify(tokens) === JSON.stringify(g.tokens);
      }
      entry.greedyIdentical = identical;
      const errors = [worst, (entry.leftPaddedBatchRelError as number | undefined) ?? 0];
      entry.pass = Math.max(...errors) <= PARITY_BOUND && identical;
      log(
        `parity ${name}: max rel error ${worst.toExponential(2)} (T=${lengths.join(',')}), ` +
          `left-padded batch ${(entry.leftPaddedBatchRelError as number | undefined)?.toExponential(2)}, ` +
          `greedy identical ${identical}`,
      );
    } catch (error) {
      entry.error = String(error);
      entry.pass = false;
      log(`parity ${name} failed: ${String(error)}`);
    } finally {
      model.dispose();
      save();
    }
  }
}

async function loadLarge(dir: string): Promise<LlamaModel> {
  const rssBefore = process.memoryUsage().rss;
  const hwmBefore = peakRssBytes();
  let sampledPeak = rssBefore;
  const timer = setInterval(() => {
    sampledPeak = Math.max(sampledPeak, process.memoryUsage().rss);
  }, 20);
  const start = performance.now();
  const { model, config } = await loadModel(dir, { skipTokenizer: true });
  const seconds = (performance.now() - start) / 1000;
  clearInterval(timer);
  sampledPeak = Math.max(sampledPeak, process.memoryUsage().rss);
  let parameters = 0;
  for (const t of model.namedWeights().values()) parameters += t.size;
  results.load = {
    dir,
    seconds,
    parameters,
    rssBeforeMiB: rssBefore / MIB,
    sampledPeakRssMiB: sampledPeak / MIB,
    vmHwmBeforeMiB: hwmBefore / MIB,
    vmHwmAfterMiB: peakRssBytes() / MIB,
    rssAfterMiB: process.memoryUsage().rss / MIB,
    vocab: config.vocabSize,
    layers: config.numHiddenLayers,
  };
  save();
  log(
    `loaded ${dir}: ${(parameters / 1e9).toFixed(3)} B parameters in ${seconds.toFixed(1)} s, ` +
      `peak RSS ${(sampledPeak / MIB).toFixed(0)} MiB (before ${(rssBefore / MIB).toFixed(0)} MiB)`,
  );
  return model;
}

/** Last-position logits of the first rows against PyTorch fp32 (strict) on the same ids. */
async function parityAtScale(model: LlamaModel, ids: number[][], refPath: string): Promise<void> {
  const bytes = readFileSync(refPath);
  const ref = new Float32Array(
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
  );
  const vocab = model.config.vocabSize;
  const rows = ref.length / vocab;
  const logits = model.forward(ids.slice(0, rows), { lastOnly: true });
  const actual = await logits.data();
  logits.dispose();
  const error = relativeError(actual, ref);
  let argmaxAgree = 0;
  for (let r = 0; r < rows; r++) {
    const argmax = (a: ArrayLike<number>) => {
      let best = r * vocab;
      for (let i = r * vocab; i < (r + 1) * vocab; i++)
        if ((a[i] as number) > (a[best] as number)) best = i;
      return best;
    };
    if (argmax(actual) === argmax(ref)) argmaxAgree++;
  }
  results.parityAtScale = { rows, relError: error, argmaxAgree };
  save();
  log(
    `1B parity vs PyTorch fp32, last position of ${rows} rows: rel error ${error.toExponential(2)}, argmax agree ${argmaxAgree}/${rows}`,
  );
}

async function timeForward(model: LlamaModel, ids: number[][], lastOnly: boolean): Promise<void> {
  const tokens = ids.length * (ids[0]?.length ?? 0);
  const once = async () => {
    const start = performance.now();
    const logits = model.forward(ids, { lastOnly });
    const head = tf.slice(logits, [0, 0, 0], [1, 1, 8]);
    const values = await head.data(); // waits for the whole queue: the forward is done
    head.dispose();
    logits.dispose();
    if (!Array.from(values).every(Number.isFinite)) throw new Error('non-finite logits');
    return (performance.now() - start) / 1000;
  };
  const key = lastOnly ? 'forwardLastOnly' : 'forwardFull';
  const entry: Record<string, unknown> = { batch: ids.length, seq: ids[0]?.length, lastOnly };
  (results[key] as unknown) = entry;
  try {
    entry.firstSeconds = await once(); // uploads, shader compilation
    entry.warmSeconds = await once();
    const samples: number[] = [];
    const budget = Number(args['time-budget-s']) * 1000;
    const start = performance.now();
    while (
      samples.length < Number(args.iterations) &&
      (samples.length < 2 || performance.now() - start < budget)
    ) {
      samples.push(await once());
    }
    samples.sort((a, b) => a - b);
    const median = samples[Math.floor(samples.length / 2)] as number;
    entry.samples = samples;
    entry.medianSeconds = median;
    entry.tokensPerSecond = tokens / median;
    log(
      `forward ${lastOnly ? 'last-position' : 'full'} logits, ${ids.length}×${ids[0]?.length}: median ${median.toFixed(3)} s → ${(tokens / median).toFixed(0)} tokens/s (first ${(entry.firstSeconds as number).toFixed(2)} s)`,
    );
  } catch (error) {
    entry.error = String(error);
    log(`forward ${lastOnly ? 'last-position' : 'full'} failed: ${String(error)}`);
  }
  entry.vmHwmMiB = peakRssBytes() / MIB;
  entry.tensorMiB = tf.memory().numBytes / MIB;
  save();
}

async function main(): Promise<void> {
  const report = await initBackend(args.backend as BackendName);
  results.tried = report.tried;
  if (report.backend === 'webgpu') results.adapter = await adapterInfo();
  save();
  log(
    `backend ${report.backend}: ${JSON.stringify(report.tried)} ${JSON.stringify(results.adapter ?? {})}`,
  );
  await parity();
  if (args.model === undefined) return;
  const model = await loadLarge(args.model);
  const ids = benchIds(Number(args.batch), Number(args.seq), model.config.vocabSize);
  if (args['torch-ref'] !== undefined) {
    try {
      await parityAtScale(model, ids, args['torch-ref']);
    } catch (error) {
      results.parityAtScale = { error: String(error) };
      save();
      log(`1B parity failed: ${String(error)}`);
    }
  }
  await timeForward(model, ids, true);
  await timeForward(model, ids, false);
  model.dispose();
}

main().then(
  () => {
    save();
    // Dawn keeps handles open; do not wait for the event loop to drain.
    process.exit(0);
  },
  (error: unknown) => {
    results.fatal = String((error as Error)?.stack ?? error);
    save();
    console.error(error);
    process.exit(1);
  },
);
