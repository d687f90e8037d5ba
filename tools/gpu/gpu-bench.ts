// The Node side of the GPU-host benchmark (bundled by tools/gpu/build.mjs, run by
// tools/gpu/run-on-gpu.sh): starts a tfjs backend (webgpu by default) and runs the stages named in
// --stages: `fixtures` (logit parity against the transformers fixtures), `logits` (loads the
// Llama-3.2-1B-shaped checkpoint densely while sampling host memory and compares its last-position
// logits with PyTorch fp32), `forward` (times forward passes of B × T tokens), `train` (LoRA
// training steps: lossGradients, clipping, AdamW 'tensor-ops', with or without gradient
// checkpointing, on an NF4 or dense base; tokens/s and peak memory; --profile times one step's
// dispatches on the GPU), `train-api` (the public train() on an NF4 base), `kernels` (the WGSL
// matmuls and NF4 dequantization against tfjs's programs and a copy), `hellaswag` (lm-eval
// HellaSwag through bench-core, token pairs written for tools/gpu/torch_hellaswag.py);
// --kernels off runs tfjs's generic matmuls instead of @qlora/lora's. Results are merged into
// --out (JSON), rewritten after every stage and step, so a crash or a deadline still leaves what
// was measured; several processes (one per stage) can share one file.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { evaluate } from '../../packages/bench-core/src/index';
import { hellaswagTask, loadHellaswagDocs } from '../../packages/bench-hellaswag/src/index';
// Types only (erased by the bundler); the runtime instance is the external one required below.
import type * as TfTypes from '../../packages/lora/node_modules/@tensorflow/tfjs-core';
import {
  int8ProductReference,
  quantizeRowsReference,
} from '../../packages/lora/src/_int8-reference';
import type { F16FixtureCase } from '../../packages/lora/src/_test-helpers';
import { f16MatMul, packRowsF16 } from '../../packages/lora/src/_webgpu-f16';
import { int8MatMul, quantizeRowsInt8 } from '../../packages/lora/src/_webgpu-int8';
import {
  nf4TiledMatMul,
  type RightLayout,
  tiledMatMul,
} from '../../packages/lora/src/_webgpu-matmul';
import {
  injectLora,
  type LoraLinear,
  loraLayers,
  Nf4Linear,
  setLoraTraining,
  useF16BaseProducts,
  useFusedWebgpuKernels,
} from '../../packages/lora/src/index';
import { dequantize4bit, quantize4bit } from '../../packages/nf4/src/index';
import { relativeError } from '../../packages/test-utils/src/compare';
import {
  AdamW,
  type AdamWArithmetic,
  type BackendName,
  clipCoefficient,
  encodePair,
  gradNormAsync,
  initBackend,
  type LlamaModel,
  loadModel,
  lossGradients,
  train,
  useF16Inference,
  useInt8Inference,
} from '../../packages/trainer/src/index';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'webgpu' },
    stages: { type: 'string' },
    fixtures: { type: 'string', default: 'test-fixtures/trainer' },
    model: { type: 'string' },
    'torch-ref': { type: 'string' },
    out: { type: 'string', default: 'node-bench.json' },
    batch: { type: 'string', default: '32' },
    seq: { type: 'string', default: '128' },
    iterations: { type: 'string', default: '3' },
    'time-budget-s': { type: 'string', default: '60' },
    // train stage
    'train-batch': { type: 'string', default: '8' },
    'train-seq': { type: 'string', default: '512' },
    'train-steps': { type: 'string', default: '3' },
    checkpointing: { type: 'string', default: 'on' },
    quantize: { type: 'string', default: 'nf4' },
    'force-nf4': { type: 'boolean', default: false },
    // on: the tiled/fused WGSL kernels of @qlora/lora (default); off: tfjs's generic matMul
    kernels: { type: 'string', default: 'on' },
    // time every GPU dispatch of one extra training step (timestamp queries)
    profile: { type: 'boolean', default: false },
    // AdamW arithmetic of the train stage: webgpu-kernel (train()'s default there) or tensor-ops
    optimizer: { type: 'string', default: 'webgpu-kernel' },
    // hellaswag stage: lm-eval's preprocessed validation jsonl; the model folder needs tokenizer.json
    hellaswag: { type: 'string' },
    'eval-batch': { type: 'string', default: '32' },
    'eval-limit': { type: 'string' },
    'pairs-out': { type: 'string' },
    'kernel-rows': { type: 'string', default: '4096' },
    'lora-r': { type: 'string', default: '16' },
    'lora-alpha': { type: 'string', default: '16' },
    lr: { type: 'string', default: '2e-4' },
    // W8A8 (issue 10): start Dawn with subgroup matrices; --w8a8 converts the loaded model
    'int8-tensor-cores': { type: 'boolean', default: false },
    // f16 tensor cores (issue 10, fifth session): start Dawn with shader-f16 and subgroup
    // matrices; --f16 converts the loaded model (useF16Inference), keys end in `_f16`
    'f16-tensor-cores': { type: 'boolean', default: false },
    f16: { type: 'boolean', default: false },
    // training with the frozen base's products on the f16 tensor cores (useF16BaseProducts)
    'f16-base': { type: 'boolean', default: false },
    // w8a8-accuracy stage: which conversion is compared against f32 (w8a8 or f16)
    'accuracy-mode': { type: 'string', default: 'w8a8' },
    // extra Dawn toggles, comma-separated (e.g. disable_robustness); result keys then end in `_nr`
    'dawn-toggles': { type: 'string', default: '' },
    w8a8: { type: 'boolean', default: false },
    // w8a8-accuracy stage: the model compared f32 vs W8A8 (a pretrained one: stories260K) and
    // the text it reads (lm-eval's preprocessed HellaSwag jsonl: ctx + the gold ending)
    'accuracy-model': { type: 'string' },
    'accuracy-seqs': { type: 'string', default: '16' },
    // tensor-cores (webgpu, NVIDIA) or emulated (any backend: the same codes through f32 matmuls)
    'w8a8-arithmetic': { type: 'string', default: 'tensor-cores' },
  },
});

/** The few tfjs-core calls needed here; tensors have no chained ops in tfjs-core's Node build. */
interface TfCore {
  slice(x: unknown, begin: number[], size: number[]): TensorLike;
  memory(): {
    numBytes: number;
    numTensors: number;
    numBytesInGPU?: number;
    numBytesAllocatedInGPU?: number;
  };
  engine(): EngineLike;
  backend(): BackendLike;
  tidy<T>(fn: () => T): T;
  sqrt(x: unknown): TensorLike;
  sum(x: unknown): TensorLike;
  square(x: unknown): TensorLike;
  stack(xs: unknown[]): TensorLike;
  mul(a: unknown, b: unknown): TensorLike;
  scalar(x: number): TensorLike;
  dispose(x: unknown): void;
}
interface TensorLike {
  shape: number[];
  data(): Promise<ArrayLike<number>>;
  dispose(): void;
}
/** The engine internals read here: the live-tensor byte count behind tf.memory().numBytes. */
interface EngineLike {
  state: { numBytes: number };
  trackTensor(tensor: unknown, backend: unknown): void;
}
/** The webgpu backend internals used by the deferred read and the GPU buffer counters. */
interface BackendLike {
  readSync(dataId: object): unknown;
  getBufferData?(buffer: unknown): Promise<ArrayBuffer>;
  tensorMap?: {
    get(dataId: object): { values: unknown; dtype: string; shape: number[]; resource: unknown };
  };
  bufferManager?: { numBytesUsed: number; numBytesAllocated: number };
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

// Several processes (one per stage) write the same file: keep what earlier ones wrote.
const results: Record<string, unknown> = {
  ...(existsSync(args.out) ? (JSON.parse(readFileSync(args.out, 'utf8')) as object) : {}),
  node: process.version,
  backend: args.backend,
};
const save = () => writeFileSync(args.out, `${JSON.stringify(results, null, 2)}\n`);
const log = (line: string) => console.log(`[gpu-bench] ${line}`);

/** Result keys of runs with the WGSL kernels off (tfjs's generic programs) end in `_generic`. */
const kernelSuffix = () =>
  (args.w8a8
    ? '_w8a8'
    : args.f16
      ? '_f16'
      : args['f16-base']
        ? '_f16base'
        : args.kernels === 'off'
          ? '_generic'
          : '') + (args['dawn-toggles'].includes('disable_robustness') ? '_nr' : '');

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
  results[`parityAtScale${kernelSuffix()}`] = { rows, relError: error, argmaxAgree };
  save();
  log(
    `1B parity vs PyTorch fp32, last position of ${rows} rows: rel error ${error.toExponential(2)}, argmax agree ${argmaxAgree}/${rows}`,
  );
}

async function timeForward(model: LlamaModel, ids: number[][], lastOnly: boolean): Promise<void> {
  const tokens = ids.length * (ids[0]?.length ?? 0);
  // A dispatch the device refuses (a binding past its limits) is skipped silently and leaves
  // stale values: a validation scope around each call turns that into an error.
  const device = (
    tf.backend() as unknown as {
      device?: {
        pushErrorScope(f: string): void;
        popErrorScope(): Promise<{ message: string } | null>;
      };
    }
  ).device;
  const once = async () => {
    const start = performance.now();
    device?.pushErrorScope('validation');
    const logits = model.forward(ids, { lastOnly });
    const head = tf.slice(logits, [0, 0, 0], [1, 1, 8]);
    const values = await head.data(); // waits for the whole queue: the forward is done
    head.dispose();
    logits.dispose();
    const refused = await device?.popErrorScope();
    if (refused) throw new Error(`WebGPU validation error: ${refused.message.slice(0, 300)}`);
    if (!Array.from(values).every(Number.isFinite)) throw new Error('non-finite logits');
    return (performance.now() - start) / 1000;
  };
  const key = `${lastOnly ? 'forwardLastOnly' : 'forwardFull'}${kernelSuffix()}`;
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

// ---------------------------------------------------------------------------------------------
// Training stage

/**
 * tfjs's webgpu backend reads a tensor synchronously (`dataSync`) through an OffscreenCanvas, which
 * Node does not have (ReferenceError), and `lossGradients` reads its loss with `dataSync`. Here a
 * synchronous read of a GPU-resident tensor instead queues the same buffer copy the async read
 * makes (submitted at once, so freeing the tensor afterwards is safe), returns NaNs, and the
 * caller awaits the real values from `deferredReads`. Every use is counted and reported.
 */
const deferredReads: { shape: number[]; values: Promise<Float32Array | Int32Array> }[] = [];
function deferSyncReads(): void {
  const backend = tf.backend();
  if (backend.getBufferData === undefined || backend.tensorMap === undefined) return;
  const getBufferData = backend.getBufferData.bind(backend);
  const tensorMap = backend.tensorMap;
  const readSync = backend.readSync.bind(backend);
  backend.readSync = (dataId: object) => {
    const data = tensorMap.get(dataId);
    if (data.values != null || data.dtype === 'string' || data.dtype === 'complex64')
      return readSync(dataId);
    const size = data.shape.reduce((a, b) => a * b, 1);
    const int = data.dtype === 'int32' || data.dtype === 'bool';
    const values = getBufferData(data.resource).then((buffer) =>
      int ? new Int32Array(buffer, 0, size) : new Float32Array(buffer, 0, size),
    );
    deferredReads.push({ shape: data.shape, values });
    return int ? new Int32Array(size) : new Float32Array(size).fill(Number.NaN);
  };
}

/**
 * Peak of tf.memory().numBytes (bytes of live tfjs tensors as the engine counts them: every
 * tensor object, so views sharing a buffer count twice; weights included) and of the webgpu
 * buffer manager's bytes in use, sampled whenever a tensor is created.
 */
const peaks = { numBytes: 0, gpuBytesInUse: 0 };
function trackMemoryPeaks(): void {
  const engine = tf.engine();
  const track = engine.trackTensor.bind(engine);
  engine.trackTensor = (tensor: unknown, backend: unknown) => {
    track(tensor, backend);
    peaks.numBytes = Math.max(peaks.numBytes, engine.state.numBytes);
    const used = tf.backend().bufferManager?.numBytesUsed;
    if (used !== undefined) peaks.gpuBytesInUse = Math.max(peaks.gpuBytesInUse, used);
  };
}
function resetPeaks(): void {
  const m = tf.memory();
  peaks.numBytes = m.numBytes;
  peaks.gpuBytesInUse = m.numBytesInGPU ?? 0;
}
function memorySnapshot(): Record<string, number> {
  const m = tf.memory();
  return {
    numBytesMiB: m.numBytes / MIB,
    peakNumBytesMiB: peaks.numBytes / MIB,
    ...(m.numBytesInGPU !== undefined
      ? {
          gpuBytesInUseMiB: m.numBytesInGPU / MIB,
          peakGpuBytesInUseMiB: peaks.gpuBytesInUse / MIB,
          gpuBytesAllocatedMiB: (m.numBytesAllocatedInGPU ?? 0) / MIB,
        }
      : {}),
    rssMiB: process.memoryUsage().rss / MIB,
  };
}

/** Seeded normal-ish values (sum of uniforms) for the NF4 check weight. */
function randomWeights(count: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (next() + next() + next() - 1.5) * 0.05;
  return out;
}

/** Max |Δ| between the backend's NF4 dequantization and @qlora/nf4's JS dequantize4bit. */
async function nf4DequantError(proj: Nf4Linear): Promise<{ maxAbsDiff: number; maxAbs: number }> {
  const words = (await proj.packedWords.data()) as Int32Array;
  const bytes = Math.ceil((proj.inFeatures * proj.outFeatures) / 2);
  const packed = new Uint8Array(words.buffer, words.byteOffset, bytes).slice();
  const expected = dequantize4bit({ packed, state: proj.state });
  const w = proj.dequantize();
  const actual = await w.data();
  w.dispose();
  let maxAbsDiff = 0;
  let maxAbs = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs((actual[i] as number) - (expected[i] as number));
    maxAbsDiff = Number.isNaN(d) ? Number.POSITIVE_INFINITY : Math.max(maxAbsDiff, d);
    maxAbs = Math.max(maxAbs, Math.abs(expected[i] as number));
  }
  return { maxAbsDiff, maxAbs };
}

/** NF4 (blocksize 64, double quant) of a random 2048 × 2048 weight, dequantized on this backend. */
async function nf4Check(): Promise<Record<string, unknown>> {
  const shape: [number, number] = [2048, 2048];
  const q = quantize4bit(randomWeights(shape[0] * shape[1], 3407), {
    shape,
    blocksize: 64,
    quantType: 'nf4',
    doubleQuant: true,
  });
  const proj = new Nf4Linear('nf4-check', q);
  try {
    const { maxAbsDiff, maxAbs } = await nf4DequantError(proj);
    return { shape, maxAbsDiff, maxAbs, exact: maxAbsDiff === 0 };
  } finally {
    proj.dispose();
  }
}

/** The adapter variables by the PEFT names lossGradients keys its gradients with. */
function adapterVariables(
  model: LlamaModel,
): Record<string, ReturnType<LoraLinear['loraWeights']>[string]> {
  const named: Record<string, ReturnType<LoraLinear['loraWeights']>[string]> = {};
  for (const lora of loraLayers(model)) {
    for (const [suffix, variable] of Object.entries(lora.loraWeights()))
      named[`base_model.model.${lora.name}.${suffix}`] = variable;
  }
  return named;
}

/**
 * GPU time per program of one synchronous call, from WebGPU timestamp queries (tfjs's `time()`
 * times every dispatch when the adapter has `timestamp-query`): programs are labelled with their
 * class and output shape, summed per label and per class.
 */
async function profileGpu(fn: () => unknown): Promise<Record<string, unknown>> {
  const backend = tf.backend() as unknown as ProgramBackend & {
    time?(f: () => void): Promise<{ kernelMs: number; getExtraProfileInfo?(): string }>;
  };
  if (backend.time === undefined || backend.runWebGPUProgram === undefined) {
    return { error: 'no timed webgpu programs on this backend' };
  }
  const run = backend.runWebGPUProgram.bind(backend);
  // Where in the step the GPU buffers in use peak (the dispatch ordinal and program), and the
  // pool's allocation then and at the end.
  const manager = (
    backend as unknown as { bufferManager?: { numBytesUsed: number; numBytesAllocated: number } }
  ).bufferManager;
  const memory = {
    peakUsedMiB: 0,
    allocatedAtPeakMiB: 0,
    peakAllocatedMiB: 0,
    atDispatch: 0,
    program: '',
  };
  let dispatches = 0;
  backend.runWebGPUProgram = (program: object, ...rest: unknown[]) => {
    const shape = (program as { outputShape?: number[] }).outputShape ?? [];
    const name = (program as { constructor: { name: string } }).constructor.name;
    const label = `${name}[${shape.join('x')}]`;
    Object.defineProperty(program, 'constructor', { value: { name: label } });
    const out = (run as (...a: unknown[]) => unknown)(program, ...rest);
    dispatches += 1;
    if (manager !== undefined) {
      const used = manager.numBytesUsed / MIB;
      const allocated = manager.numBytesAllocated / MIB;
      memory.peakAllocatedMiB = Math.max(memory.peakAllocatedMiB, allocated);
      if (used > memory.peakUsedMiB) {
        Object.assign(memory, {
          peakUsedMiB: used,
          allocatedAtPeakMiB: allocated,
          atDispatch: dispatches,
          program: label,
        });
      }
    }
    return out;
  };
  let result: unknown;
  try {
    const start = performance.now();
    const timing = await backend.time(() => {
      result = fn();
    });
    const wallMs = performance.now() - start;
    const byLabel = new Map<string, { ms: number; count: number }>();
    const byClass = new Map<string, { ms: number; count: number }>();
    for (const item of (timing.getExtraProfileInfo?.() ?? '').split(', ')) {
      const at = item.lastIndexOf(': ');
      if (at < 0) continue;
      const label = item.slice(0, at);
      const ms = Number(item.slice(at + 2));
      const cls = label.replace(/\[.*$/, '');
      for (const [map, key] of [
        [byLabel, label],
        [byClass, cls],
      ] as const) {
        const entry = map.get(key) ?? { ms: 0, count: 0 };
        entry.ms += ms;
        entry.count += 1;
        map.set(key, entry);
      }
    }
    const sorted = (map: Map<string, { ms: number; count: number }>, top: number) =>
      [...map.entries()]
        .sort((a, b) => b[1].ms - a[1].ms)
        .slice(0, top)
        .map(([label, v]) => ({ label, ms: v.ms, count: v.count }));
    return {
      kernelMs: timing.kernelMs,
      wallMs,
      dispatches,
      memory,
      byClass: sorted(byClass, 40),
      byLabel: sorted(byLabel, 60),
    };
  } finally {
    backend.runWebGPUProgram = run as typeof backend.runWebGPUProgram;
    tf.dispose(result as never);
  }
}

/**
 * Where one loglikelihood batch's time goes (the open question of issue 10: HellaSwag runs at
 * about half the forward benchmark's tokens/s at any batch size). A batch from the middle of the
 * length order, built as `scoreTokenPairs` builds it: host time to record the forward, GPU time
 * per program (timestamp queries), and the readback, each measured on its own.
 */
async function profileLoglikelihoodBatch(
  model: LlamaModel,
  pairs: readonly { context: number[]; continuation: number[] }[],
  batchSize: number,
): Promise<Record<string, unknown>> {
  const wholes = pairs.map((p) => [...p.context, ...p.continuation]);
  const order = wholes.map((_, i) => i).sort((a, b) => wholes[b]!.length - wholes[a]!.length);
  const middle = Math.max(0, Math.floor(order.length / 2) - Math.floor(batchSize / 2));
  const chunk = order.slice(middle, middle + batchSize);
  const inputs = chunk.map((i) => wholes[i]!.slice(0, -1));
  const width = Math.max(...inputs.map((row) => row.length));
  const padded = inputs.map((row) => [...row, ...new Array<number>(width - row.length).fill(0)]);
  const positions: [number, number][] = [];
  chunk.forEach((i, r) => {
    const contLength = pairs[i]!.continuation.length;
    for (let j = 0; j < contLength; j++) positions.push([r, inputs[r]!.length - contLength + j]);
  });
  const vocab = model.config.vocabSize;
  const score = () =>
    tfAll.tidy(() => {
      const logits = tfAll.reshape(model.forward(padded, { logitPositions: positions }) as never, [
        positions.length,
        vocab,
      ]);
      const logSoftmax = tfAll.logSoftmax(logits);
      return [logSoftmax, tfAll.argMax(logSoftmax, 1)];
    }) as unknown as TensorLike[];
  // Warm (shaders for this width), then one timed pass split into recording and readback.
  for (const t of score()) await (t as unknown as { data(): Promise<unknown> }).data();
  const recordStart = performance.now();
  const outputs = score();
  const recordMs = performance.now() - recordStart;
  await Promise.all(outputs.map((t) => (t as unknown as { data(): Promise<unknown> }).data()));
  const totalMs = performance.now() - recordStart;
  tf.dispose(outputs as never);
  const gpu = await profileGpu(score);
  return {
    rows: chunk.length,
    width,
    tokens: inputs.reduce((a, row) => a + row.length, 0),
    paddedTokens: chunk.length * width,
    logitRows: positions.length,
    recordMs,
    totalMs,
    readbackAfterRecordMs: totalMs - recordMs,
    gpu,
  };
}

async function trainStage(dir: string): Promise<void> {
  const batch = Number(args['train-batch']);
  const seq = Number(args['train-seq']);
  const steps = Number(args['train-steps']);
  const checkpointing = args.checkpointing === 'on';
  const wantNf4 = args.quantize === 'nf4';
  const r = Number(args['lora-r']);
  const alpha = Number(args['lora-alpha']);
  const lr = Number(args.lr);
  const entry: Record<string, unknown> = {
    batch,
    seq,
    steps,
    checkpointing,
    requestedQuantize: wantNf4 ? 'nf4 blocksize 64 double-quant' : 'none',
    lora: { r, alpha, dropout: 0, targets: 'q,k,v,o,gate,up,down' },
    optimizer: `AdamW lr ${lr} wd 0.01 '${args.optimizer}'; clip 1.0`,
    startedAtMs: Date.now(),
  };
  const key = `train_${args['force-nf4'] ? 'nf4forced_' : ''}ckpt_${checkpointing ? 'on' : 'off'}${kernelSuffix()}`;
  results[key] = entry;
  save();
  let useNf4 = wantNf4;
  if (wantNf4) {
    entry.nf4Check = await nf4Check();
    const exact = (entry.nf4Check as { exact: boolean }).exact;
    log(`NF4 dequantization on ${args.backend} vs @qlora/nf4: ${JSON.stringify(entry.nf4Check)}`);
    if (!exact && !args['force-nf4']) {
      useNf4 = false;
      entry.fallback =
        'NF4 dequantization on this backend differs from @qlora/nf4: trained on the dense f32 base instead';
      log(entry.fallback as string);
    } else if (!exact) {
      entry.fallback =
        'NF4 values are wrong on this backend; run anyway (--force-nf4) to time the NF4 code path';
    }
  }
  entry.base = useNf4 ? 'nf4' : 'dense f32';
  save();
  resetPeaks();
  const loadStart = performance.now();
  const { model, weightBytes } = await loadModel(dir, {
    skipTokenizer: true,
    ...(useNf4 ? { quantize: { quantType: 'nf4', blocksize: 64, doubleQuant: true } } : {}),
  });
  entry.load = {
    seconds: (performance.now() - loadStart) / 1000,
    weightBytesMiB: weightBytes / MIB,
    ...memorySnapshot(),
  };
  save();
  log(
    `loaded ${entry.base} base in ${(entry.load as { seconds: number }).seconds.toFixed(1)} s, weights ${(weightBytes / MIB).toFixed(0)} MiB`,
  );
  try {
    if (useNf4) {
      let first: Nf4Linear | undefined;
      model.mapProjections((p) => {
        if (first === undefined && p instanceof Nf4Linear) first = p;
        return p;
      });
      if (first) entry.nf4CheckLoaded = { name: first.name, ...(await nf4DequantError(first)) };
    }
    const report = injectLora(model, { r, alpha, dropout: 0, seed: 3407 });
    entry.trainable = report.summary;
    const named = adapterVariables(model);
    const optimizer = new AdamW(named as never, {
      lr,
      weightDecay: 0.01,
      arithmetic: args.optimizer as AdamWArithmetic,
    });
    const ids = benchIds(batch, seq, model.config.vocabSize).flat();
    const flat = {
      batchSize: batch,
      seqLength: seq,
      inputIds: ids,
      labels: ids,
      attentionMask: ids.map(() => 1),
    };
    const labelCount = batch * (seq - 1);
    const probe = Object.values(named).at(-1) as unknown as TensorLike;
    setLoraTraining(model, true);
    const samples: number[] = [];
    const losses: number[] = [];
    const norms: number[] = [];
    entry.samples = samples;
    entry.losses = losses;
    entry.gradNorms = norms;
    entry.memoryBeforeSteps = memorySnapshot();
    resetPeaks();
    for (let step = 0; step <= steps; step++) {
      const start = performance.now();
      const pending = deferredReads.length;
      const result = lossGradients(model, flat, {
        gradientCheckpointing: checkpointing,
        scale: 1 / labelCount,
      });
      let loss = result.loss;
      if (deferredReads.length > pending) {
        const read = deferredReads[pending];
        loss = ((await read?.values) ?? [Number.NaN])[0] as number;
        entry.deferredSyncReadsPerStep = deferredReads.length - pending;
      }
      // train()'s order: the norm is read, then clipping is the update's gradScale
      const totalNorm = await gradNormAsync(result.grads as never);
      optimizer.step(result.grads as never, { gradScale: clipCoefficient(1.0, totalNorm) });
      tf.dispose(Object.values(result.grads));
      const tail = tf.slice(probe, [0, 0], [1, 1]);
      await tail.data(); // the update has run: the queue is drained
      tail.dispose();
      const seconds = (performance.now() - start) / 1000;
      losses.push(loss);
      norms.push(totalNorm);
      if (step === 0) {
        entry.firstStepSeconds = seconds;
        entry.memoryAfterFirstStep = memorySnapshot();
      } else samples.push(seconds);
      entry.memory = memorySnapshot();
      entry.endedAtMs = Date.now();
      if (samples.length > 0) {
        const sorted = [...samples].sort((a, b) => a - b);
        const median = sorted[Math.floor(sorted.length / 2)] as number;
        entry.medianSeconds = median;
        entry.tokensPerSecond = (batch * seq) / median;
      }
      save();
      log(
        `train ${entry.base} ckpt ${checkpointing ? 'on' : 'off'} step ${step}${step === 0 ? ' (warm-up)' : ''}: ${seconds.toFixed(2)} s, loss ${loss.toFixed(5)}, grad norm ${totalNorm.toExponential(3)}, peak tf.memory().numBytes ${(peaks.numBytes / MIB).toFixed(0)} MiB, gpu in use peak ${(peaks.gpuBytesInUse / MIB).toFixed(0)} MiB`,
      );
    }
    if (args.profile) {
      // One more step with every dispatch timed on the GPU (slower: one submit per dispatch).
      let grads: Record<string, TensorLike> = {};
      const profile = await profileGpu(() => {
        grads = lossGradients(model, flat, {
          gradientCheckpointing: checkpointing,
          scale: 1 / labelCount,
        }).grads;
        return [];
      });
      entry.profile = profile;
      // The optimizer's share of a step, separately (its GPU time is small; its dispatches are not).
      entry.optimizerProfile = await profileGpu(() => {
        optimizer.step(grads as never, { gradScale: 1 });
        return [];
      });
      tf.dispose(Object.values(grads));
      save();
      log(`profile: ${JSON.stringify(profile).slice(0, 3000)}`);
    }
    setLoraTraining(model, false);
    optimizer.dispose();
    if (entry.tokensPerSecond !== undefined)
      log(
        `train ${entry.base} ckpt ${checkpointing ? 'on' : 'off'}: ${(entry.tokensPerSecond as number).toFixed(0)} tokens/s (median of ${samples.length})`,
      );
  } catch (error) {
    entry.error = String((error as Error)?.stack ?? error);
    entry.memoryAtError = memorySnapshot();
    log(`train failed: ${String(error)}`);
  } finally {
    entry.endedAtMs = Date.now();
    save();
    model.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Kernel micro-benchmarks: the tiled / fused WGSL kernels of @qlora/lora against tfjs's generic
// programs on the matmul shapes of one Llama-3.2-1B training step (rows = B·T tokens), plus the
// NF4 dequantization against a plain f32 copy (bandwidth ceiling).

interface ProgramBackend {
  runWebGPUProgram(
    program: object,
    inputs: unknown[],
    dtype: string,
    uniforms?: unknown[],
  ): unknown;
  submitQueue?(): void;
  endComputePassEncoder?(): void;
  commandEncoder?: unknown;
  disposeData?(dataId: object): void;
  device?: { queue: { onSubmittedWorkDone(): Promise<void> } };
}

/** out[i] = in[i], vec4: the bandwidth reference (reads 4 bytes, writes 4 bytes per element). */
class CopyProgram {
  readonly variableNames = ['x'];
  readonly outputComponent = 4;
  readonly size = true;
  readonly workgroupSize: [number, number, number] = [256, 1, 1];
  readonly dispatchLayout = { x: [0] };
  readonly outputShape: number[];
  dispatch: [number, number, number];
  shaderKey = 'benchCopyVec4';
  constructor(n: number) {
    this.outputShape = [n];
    this.dispatch = [Math.ceil(n / 4 / 256), 1, 1];
  }
  getUserCode(): string {
    return `fn main(index : i32) { if (index < uniforms.size) { result[index] = x[index]; } }`;
  }
}

async function drain(): Promise<void> {
  const backend = tf.backend() as unknown as ProgramBackend;
  if (backend.commandEncoder != null) {
    backend.endComputePassEncoder?.();
    backend.submitQueue?.();
  }
  await backend.device?.queue.onSubmittedWorkDone();
}

/** Median seconds of `fn` (whose result is disposed), GPU queue drained around each batch. */
async function gpuSeconds(fn: () => TensorLike, minSeconds = 0.25): Promise<number> {
  for (let i = 0; i < 2; i++) fn().dispose();
  await drain();
  let reps = 1;
  const samples: number[] = [];
  while (samples.length < 5) {
    const start = performance.now();
    for (let i = 0; i < reps; i++) fn().dispose();
    await drain();
    const seconds = (performance.now() - start) / 1000;
    if (seconds < minSeconds / 5 && reps < 256) {
      reps *= 2;
      continue;
    }
    samples.push(seconds / reps);
  }
  samples.sort((a, b) => a - b);
  return samples[2] as number;
}

interface TfKernelOps {
  tensor1d(values: ArrayLike<number>, dtype?: string): TensorLike;
  tensor2d(values: ArrayLike<number>, shape: number[]): TensorLike;
  randomUniform(shape: number[], min: number, max: number): TensorLike;
  matMul(a: unknown, b: unknown, ta: boolean, tb: boolean): TensorLike;
}

async function kernelsStage(): Promise<void> {
  const ops = tf as unknown as TfKernelOps;
  const backend = tf.backend() as unknown as ProgramBackend;
  const rows = Number(args['kernel-rows']);
  const entry: Record<string, unknown> = { rows };
  results[`kernels${kernelSuffix()}`] = entry;
  save();
  // Bandwidth: f32 copy of 16 M elements vs NF4 dequantize of a 8192 × 2048 weight.
  const n = 8192 * 2048;
  const x = ops.randomUniform([n], -1, 1);
  const copy = await gpuSeconds(() => {
    const info = backend.runWebGPUProgram(new CopyProgram(n), [x], 'float32') as { dataId: object };
    return { dispose: () => backend.disposeData?.(info.dataId) } as TensorLike;
  });
  x.dispose();
  const copyBandwidth = (8 * n) / copy;
  const q = quantize4bit(randomWeights(n, 11), {
    shape: [8192, 2048],
    blocksize: 64,
    quantType: 'nf4',
    doubleQuant: true,
  });
  const proj = new Nf4Linear('bench', q);
  const dequant = await gpuSeconds(() => proj.dequantize() as unknown as TensorLike);
  // Bytes moved: 0.5 (codes) + 4 (output) + 4/64 (absmax) per element.
  const dequantBandwidth = ((0.5 + 4 + 4 / 64) * n) / dequant;
  entry.bandwidth = {
    elements: n,
    copySeconds: copy,
    copyGBps: copyBandwidth / 1e9,
    dequantSeconds: dequant,
    dequantGBps: dequantBandwidth / 1e9,
    dequantOverCopy: dequantBandwidth / copyBandwidth,
  };
  save();
  log(
    `copy ${(copyBandwidth / 1e9).toFixed(0)} GB/s; NF4 dequantize ${(dequantBandwidth / 1e9).toFixed(0)} GB/s = ${(dequantBandwidth / copyBandwidth).toFixed(2)}× copy`,
  );
  proj.dispose();
  // Matmuls of one training step at rows tokens: [name, K, N, layout, rows if not --kernel-rows].
  const shapes: [string, number, number, RightLayout, number?][] = [
    ['q/o proj fwd', 2048, 2048, 'nk'],
    ['k/v proj fwd', 2048, 512, 'nk'],
    ['gate/up fwd', 2048, 8192, 'nk'],
    ['down fwd', 8192, 2048, 'nk'],
    ['gate/up dx', 8192, 2048, 'kn'],
    ['down dx', 2048, 8192, 'kn'],
    ['lm_head fwd', 2048, 128256, 'nk'],
    ['lm_head dx', 128256, 2048, 'kn'],
    // one chunk of the chunked training loss (2^26 logits): the split-K case
    ['lm_head dx, loss chunk', 128256, 2048, 'kn', 523],
  ];
  const matmuls: Record<string, unknown>[] = [];
  entry.matmuls = matmuls;
  for (const [name, k, nOut, layout, shapeRows] of shapes) {
    const m = shapeRows ?? rows;
    const row: Record<string, unknown> = { name, m, k, n: nOut, layout };
    matmuls.push(row);
    const flops = 2 * m * k * nOut;
    const a = ops.randomUniform([m, k], -1, 1);
    const bShape = layout === 'nk' ? [nOut, k] : [k, nOut];
    const b = ops.randomUniform(bShape, -0.05, 0.05);
    try {
      const generic = await gpuSeconds(() => ops.matMul(a, b, false, layout === 'nk'));
      const tiled = await gpuSeconds(
        () => tiledMatMul(a as never, b as never, layout) as unknown as TensorLike,
      );
      Object.assign(row, {
        genericTflops: flops / generic / 1e12,
        tiledTflops: flops / tiled / 1e12,
        speedup: generic / tiled,
      });
      if (!name.startsWith('lm_head')) {
        // NF4 weight of the same shape: dequantize + tfjs matMul vs the fused kernel.
        const wShape = layout === 'nk' ? [nOut, k] : [k, nOut];
        const qw = quantize4bit(randomWeights(k * nOut, 5), {
          shape: wShape as [number, number],
          blocksize: 64,
          quantType: 'nf4',
          doubleQuant: true,
        });
        const layer = new Nf4Linear('bench', qw);
        const table = ops.tensor1d(Array.from(qw.state.code), 'float32');
        const unfused = await gpuSeconds(() =>
          tf.tidy(() => ops.matMul(a, layer.dequantize(), false, layout === 'nk')),
        );
        const fused = await gpuSeconds(
          () =>
            nf4TiledMatMul(
              a as never,
              layer.packedWords,
              layer.absmax,
              table as never,
              wShape as [number, number],
              64,
              layout,
            ) as unknown as TensorLike,
        );
        Object.assign(row, {
          nf4UnfusedTflops: flops / unfused / 1e12,
          nf4FusedTflops: flops / fused / 1e12,
          nf4Speedup: unfused / fused,
        });
        table.dispose();
        layer.dispose();
      }
      log(
        `${name} [${m}×${k}]·[${k}×${nOut}]: tfjs ${(row.genericTflops as number).toFixed(1)} TFLOP/s, tiled ${(row.tiledTflops as number).toFixed(1)}` +
          (row.nf4FusedTflops === undefined
            ? ''
            : `; NF4 dequant+matMul ${(row.nf4UnfusedTflops as number).toFixed(1)}, fused ${(row.nf4FusedTflops as number).toFixed(1)}`),
      );
    } catch (error) {
      row.error = String(error);
      log(`${name} failed: ${String(error)}`);
    } finally {
      a.dispose();
      b.dispose();
      save();
    }
  }
}

/**
 * The public `train()` on an NF4 base (what `qlora train` runs): LoRA r 16 on the seven
 * projections, AdamW, clip 1.0, checkpointing as --checkpointing says; tokens/s per optimizer
 * step from its own progress reports.
 */
async function trainApiStage(dir: string): Promise<void> {
  const batch = Number(args['train-batch']);
  const seq = Number(args['train-seq']);
  const steps = Number(args['train-steps']) + 1;
  const checkpointing = args.checkpointing === 'on';
  const entry: Record<string, unknown> = {
    batch,
    seq,
    steps,
    checkpointing,
    base: 'nf4 blocksize 64 double-quant',
    startedAtMs: Date.now(),
  };
  results[`trainApi_ckpt_${checkpointing ? 'on' : 'off'}${kernelSuffix()}`] = entry;
  save();
  resetPeaks();
  const { model } = await loadModel(dir, {
    skipTokenizer: true,
    quantize: { quantType: 'nf4', blocksize: 64, doubleQuant: true },
  });
  const progress: Record<string, unknown>[] = [];
  entry.progress = progress;
  try {
    const ids = benchIds(batch * steps, seq, model.config.vocabSize);
    const data = ids.map((row) => ({ inputIds: row, labels: row }));
    let last = performance.now();
    const result = await train(
      model,
      data,
      {
        lora: { r: 16, alpha: 16, dropout: 0, seed: 3407 },
        batchSize: batch,
        maxSteps: steps,
        learningRate: 2e-4,
        weightDecay: 0.01,
        maxGradNorm: 1,
        gradientCheckpointing: checkpointing,
        shuffle: false,
      },
      {
        onProgress: (p) => {
          const now = performance.now();
          const seconds = (now - last) / 1000;
          progress.push({
            step: p.step,
            loss: p.loss,
            gradNorm: p.gradNorm,
            seconds,
            tokensPerSecond: p.tokensPerSecond,
            ...memorySnapshot(),
          });
          last = now;
          save();
          log(
            `train() step ${p.step}: ${seconds.toFixed(2)} s, loss ${p.loss.toFixed(5)}, ${p.tokensPerSecond.toFixed(0)} tokens/s (its own report)`,
          );
        },
      },
    );
    entry.losses = result.losses;
    const timed = progress.slice(1).map((p) => p.seconds as number);
    timed.sort((a, b) => a - b);
    if (timed.length > 0) {
      const median = timed[Math.floor(timed.length / 2)] as number;
      entry.medianSeconds = median;
      entry.tokensPerSecond = (batch * seq) / median;
      log(
        `train() NF4 ckpt ${checkpointing ? 'on' : 'off'}: ${(entry.tokensPerSecond as number).toFixed(0)} tokens/s`,
      );
    }
    entry.peakGpuBytesInUseMiB = peaks.gpuBytesInUse / MIB;
  } catch (error) {
    entry.error = String((error as Error)?.stack ?? error);
    log(`train() failed: ${String(error)}`);
  } finally {
    entry.endedAtMs = Date.now();
    save();
    model.dispose();
  }
}

/**
 * Full HellaSwag (lm-eval rules, 0-shot, acc and acc_norm) through bench-core's `evaluate` and
 * the model's own `loglikelihood` (lm-eval HFLM batching: sorted by length, right-padded), timed
 * end to end. The token pairs are written to --pairs-out so tools/gpu/torch_hellaswag.py can
 * score the same requests with PyTorch in the same command.
 */
async function hellaswagStage(dir: string): Promise<void> {
  const batchSize = Number(args['eval-batch']);
  const entry: Record<string, unknown> = { batchSize, startedAtMs: Date.now() };
  results[`hellaswag${kernelSuffix()}`] = entry;
  save();
  const docs = await loadHellaswagDocs(args.hellaswag as string);
  const limit = args['eval-limit'] === undefined ? docs.length : Number(args['eval-limit']);
  entry.docs = limit;
  const loadStart = performance.now();
  const { model, tokenizer } = await loadModel(dir, { evaluation: { batchSize } });
  if (args.w8a8) entry.w8a8 = useInt8Inference(model);
  if (args.f16) entry.f16 = useF16Inference(model);
  entry.loadSeconds = (performance.now() - loadStart) / 1000;
  if (tokenizer === null) throw new Error(`${dir} has no tokenizer.json`);
  const requests: { context: string; continuation: string }[] = [];
  const logprobs: number[] = [];
  const lm = {
    loglikelihood: async (batch: readonly { context: string; continuation: string }[]) => {
      const answers = await model.loglikelihood(batch as never);
      requests.push(...batch);
      logprobs.push(...answers.map((a) => a.logprob));
      return answers;
    },
    generateUntil: () => {
      throw new Error('not used');
    },
  };
  try {
    let lastLog = performance.now();
    const start = performance.now();
    const evaluation = await evaluate(lm as never, hellaswagTask(), docs, {
      limit,
      batchSize: Number(process.env.EVAL_CALL ?? 4096),
      onProgress: (p) => {
        const memory = tf.memory();
        const manager = tf.backend().bufferManager;
        entry.progress = {
          ...p,
          seconds: (performance.now() - start) / 1000,
          numTensors: memory.numTensors,
          numBytesMiB: memory.numBytes / MIB,
          gpuAllocatedMiB: (manager?.numBytesAllocated ?? 0) / MIB,
        };
        if (performance.now() - lastLog > Number(process.env.LOG_EVERY_MS ?? 30_000)) {
          save();
          lastLog = performance.now();
          log(`hellaswag ${JSON.stringify(entry.progress)}`);
        }
      },
    });
    const seconds = (performance.now() - start) / 1000;
    let tokens = 0;
    const pairs = requests.map((r, i) => {
      const pair = encodePair(tokenizer, r.context, r.continuation);
      tokens += pair.context.length + pair.continuation.length - 1;
      return [pair.context, pair.continuation, logprobs[i]];
    });
    Object.assign(entry, {
      seconds,
      requests: requests.length,
      inputTokens: tokens,
      tokensPerSecond: tokens / seconds,
      metrics: Object.fromEntries(
        Object.entries(evaluation.metricValues).map(([key, values]) => [
          key,
          values.reduce((a, b) => a + b, 0) / values.length,
        ]),
      ),
      peakRssMiB: peakRssBytes() / MIB,
    });
    if (args['pairs-out'] !== undefined) writeFileSync(args['pairs-out'], JSON.stringify(pairs));
    if (args.profile) {
      // A failed profile must not void the evaluation above.
      entry.batchProfile = await profileLoglikelihoodBatch(
        model,
        pairs.map(([context, continuation]) => ({
          context: context as number[],
          continuation: continuation as number[],
        })),
        batchSize,
      ).catch((error: unknown) => ({ error: String(error) }));
      log(`hellaswag batch profile: ${JSON.stringify(entry.batchProfile).slice(0, 3000)}`);
    }
    log(
      `hellaswag ${limit} docs, ${requests.length} requests, ${tokens} input tokens: ${seconds.toFixed(1)} s (${(tokens / seconds).toFixed(0)} tokens/s), batch ${batchSize}`,
    );
  } catch (error) {
    entry.error = String((error as Error)?.stack ?? error);
    log(`hellaswag failed: ${String(error)}`);
  } finally {
    entry.endedAtMs = Date.now();
    save();
    model.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// W8A8 study (issue 10): the int8 subgroup-matrix product against the f32 tiled kernel, and what
// quantizing weights and activations to int8 costs in accuracy.

/** The full tfjs-core API of the external instance (types only; the bundle shares one copy). */
const tfAll = tf as unknown as typeof TfTypes;

/** The five forward products of a 1B layer and the head: name, K, N (rows: --kernel-rows). */
const FORWARD_SHAPES: readonly [string, number, number][] = [
  ['q/o proj', 2048, 2048],
  ['k/v proj', 2048, 512],
  ['gate/up', 2048, 8192],
  ['down', 8192, 2048],
  ['lm_head', 2048, 128256],
];

/**
 * T(FL)OP/s of a tensor-core product of packed operands (`x` packed once, and packed inside each
 * call), and of our f32 tiled kernel on the same f32 operands.
 */
async function rowProductSpeeds<Packed extends { words: TfTypes.Tensor; absmax: TfTypes.Tensor }>(
  x: TfTypes.Tensor2D,
  w: TfTypes.Tensor2D,
  xPacked: Packed,
  pack: (x: TfTypes.Tensor2D) => Packed,
  product: (x: Packed) => TfTypes.Tensor,
): Promise<{ product: number; withPack: number; f32: number }> {
  const ops = 2 * (x.shape[0] as number) * (x.shape[1] as number) * (w.shape[0] as number);
  const alone = await gpuSeconds(() => product(xPacked) as unknown as TensorLike);
  const withPack = await gpuSeconds(() => {
    const packed = pack(x);
    const y = product(packed);
    tfAll.dispose([packed.words, packed.absmax]);
    return y as unknown as TensorLike;
  });
  const f32 = await gpuSeconds(() => tiledMatMul(x, w, 'nk') as unknown as TensorLike);
  return { product: ops / alone / 1e12, withPack: ops / withPack / 1e12, f32: ops / f32 / 1e12 };
}

async function int8KernelsStage(): Promise<void> {
  const rows = Number(args['kernel-rows']);
  const shapes: Record<string, unknown>[] = [];
  results.int8Kernels = { rows, shapes };
  save();
  for (const [name, k, n] of FORWARD_SHAPES) {
    const row: Record<string, unknown> = { name, m: rows, k, n };
    shapes.push(row);
    const x = tfAll.randomUniform([rows, k], -1, 1) as TfTypes.Tensor2D;
    const w = tfAll.randomUniform([n, k], -0.05, 0.05) as TfTypes.Tensor2D;
    const held: TfTypes.Tensor[] = [x, w];
    try {
      const wq = quantizeRowsInt8(w, 128);
      const xq = quantizeRowsInt8(x, 128);
      held.push(wq.words, wq.absmax, xq.words, xq.absmax);
      // Exactness: the product of the GPU's own codes against the integer reference (rows
      // 0..63, columns 0..511), and the GPU codes against the reference quantizer (rows 0..7).
      const checkRows = 64;
      const checkCols = Math.min(n, 512);
      const product = int8MatMul(xq, wq);
      const corner = tfAll.slice(product, [0, 0], [checkRows, checkCols]);
      const got = (await corner.data()) as Float32Array;
      tfAll.dispose([product, corner]);
      // The whole codes tensor: tfjs-webgpu's slice of an int32 tensor goes through f32 and
      // loses the low bits of words above 2^24 (seen here: byte 0 of packed words).
      const codesOf = async (q: typeof xq, count: number) => {
        const data = (await q.words.data()) as Int32Array;
        const bytes = new Int8Array(data.buffer, data.byteOffset, data.byteLength);
        const codes = new Int8Array(count * k);
        for (let r = 0; r < count; r++)
          codes.set(bytes.subarray(r * q.kWords * 4, r * q.kWords * 4 + k), r * k);
        const absmax = tfAll.slice(q.absmax, [0], [count]);
        const a = (await absmax.data()) as Float32Array;
        absmax.dispose();
        return { codes, absmax: a };
      };
      const xc = await codesOf(xq, checkRows);
      const wc = await codesOf(wq, checkCols);
      let productMismatches = 0;
      let maxRel = 0;
      for (let r = 0; r < checkRows; r++) {
        for (let c = 0; c < checkCols; c++) {
          const expected = int8ProductReference(xc, wc, k, r, c);
          const actual = got[r * checkCols + c] as number;
          if (actual !== expected) productMismatches++;
          maxRel = Math.max(
            maxRel,
            Math.abs(actual - expected) / Math.max(Math.abs(expected), 1e-30),
          );
        }
      }
      const xRows = tfAll.slice(x, [0, 0], [8, k]);
      const reference = quantizeRowsReference((await xRows.data()) as Float32Array, 8, k);
      xRows.dispose();
      let codeMismatches = 0;
      for (let i = 0; i < 8 * k; i++) if (reference.codes[i] !== xc.codes[i]) codeMismatches++;
      Object.assign(row, {
        sample: {
          gpuAbsmax: Array.from(xc.absmax.subarray(0, 4)),
          referenceAbsmax: Array.from(reference.absmax.subarray(0, 4)),
          gpuCodes: Array.from(xc.codes.subarray(0, 12)),
          referenceCodes: Array.from(reference.codes.subarray(0, 12)),
          gpuProduct: Array.from(got.subarray(0, 4)),
          referenceProduct: [0, 1, 2, 3].map((c) => int8ProductReference(xc, wc, k, 0, c)),
        },
        checked: checkRows * checkCols,
        productMismatches,
        productMaxRel: maxRel,
        codesChecked: 8 * k,
        codeMismatches,
      });
      const speed = await rowProductSpeeds(
        x,
        w,
        xq,
        (a) => quantizeRowsInt8(a, 128),
        (a) => int8MatMul(a, wq),
      );
      Object.assign(row, {
        int8Tops: speed.product,
        int8WithQuantizeTops: speed.withPack,
        f32Tflops: speed.f32,
        speedupOverF32: speed.withPack / speed.f32,
      });
      log(
        `int8 ${name} ${rows}×${k}×${n}: ${speed.product.toFixed(1)} TOPS (${speed.withPack.toFixed(1)} with activation quantization) vs f32 tiled ${speed.f32.toFixed(1)} TFLOP/s; product mismatches ${productMismatches}/${checkRows * checkCols} (max rel ${maxRel.toExponential(1)}), code mismatches ${codeMismatches}/${8 * k}`,
      );
    } catch (error) {
      row.error = String((error as Error)?.stack ?? error);
      log(`int8 ${name} failed: ${String(error)}`);
    } finally {
      tfAll.dispose(held);
      save();
    }
  }
}

// f16 tensor cores (issue 10, fifth session): the product against float64 on the f32 operands,
// next to our f32 tiled kernel on the same operands, and its speed.
async function f16KernelsStage(): Promise<void> {
  const rows = Number(args['kernel-rows']);
  const shapes: Record<string, unknown>[] = [];
  const fixtureCases: Record<string, unknown>[] = [];
  results.f16Kernels = { rows, shapes, fixtureCases };
  save();
  // The unit test's fixture (numpy's float16 rounding, float64 sums), which needs NVIDIA: the
  // product against `output`, in units of Σ|x·w| (the test's bound is K·2^-24).
  const fixture = JSON.parse(readFileSync('test-fixtures/lora/f16_rows.json', 'utf8')) as {
    cases: F16FixtureCase[];
  };

  for (const c of fixture.cases) {
    try {
      const x = packRowsF16(tfAll.tensor2d(c.x, [c.rows, c.k]), 128);
      const w = packRowsF16(tfAll.tensor2d(c.w, [c.out, c.k]), 64);
      const product = f16MatMul(x, w);
      const got = (await product.data()) as Float32Array;
      tfAll.dispose([x.words, x.absmax, w.words, w.absmax, product]);
      let worst = 0;
      for (let i = 0; i < c.rows * c.out; i++) {
        const error = Math.abs((got[i] as number) - (c.output[i] as number));
        worst = Math.max(worst, error / Math.max(c.absSum[i] as number, 1e-30));
      }
      fixtureCases.push({
        name: c.name,
        worstErrorOverAbsSum: worst,
        pass: worst <= c.k * 2 ** -24,
      });
    } catch (error) {
      fixtureCases.push({ name: c.name, error: String(error) });
    }
  }
  log(`f16 fixture: ${JSON.stringify(fixtureCases)}`);
  save();
  for (const [name, k, n] of FORWARD_SHAPES) {
    const row: Record<string, unknown> = { name, m: rows, k, n };
    shapes.push(row);
    // Activations with a few 30× channels (as real hidden states have), weights ~ ±0.05.
    const x = tfAll.tidy(() =>
      tfAll.mul(
        tfAll.randomUniform([rows, k], -1, 1),
        tfAll.concat([tfAll.fill([1, 4], 30), tfAll.ones([1, k - 4])], 1),
      ),
    ) as TfTypes.Tensor2D;
    const w = tfAll.randomUniform([n, k], -0.05, 0.05) as TfTypes.Tensor2D;
    const held: TfTypes.Tensor[] = [x, w];
    try {
      const wh = packRowsF16(w, 64);
      held.push(wh.words, wh.absmax);
      const checkRows = 32;
      const checkCols = Math.min(n, 256);
      const corner = async (product: TfTypes.Tensor2D) => {
        const part = tfAll.slice(product, [0, 0], [checkRows, checkCols]);
        const data = (await part.data()) as Float32Array;
        tfAll.dispose([product, part]);
        return data;
      };
      const xh = packRowsF16(x, 128);
      const half = await corner(f16MatMul(xh, wh));
      tfAll.dispose([xh.words, xh.absmax]);
      const f32 = await corner(tiledMatMul(x, w, 'nk') as unknown as TfTypes.Tensor2D);
      const xs = tfAll.slice(x, [0, 0], [checkRows, k]);
      const ws = tfAll.slice(w, [0, 0], [checkCols, k]);
      const xv = (await xs.data()) as Float32Array;
      const wv = (await ws.data()) as Float32Array;
      tfAll.dispose([xs, ws]);
      // Errors relative to Σ|x·w| (the scale f32 summation error is measured against) and
      // relative to |exact|, against float64.
      const stats = {
        f16: { worst: 0, sum: 0, worstRel: 0 },
        f32: { worst: 0, sum: 0, worstRel: 0 },
      };
      for (let r = 0; r < checkRows; r++) {
        for (let c = 0; c < checkCols; c++) {
          let exact = 0;
          let scale = 0;
          for (let i = 0; i < k; i++) {
            const p = (xv[r * k + i] as number) * (wv[c * k + i] as number);
            exact += p;
            scale += Math.abs(p);
          }
          for (const [which, got] of [
            ['f16', half],
            ['f32', f32],
          ] as const) {
            const error = Math.abs((got[r * checkCols + c] as number) - exact);
            const s = stats[which];
            s.worst = Math.max(s.worst, error / scale);
            s.sum += error / scale;
            s.worstRel = Math.max(s.worstRel, error / Math.max(Math.abs(exact), 1e-30));
          }
        }
      }
      const count = checkRows * checkCols;
      Object.assign(row, {
        checked: count,
        f16ErrorOverAbsSum: { worst: stats.f16.worst, mean: stats.f16.sum / count },
        f32ErrorOverAbsSum: { worst: stats.f32.worst, mean: stats.f32.sum / count },
      });
      const packed = packRowsF16(x, 128);
      held.push(packed.words, packed.absmax);
      const speed = await rowProductSpeeds(
        x,
        w,
        packed,
        (a) => packRowsF16(a, 128),
        (a) => f16MatMul(a, wh),
      );
      Object.assign(row, {
        f16Tflops: speed.product,
        f16WithPackTflops: speed.withPack,
        f32Tflops: speed.f32,
        speedupOverF32: speed.withPack / speed.f32,
      });
      log(
        `f16 ${name} ${rows}×${k}×${n}: ${speed.product.toFixed(1)} TFLOP/s (${speed.withPack.toFixed(1)} with packing x) vs f32 tiled ${speed.f32.toFixed(1)}; error / Σ|xw| f16 worst ${stats.f16.worst.toExponential(2)} mean ${(stats.f16.sum / count).toExponential(2)}, f32 worst ${stats.f32.worst.toExponential(2)}`,
      );
    } catch (error) {
      row.error = String((error as Error)?.stack ?? error);
      log(`f16 ${name} failed: ${String(error)}`);
    } finally {
      tfAll.dispose(held);
      save();
    }
  }
}

/** Token ids of real text: HellaSwag contexts with their gold endings, one stream cut in rows. */
function textIds(
  tokenizer: { encode(text: string, options?: { addSpecialTokens?: boolean }): number[] },
  path: string,
  rows: number,
  seq: number,
): number[][] {
  const stream: number[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (stream.length >= rows * seq) break;
    if (line.trim() === '') continue;
    const doc = JSON.parse(line) as { ctx: string; endings: string[]; label: number | string };
    stream.push(...tokenizer.encode(`${doc.ctx} ${doc.endings[Number(doc.label)]}\n`));
  }
  return Array.from({ length: rows }, (_, r) => stream.slice(r * seq, (r + 1) * seq));
}

async function w8a8AccuracyStage(): Promise<void> {
  const dir = (args['accuracy-model'] ?? args.model) as string;
  const name = dir.split('/').filter(Boolean).pop() ?? dir;
  const entry: Record<string, unknown> = { dir };
  const mode = args['accuracy-mode'] as 'w8a8' | 'f16';
  results[`${mode}Accuracy_${name}`] = entry;
  save();
  const { model, tokenizer } = await loadModel(dir);
  try {
    const rows = Number(args['accuracy-seqs']);
    const seq = Math.min(Number(args.seq), model.config.maxPositionEmbeddings);
    const ids =
      tokenizer !== null && args.hellaswag !== undefined
        ? textIds(tokenizer, args.hellaswag, rows, seq)
        : benchIds(rows, seq, model.config.vocabSize);
    entry.text =
      tokenizer !== null && args.hellaswag !== undefined
        ? 'hellaswag ctx + gold ending'
        : 'synthetic ids';
    entry.tokens = rows * seq;
    const targets = tfAll.tensor2d(
      ids.map((r) => r.slice(1)),
      [rows, seq - 1],
      'int32',
    );
    const logProbs = () =>
      tfAll.tidy(() => tfAll.logSoftmax(model.forward(ids) as TfTypes.Tensor3D));
    const reference = logProbs();
    const arithmetic = args['w8a8-arithmetic'] as 'tensor-cores' | 'emulated';
    const converted =
      mode === 'f16' ? useF16Inference(model) : useInt8Inference(model, { arithmetic });
    Object.assign(entry, {
      mode,
      converted,
      arithmetic: mode === 'f16' ? 'f16 tensor cores' : arithmetic,
    });
    const int8 = logProbs();
    const stats = tfAll.tidy(() => {
      const vocab = model.config.vocabSize;
      const nll = (lp: TfTypes.Tensor3D) => {
        const shifted = tfAll.slice(lp, [0, 0, 0], [rows, seq - 1, vocab]);
        const picked = tfAll.sum(tfAll.mul(shifted, tfAll.oneHot(targets, vocab)), -1);
        return tfAll.neg(tfAll.mean(picked));
      };
      const diff = tfAll.sub(int8, reference);
      return tfAll.stack([
        tfAll.div(tfAll.norm(diff), tfAll.norm(reference)),
        tfAll.mean(
          tfAll.cast(tfAll.equal(tfAll.argMax(reference, -1), tfAll.argMax(int8, -1)), 'float32'),
        ),
        tfAll.mean(tfAll.sum(tfAll.mul(tfAll.exp(reference), tfAll.neg(diff)), -1)),
        nll(reference as TfTypes.Tensor3D),
        nll(int8 as TfTypes.Tensor3D),
      ]);
    });
    const [relError, top1Agreement, meanKl, nllF32, nllInt8] = Array.from(await stats.data());
    Object.assign(entry, {
      logProbRelError: relError,
      top1Agreement,
      meanKlF32ToW8a8: meanKl,
      perplexityF32: Math.exp(nllF32 as number),
      perplexityW8a8: Math.exp(nllInt8 as number),
    });
    tfAll.dispose([reference, int8, stats, targets]);
    log(`${mode} accuracy ${name}: ${JSON.stringify(entry)}`);
  } catch (error) {
    entry.error = String((error as Error)?.stack ?? error);
    log(`${mode} accuracy ${name} failed: ${String(error)}`);
  } finally {
    save();
    model.dispose();
  }
}

async function main(): Promise<void> {
  const stages = new Set(
    (args.stages ?? (args.model === undefined ? 'fixtures' : 'fixtures,logits,forward')).split(','),
  );
  const report = await initBackend(args.backend as BackendName, {
    int8TensorCores: args['int8-tensor-cores'],
    f16TensorCores: args['f16-tensor-cores'],
    dawnToggles: args['dawn-toggles'].split(',').filter((toggle) => toggle !== ''),
  });
  results.tried = report.tried;
  if (report.backend === 'webgpu') results.adapter = await adapterInfo();
  save();
  log(
    `backend ${report.backend}: ${JSON.stringify(report.tried)} ${JSON.stringify(results.adapter ?? {})}`,
  );
  deferSyncReads();
  trackMemoryPeaks();
  useFusedWebgpuKernels(args.kernels !== 'off');
  if (args['f16-base']) useF16BaseProducts(true);
  if (stages.has('kernels')) await kernelsStage();
  if (stages.has('int8-kernels')) await int8KernelsStage();
  if (stages.has('f16-kernels')) await f16KernelsStage();
  if (stages.has('w8a8-accuracy')) await w8a8AccuracyStage();
  if (stages.has('fixtures')) await parity();
  if (args.model === undefined) return;
  if (stages.has('train')) await trainStage(args.model);
  if (stages.has('train-api')) await trainApiStage(args.model);
  if (stages.has('hellaswag')) await hellaswagStage(args.model);
  if (!stages.has('logits') && !stages.has('forward')) return;
  const model = await loadLarge(args.model);
  if (args.w8a8) {
    const start = performance.now();
    const converted = useInt8Inference(model);
    await tf.slice(model.embedTokens as never, [0, 0], [1, 1]).data(); // wait for the queue
    results.w8a8Conversion = { ...converted, seconds: (performance.now() - start) / 1000 };
    save();
    log(`W8A8: ${JSON.stringify(results.w8a8Conversion)}`);
  }
  if (args.f16) {
    const start = performance.now();
    const converted = useF16Inference(model);
    await tf.slice(model.embedTokens as never, [0, 0], [1, 1]).data(); // wait for the queue
    results.f16Conversion = { ...converted, seconds: (performance.now() - start) / 1000 };
    save();
    log(`f16: ${JSON.stringify(results.f16Conversion)}`);
  }
  const ids = benchIds(Number(args.batch), Number(args.seq), model.config.vocabSize);
  if (stages.has('logits') && args['torch-ref'] !== undefined) {
    try {
      await parityAtScale(model, ids, args['torch-ref']);
    } catch (error) {
      results.parityAtScale = { error: String(error) };
      save();
      log(`1B parity failed: ${String(error)}`);
    }
  }
  if (stages.has('forward')) {
    await timeForward(model, ids, true);
    await timeForward(model, ids, false);
  }
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
