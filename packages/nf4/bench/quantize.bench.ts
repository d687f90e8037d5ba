/**
 * Quantize/dequantize throughput on a 2048×8192 float32 weight matrix, each as a ratio to a plain
 * Float32Array copy (`slice()`: allocate + copy) of the same 64 MiB measured in the same run.
 * Both sides allocate their output, so the ratio compares like with like. Median of each case,
 * best of three interleaved rounds.
 */
import { type BenchRow, type BenchSuite, medianMs, ratioRow } from '../../../tools/bench/harness';
import { dequantize4bit, quantize4bit } from '../src/index';

const ROWS = 2048;
const COLS = 8192;

function weightLike(n: number): Float32Array {
  // Deterministic pseudo-gaussian (sum of uniforms) with a few outliers; the values only need a
  // realistic code distribution, not exact normality.
  const out = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    let acc = 0;
    for (let k = 0; k < 4; k++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      acc += s / 4294967296;
    }
    out[i] = (acc - 2) * 0.035;
  }
  for (let i = 0; i < n; i += 99991) out[i] = 0.5;
  return out;
}

const suite: BenchSuite = {
  title:
    'NF4 quantize / dequantize, 2048×8192 float32 (ratio to a Float32Array copy of the same bytes)',
  async run(): Promise<BenchRow[]> {
    const n = ROWS * COLS;
    const x = weightLike(n);
    const shape = [ROWS, COLS];
    const q = quantize4bit(x, { shape });
    const qdq = quantize4bit(x, { shape, doubleQuant: true });
    // The machine is shared: measure every case in three interleaved rounds and keep each one's
    // best median, so a load spike during one case does not skew its ratio to the copy.
    let sink = 0;
    const cases: Record<string, () => void> = {
      copy: () => {
        sink += x.slice()[n - 1] as number;
      },
      quantize: () => {
        sink += quantize4bit(x, { shape }).packed[0] as number;
      },
      quantizeDq: () => {
        sink += quantize4bit(x, { shape, doubleQuant: true }).packed[0] as number;
      },
      dequantize: () => {
        sink += dequantize4bit(q)[0] as number;
      },
      dequantizeDq: () => {
        sink += dequantize4bit(qdq)[0] as number;
      },
      dequantizeBf16: () => {
        sink += dequantize4bit(q, { dtype: 'bfloat16' })[0] as number;
      },
    };
    const best: Record<string, number> = {};
    for (let round = 0; round < 3; round++) {
      for (const [name, fn] of Object.entries(cases)) {
        const ms = await medianMs(name, fn, { timeMs: 1000, warmupMs: 200, minIterations: 5 });
        best[name] = Math.min(best[name] ?? Number.POSITIVE_INFINITY, ms);
      }
    }
    if (Number.isNaN(sink)) throw new Error('unreachable');
    const ms = (name: string): number => best[name] as number;
    const melem = (ms: number): number => n / ms / 1e3; // million elements per second
    const reference = { name: 'Float32Array copy', value: melem(ms('copy')) };
    const unit = 'Melem/s';
    return [
      ratioRow('quantize nf4, blocksize 64', melem(ms('quantize')), unit, reference, {
        target: 0.15,
      }),
      ratioRow('quantize nf4 + double quant', melem(ms('quantizeDq')), unit, reference),
      ratioRow('dequantize nf4 → float32', melem(ms('dequantize')), unit, reference, {
        target: 0.5,
      }),
      ratioRow(
        'dequantize nf4 + double quant → float32',
        melem(ms('dequantizeDq')),
        unit,
        reference,
      ),
      ratioRow(
        'dequantize nf4 → bfloat16 (Uint16Array)',
        melem(ms('dequantizeBf16')),
        unit,
        reference,
        {
          note: 'writes half the bytes of the copy',
        },
      ),
    ];
  },
};

export default suite;
