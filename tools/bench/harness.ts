import { Bench } from 'tinybench';

/** One line of a benchmark table. Ratios are what we compare, never absolute seconds alone. */
export interface BenchRow {
  /** What was measured, e.g. `dequantize 2048×8192 nf4`. */
  name: string;
  /** Throughput in `unit` (higher is better). */
  value: number;
  unit: string;
  /** The reference measured in the same run, e.g. a plain Float32Array copy. */
  reference?: { name: string; value: number };
  /** value / reference.value, when a reference exists. */
  ratio?: number;
  /** The issue's target for the ratio, when one is set. */
  target?: number;
  note?: string;
}

/** A package's benchmark: `packages/<pkg>/bench/*.bench.ts` default-exports one of these. */
export interface BenchSuite {
  title: string;
  run(): Promise<BenchRow[]>;
}

/**
 * Median time of `fn` in milliseconds, after warm-up, over at least `timeMs` of samples.
 * Medians resist the odd GC pause better than means on a shared 2-core machine.
 */
export async function medianMs(
  name: string,
  fn: () => unknown,
  options: { timeMs?: number; warmupMs?: number; minIterations?: number } = {},
): Promise<number> {
  const bench = new Bench({
    name,
    time: options.timeMs ?? 1000,
    warmupTime: options.warmupMs ?? 200,
    iterations: options.minIterations ?? 5,
  });
  bench.add(name, fn);
  await bench.run();
  const result = bench.tasks[0]?.result as
    | { latency?: { p50?: number; mean?: number } }
    | undefined;
  const ms = result?.latency?.p50 ?? result?.latency?.mean;
  if (ms === undefined || !Number.isFinite(ms)) {
    throw new Error(`[bench] ${name}: no timing result`);
  }
  return ms;
}

/** A row with a ratio to a reference throughput measured in the same run. */
export function ratioRow(
  name: string,
  value: number,
  unit: string,
  reference: { name: string; value: number },
  extra: { target?: number; note?: string } = {},
): BenchRow {
  return { name, value, unit, reference, ratio: value / reference.value, ...extra };
}
