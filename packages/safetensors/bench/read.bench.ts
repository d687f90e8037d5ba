import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '@qlora/safetensors';
import { writeSafetensors } from '@qlora/safetensors/node';
import { type BenchRow, type BenchSuite, medianMs, ratioRow } from '../../../tools/bench/harness';

const TENSORS = 64;
const ELEMENTS_PER_TENSOR = 2 * 1024 * 1024; // 64 × 2M bf16 = 256 MiB of data
const RUNS = 5;

interface WorkerResult {
  ms: number;
  bytes: number;
  baselineRssMB: number;
  peakRssMB: number;
  peakHeapMB: number;
  peakArrayBuffersMB: number;
}

/** Runs the read in a fresh Node process per run so that peak RSS belongs to one variant. */
function runWorker(mode: 'lazy' | 'whole', path: string): WorkerResult {
  const worker = join(import.meta.dirname, 'read-worker.ts');
  const out = execFileSync(process.execPath, [...process.execArgv, worker, mode, path], {
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').at(-1) as string) as WorkerResult;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

async function readRows(): Promise<BenchRow[]> {
  const dir = await mkdtemp(join(tmpdir(), 'qlora-safetensors-bench-'));
  const path = join(dir, 'model.safetensors');
  try {
    const tensors: Record<string, { dtype: 'BF16'; shape: number[]; data: Uint16Array }> = {};
    for (let i = 0; i < TENSORS; i++) {
      const data = new Uint16Array(ELEMENTS_PER_TENSOR);
      for (let j = 0; j < data.length; j += 97) data[j] = (i * 31 + j) & 0xffff;
      tensors[`model.layers.${i}.weight`] = { dtype: 'BF16', shape: [1024, 2048], data };
    }
    await writeSafetensors(path, tensors, { format: 'pt' });
    const mib = (TENSORS * ELEMENTS_PER_TENSOR * 2) / 2 ** 20;
    // one warm-up each so both read from the page cache
    runWorker('lazy', path);
    runWorker('whole', path);
    const lazy: WorkerResult[] = [];
    const whole: WorkerResult[] = [];
    for (let r = 0; r < RUNS; r++) {
      lazy.push(runWorker('lazy', path));
      whole.push(runWorker('whole', path));
    }
    const lazyMBs = mib / (median(lazy.map((x) => x.ms)) / 1000);
    const wholeMBs = mib / (median(whole.map((x) => x.ms)) / 1000);
    const wholeName = 'fs.readFile + parseSafetensors';
    return [
      ratioRow(
        `openSafetensors + read all ${TENSORS} tensors, ${mib} MiB bf16`,
        lazyMBs,
        'MiB/s',
        { name: wholeName, value: wholeMBs },
        {
          note: `median of ${RUNS} fresh processes, page cache warm`,
        },
      ),
      ratioRow(
        'peak RSS, lazy reads',
        median(lazy.map((x) => x.peakRssMB)),
        'MiB',
        {
          name: wholeName,
          value: median(whole.map((x) => x.peakRssMB)),
        },
        {
          note: `lower is better; sampled after each tensor; whole process, of which Node + tsx at start: ${median(lazy.map((x) => x.baselineRssMB)).toFixed(0)} MiB`,
        },
      ),
      ratioRow(
        'peak ArrayBuffer memory, lazy reads',
        median(lazy.map((x) => x.peakArrayBuffersMB)),
        'MiB',
        {
          name: wholeName,
          value: median(whole.map((x) => x.peakArrayBuffersMB)),
        },
        { note: 'lower is better; sampled after each tensor' },
      ),
      ratioRow(
        'peak JS heap, lazy reads',
        median(lazy.map((x) => x.peakHeapMB)),
        'MiB',
        {
          name: wholeName,
          value: median(whole.map((x) => x.peakHeapMB)),
        },
        { note: 'lower is better' },
      ),
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function conversionRows(): Promise<BenchRow[]> {
  const n = 8 * 1024 * 1024;
  const f32 = new Float32Array(n);
  for (let i = 0; i < n; i++) f32[i] = Math.sin(i) * 100;
  const bf16 = f32ToBf16(f32);
  const f16 = f32ToF16(f32);
  const outF32 = new Float32Array(n);
  const out16 = new Uint16Array(n);
  const copyMs = await medianMs('Float32Array copy', () => outF32.set(f32));
  const copy = { name: `Float32Array.set (${n / 2 ** 20}M elements)`, value: n / copyMs / 1000 };
  const rows: BenchRow[] = [];
  const cases: Array<[string, () => unknown]> = [
    ['bf16ToF32', () => bf16ToF32(bf16, outF32)],
    ['f16ToF32', () => f16ToF32(f16, outF32)],
    ['f32ToBf16 (round to nearest even)', () => f32ToBf16(f32, out16)],
    ['f32ToF16 (round to nearest even)', () => f32ToF16(f32, out16)],
  ];
  for (const [name, fn] of cases) {
    const ms = await medianMs(name, fn);
    rows.push(ratioRow(`${name}, ${n / 2 ** 20}M elements`, n / ms / 1000, 'M elem/s', copy));
  }
  return rows;
}

const suite: BenchSuite = {
  title: 'Lazy reads vs whole-file parse (≈256 MiB bf16 checkpoint) and bf16/f16 conversion',
  async run() {
    return [...(await readRows()), ...(await conversionRows())];
  },
};

export default suite;
