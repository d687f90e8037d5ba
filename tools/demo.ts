/**
 * `pnpm demo`: quantize a realistic 2048×8192 weight matrix (seeded gaussian, std 0.02, with a few
 * outliers) to NF4 with double quantization, exactly as bitsandbytes/QLoRA store it, and report
 * storage, error, speed and the bitsandbytes checkpoint round trip.
 */
import {
  bitsPerParameter,
  dequantize4bit,
  fromBnbTensors,
  type QuantType,
  quantizationError,
  quantize4bit,
  toBnbTensors,
} from '@qlora/nf4';

const ROWS = 2048;
const COLS = 8192;

/** Seeded standard normals (mulberry32 + Box-Muller) scaled to `std`, rounded to float32. */
function gaussianMatrix(n: number, seed: number, std: number): Float32Array {
  let state = seed >>> 0;
  const uniform = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = std * Math.sqrt(-2 * Math.log(uniform()));
    const theta = 2 * Math.PI * uniform();
    out[i] = r * Math.cos(theta);
    if (i + 1 < n) out[i + 1] = r * Math.sin(theta);
  }
  // LLM weights carry a few large outliers; they set their blocks' absmax.
  for (let k = 0; k < 64; k++)
    out[Math.floor(uniform() * n)] = (uniform() < 0.5 ? -1 : 1) * (0.2 + uniform() * 0.8);
  return out;
}

function time<T>(fn: () => T): [T, number] {
  const start = performance.now();
  const result = fn();
  return [result, performance.now() - start];
}

const weight = gaussianMatrix(ROWS * COLS, 2026, 0.02);
const shape = [ROWS, COLS];
console.log(
  `Weight: ${ROWS}×${COLS} float32 (${((weight.length * 4) / 2 ** 20).toFixed(0)} MiB), seeded gaussian std 0.02 + 64 outliers\n`,
);

const rows: string[][] = [];
let main: ReturnType<typeof quantize4bit> | undefined;
for (const [quantType, doubleQuant] of [
  ['nf4', true],
  ['nf4', false],
  ['fp4', true],
] as [QuantType, boolean][]) {
  quantize4bit(weight.subarray(0, 64 * 1024), { quantType, doubleQuant }); // warm up the JIT
  const [q, quantMs] = time(() => quantize4bit(weight, { shape, quantType, doubleQuant }));
  const [, dequantMs] = time(() => dequantize4bit(q));
  const err = quantizationError(weight, q);
  if (quantType === 'nf4' && doubleQuant) main = q;
  rows.push([
    `${quantType}${doubleQuant ? ' + double quant' : ''}`,
    bitsPerParameter(q.state).toFixed(4),
    err.maxAbs.toExponential(3),
    err.rmse.toExponential(3),
    err.relative.toFixed(4),
    quantMs.toFixed(0),
    dequantMs.toFixed(0),
  ]);
}

const header = [
  'format (blocksize 64)',
  'bits/param',
  'max |err|',
  'RMSE',
  'relative',
  'quantize ms',
  'dequantize ms',
];
const widths = header.map((h, i) =>
  Math.max(h.length, ...rows.map((r) => (r[i] as string).length)),
);
const line = (cells: string[]): string =>
  `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
console.log(line(header));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const r of rows) console.log(line(r));

if (!main) throw new Error('unreachable');
const prefix = 'model.layers.0.mlp.up_proj';
const tensors = toBnbTensors(main, prefix);
console.log(`\nbitsandbytes checkpoint tensors (toBnbTensors, prefix '${prefix}'):`);
for (const [key, t] of Object.entries(tensors)) {
  console.log(`  ${key.padEnd(60)} ${t.dtype.padEnd(3)} [${t.shape.join(', ')}]`);
}
const blob = tensors[`${prefix}.weight.quant_state.bitsandbytes__nf4`];
console.log(`  JSON: ${new TextDecoder().decode(blob?.data as Uint8Array)}`);
const back = fromBnbTensors(tensors, prefix);
const a = dequantize4bit(main);
const b = dequantize4bit(back);
const same = a.length === b.length && Buffer.from(a.buffer).equals(Buffer.from(b.buffer));
console.log(
  `\nfromBnbTensors(toBnbTensors(q)): ${same ? 'identical dequantized weights (bit for bit)' : 'MISMATCH'}`,
);
if (!same) process.exitCode = 1;
