// float32 mean as PyTorch's CPU kernel computes it (`aten/src/ATen/native/cpu/SumKernel.cpp`,
// cascade_sum + `sum(...).div_(n)`), so that the double-quantization offset matches bitsandbytes'
// `absmax.mean()` to the last bit. Every add is a float32 add (`Math.fround`), in torch's order:
// vectors of `lanes` floats, 4 interleaved accumulators (ILP), a 4-level cascade with chunks of
// 2^max(4, ceil(log2(size)) / 4) rows, scalar tail, then the lanes left to right. Above 32768
// elements torch splits the range over its threads (contiguous chunks, one partial sum each).

const GRAIN_SIZE = 32768;
const NUM_LEVELS = 4;
const ILP = 4;

// torch's utils::CeilLog2: 1 for x <= 2, else ceil(log2(x)).
function ceilLog2(x: number): number {
  return x <= 2 ? 1 : 32 - Math.clz32(x - 1);
}

/**
 * `multi_row_sum` with `nrows` = ILP rows of `width` lanes: element (row i, accumulator k, lane l)
 * is values[start + (i·ILP + k)·width + l]. Returns ILP accumulators of `width` lanes.
 */
function multiRowSum(
  values: Float32Array,
  start: number,
  size: number,
  width: number,
): Float64Array[] {
  const levelPower = Math.max(4, Math.floor(ceilLog2(size) / NUM_LEVELS));
  const levelStep = 2 ** levelPower;
  const levelMask = levelStep - 1;
  const acc: Float64Array[][] = Array.from({ length: NUM_LEVELS }, () =>
    Array.from({ length: ILP }, () => new Float64Array(width)),
  );
  const addRow = (i: number): void => {
    const level0 = acc[0] as Float64Array[];
    for (let k = 0; k < ILP; k++) {
      const a = level0[k] as Float64Array;
      const base = start + (i * ILP + k) * width;
      for (let l = 0; l < width; l++)
        a[l] = Math.fround((a[l] as number) + (values[base + l] as number));
    }
  };
  let i = 0;
  while (i + levelStep <= size) {
    for (let j = 0; j < levelStep; j++, i++) addRow(i);
    for (let j = 1; j < NUM_LEVELS; j++) {
      const hi = acc[j] as Float64Array[];
      const lo = acc[j - 1] as Float64Array[];
      for (let k = 0; k < ILP; k++) {
        const h = hi[k] as Float64Array;
        const o = lo[k] as Float64Array;
        for (let l = 0; l < width; l++) {
          h[l] = Math.fround((h[l] as number) + (o[l] as number));
          o[l] = 0;
        }
      }
      if ((i & (levelMask << (j * levelPower))) !== 0) break;
    }
  }
  for (; i < size; i++) addRow(i);
  const out = acc[0] as Float64Array[];
  for (let j = 1; j < NUM_LEVELS; j++) {
    const hi = acc[j] as Float64Array[];
    for (let k = 0; k < ILP; k++) {
      const a = out[k] as Float64Array;
      const h = hi[k] as Float64Array;
      for (let l = 0; l < width; l++) a[l] = Math.fround((a[l] as number) + (h[l] as number));
    }
  }
  return out;
}

/** `row_sum`: `size` items of `width` lanes starting at `start`. */
function rowSum(values: Float32Array, start: number, size: number, width: number): Float64Array {
  const sizeIlp = Math.floor(size / ILP);
  const partial = multiRowSum(values, start, sizeIlp, width);
  const first = partial[0] as Float64Array;
  for (let i = sizeIlp * ILP; i < size; i++) {
    const base = start + i * width;
    for (let l = 0; l < width; l++)
      first[l] = Math.fround((first[l] as number) + (values[base + l] as number));
  }
  for (let k = 1; k < ILP; k++) {
    const p = partial[k] as Float64Array;
    for (let l = 0; l < width; l++) first[l] = Math.fround((first[l] as number) + (p[l] as number));
  }
  return first;
}

/** torch's float32 sum of values[start, start + n) for one serial chunk. */
function chunkSum(values: Float32Array, start: number, n: number, lanes: number): number {
  if (n < lanes) return rowSum(values, start, n, 1)[0] as number;
  const vectors = Math.floor(n / lanes);
  const vec = rowSum(values, start, vectors, lanes);
  let total = 0;
  for (let i = vectors * lanes; i < n; i++)
    total = Math.fround(total + (values[start + i] as number));
  for (let l = 0; l < lanes; l++) total = Math.fround(total + (vec[l] as number));
  return total;
}

export interface TorchReductionOptions {
  /**
   * float32 lanes of torch's vectorized sum. 8 reproduces torch 2.11 on the fixtures' x86-64
   * machine (it reports AVX512 capability, yet its sum kernel matches 8 lanes on all 32 probes).
   */
  lanes?: number;
  /** torch.get_num_threads() of the process that would compute the mean. */
  threads?: number;
}

/** float32 `torch.mean` of a float32 vector on CPU. */
export function torchMeanFloat32(
  values: Float32Array,
  options: TorchReductionOptions = {},
): number {
  const lanes = options.lanes ?? 8;
  const threads = options.threads ?? 16;
  const n = values.length;
  let sum: number;
  if (n < GRAIN_SIZE || threads === 1) {
    sum = chunkSum(values, 0, n, lanes);
  } else {
    const tasks = Math.min(threads, Math.ceil(n / GRAIN_SIZE));
    const chunk = Math.ceil(n / tasks);
    const partials = new Float32Array(threads);
    for (let t = 0; t < tasks; t++) {
      const begin = t * chunk;
      if (begin < n)
        partials[t] = chunkSum(values, begin, Math.min(n, begin + chunk) - begin, lanes);
    }
    sum = chunkSum(partials, 0, threads, lanes);
  }
  return Math.fround(sum / Math.fround(n));
}
