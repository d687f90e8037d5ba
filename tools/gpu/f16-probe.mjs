// Issue 10, fifth session: Dawn exposes f16 tensor cores on the H200 once the instance is created
// with the `vulkan_enable_f16_on_nvidia` toggle (subgroup-matrix configs f16 -> f32 at M16 N16 K16,
// and `shader-f16`). This probe measures what they give for `C = A · Bᵀ` with f32 operands:
//   'f16':   each operand rounded to f16 once (the precision of TF32: 11 significant bits);
//   'f16x3': each operand split into hi = f16(v) and lo = f16(v - hi), C = hi·hi + hi·lo + lo·hi
//            (about 22 significant bits, near f32), three tensor-core products per tile.
// Operands are scaled by a power of two per row (exact) so that the row absmax sits at 2^14:
// f16's range (6.1e-5 .. 65504) then holds every hi and the lo parts stay normal. A arrives as f32
// and is split while it is staged in workgroup memory; B is split on the host (a weight is split
// once). Accuracy against float64 on sampled elements; TFLOP/s = 2·M·N·K / median time.
// Raw WebGPU, no tfjs. On the GPU host after `source .gpu/gpu-env.sh`:
//   node tools/gpu/f16-probe.mjs > $OUT/f16-probe.json       (PROBE_ROBUSTNESS=off adds disable_robustness)
import { loadDawn, openDevice, probeHelpers, subgroupMatrixConfigs } from './_dawn-probe.mjs';

const trace = (text) => console.error(`# ${text}`);
const create = await loadDawn();

const report = { steps: [] };
const log = (entry) => {
  report.steps.push(entry);
  console.error(JSON.stringify(entry));
};

// f32 -> f16 round to nearest even (normal range; the probe keeps values normal).
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function toHalfBits(v) {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  let mant = x & 0x7fffff;
  if (exp <= 0) {
    // subnormal half: shift with rounding
    if (exp < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - exp;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rest > mid || (rest === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (exp << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  return sign | half;
}
function halfToFloat(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}
const pow2Scale = (absmax) => (absmax > 0 ? 2 ** (Math.floor(Math.log2(absmax)) - 14) : 1);

let seed = 12345;
function gaussian() {
  seed = (seed * 1103515245 + 12345) >>> 0;
  const u = (seed + 1) / 4294967297;
  seed = (seed * 1103515245 + 12345) >>> 0;
  const v = seed / 4294967296;
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

const shapes = (process.env.PROBE_SHAPES ?? 'q,up,down,head').split(',').map(
  (name) =>
    ({
      small: { name: 'small 256x512x256', M: 256, N: 512, K: 256 },
      q: { name: 'q/o 4096x2048x2048', M: 4096, N: 2048, K: 2048 },
      up: { name: 'gate/up 4096x8192x2048', M: 4096, N: 8192, K: 2048 },
      down: { name: 'down 4096x2048x8192', M: 4096, N: 2048, K: 8192 },
      head: { name: 'lm_head 4096x128256x2048', M: 4096, N: 128256, K: 2048 },
    })[name],
);
// The operands, made before Dawn starts: dawn.node crashed (glibc mutex assertion, segfaults)
// while the main thread spent seconds in a JavaScript loop after the device existed.
function makeData(shape) {
  const { M, N, K } = shape;
  trace(`data ${shape.name}`);
  // Activations ~ N(0, 1) with a few large channels (as in real hidden states), weights ~ N(0, 0.02).
  const A = new Float32Array(M * K);
  for (let i = 0; i < A.length; i++) A[i] = gaussian() * (i % K < 4 ? 30 : 1);
  const B = new Float32Array(N * K);
  for (let i = 0; i < B.length; i++) B[i] = gaussian() * 0.02;
  const sa = new Float32Array(M);
  for (let r = 0; r < M; r++) {
    let m = 0;
    for (let k = 0; k < K; k++) m = Math.max(m, Math.abs(A[r * K + k]));
    sa[r] = pow2Scale(m);
  }
  const sb = new Float32Array(N);
  const bHi = new Uint16Array(N * K);
  const bLo = new Uint16Array(N * K);
  for (let r = 0; r < N; r++) {
    let m = 0;
    for (let k = 0; k < K; k++) m = Math.max(m, Math.abs(B[r * K + k]));
    sb[r] = pow2Scale(m);
    for (let k = 0; k < K; k++) {
      const v = B[r * K + k] / sb[r];
      const h = toHalfBits(v);
      bHi[r * K + k] = h;
      bLo[r * K + k] = toHalfBits(v - halfToFloat(h));
    }
  }
  return { A, B, sa, sb, bHi, bLo };
}
const data = new Map(shapes.map((shape) => [shape, makeData(shape)]));

const toggles = ['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia'];
if (process.env.PROBE_ROBUSTNESS === 'off') toggles.push('disable_robustness');
const { adapter, device } = await openDevice(create, {
  toggles,
  disabled: ['timestamp_quantization'],
  features: ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix'],
});
report.toggles = toggles;
report.configs = subgroupMatrixConfigs(adapter);
log({ configs: report.configs, features: [...device.features] });

const { compile, buffer: createBuffer, readBack: readBytes, keep } = probeHelpers(device);

// A workgroup of 4 subgroups computes a 128 × (32·TN) tile of C; subgroup s owns the 64 × (16·TN)
// block at ((s / 2)·64, (s % 2)·16·TN) as 4 × TN accumulators of 16 × 16 (f32). Each K step
// stages KS columns of the tile's A rows (f32 -> f16 hi [and lo]) and B rows (f16 words) in
// workgroup memory, rows padded by 8 halves against bank conflicts.
const KS = 32;
const PAD = KS + 8;
function gemmSource(mode, TN) {
  const split = mode.startsWith('f16x3');
  const rowsB = 32 * TN;
  const body = [];
  const parts = split ? ['hi', 'lo'] : ['hi'];
  for (const p of parts) {
    for (let i = 0; i < 4; i++)
      body.push(
        `let a${p}${i} = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>>(&tileA${p}, (subRow + ${16 * i}u) * ${PAD}u + kk, false, ${PAD}u);`,
      );
    for (let j = 0; j < TN; j++)
      body.push(
        `let b${p}${j} = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>>(&tileB${p}, (subCol + ${16 * j}u) * ${PAD}u + kk, true, ${PAD}u);`,
      );
  }
  const decls = [];
  const epilogue = [];
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < TN; j++) {
      decls.push(`var c${i}${j} = subgroup_matrix_result<f32, 16, 16>();`);
      if (split) {
        body.push(`c${i}${j} = subgroupMatrixMultiplyAccumulate(alo${i}, bhi${j}, c${i}${j});`);
        body.push(`c${i}${j} = subgroupMatrixMultiplyAccumulate(ahi${i}, blo${j}, c${i}${j});`);
      }
      body.push(`c${i}${j} = subgroupMatrixMultiplyAccumulate(ahi${i}, bhi${j}, c${i}${j});`);
      // One 16 × 16 accumulator at a time through workgroup memory: a store's pointer and
      // offset must be uniform, and 48 KiB of workgroup memory leaves no room for more.
      epilogue.push(`subgroupMatrixStore(&scratch[sub], 0u, c${i}${j}, false, 16u);
  workgroupBarrier();
  for (var e = lane; e < 256u; e += 32u) {
    let row = rowBase + subRow + ${16 * i}u + e / 16u;
    let col = colBase + subCol + ${16 * j}u + e % 16u;
    c[row * N + col] = scratch[sub][e] * (sa[row] * sb[col]);
  }
  workgroupBarrier();`);
    }
  }
  // 'f16x3': hi = f16(v) rounded; 'f16x3t': hi = v with its low 13 significand bits cleared
  // (exactly an f16 in range), which no compiler can fold into lo = v - v.
  const stageA =
    mode === 'f16x3'
      ? `let v = a[(rowBase + r) * K + k + q] * ia;
        let h = f16(v);
        tileAhi[r * ${PAD}u + q] = h;
        tileAlo[r * ${PAD}u + q] = f16(v - f32(h));`
      : mode === 'f16x3t'
        ? `let v = a[(rowBase + r) * K + k + q] * ia;
        let h = bitcast<f32>(bitcast<u32>(v) & 0xffffe000u);
        tileAhi[r * ${PAD}u + q] = f16(h);
        tileAlo[r * ${PAD}u + q] = f16(v - h);`
        : `tileAhi[r * ${PAD}u + q] = f16(a[(rowBase + r) * K + k + q] * ia);`;
  const stageB = parts
    .map(
      (p) => `{
        let w = unpack2x16float(b${p}[((colBase + r) * K + k + q) / 2u]);
        tileB${p}[r * ${PAD}u + q] = f16(w.x);
        tileB${p}[r * ${PAD}u + q + 1u] = f16(w.y);
      }`,
    )
    .join('\n      ');
  return `enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium_experimental.subgroup_matrix_uniformity);
struct Sizes { M : u32, N : u32, K : u32 };
@group(0) @binding(0) var<storage, read> a : array<f32>;
@group(0) @binding(1) var<storage, read> bhi : array<u32>;
${split ? '@group(0) @binding(6) var<storage, read> blo : array<u32>;' : ''}
@group(0) @binding(2) var<storage, read> sa : array<f32>;
@group(0) @binding(3) var<storage, read> sb : array<f32>;
@group(0) @binding(4) var<storage, read_write> c : array<f32>;
@group(0) @binding(5) var<uniform> sizes : Sizes;
var<workgroup> tileAhi : array<f16, ${128 * PAD}>;
${split ? `var<workgroup> tileAlo : array<f16, ${128 * PAD}>;` : ''}
var<workgroup> tileBhi : array<f16, ${rowsB * PAD}>;
${split ? `var<workgroup> tileBlo : array<f16, ${rowsB * PAD}>;` : ''}
var<workgroup> scratch : array<array<f32, 256>, 4>;
@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) group : vec3<u32>, @builtin(local_invocation_index) local : u32,
        @builtin(subgroup_id) sub : u32, @builtin(subgroup_invocation_id) lane : u32) {
  let N = sizes.N;
  let K = sizes.K;
  let rowBase = group.y * 128u;
  let colBase = group.x * ${rowsB}u;
  let subRow = (sub / 2u) * 64u;
  let subCol = (sub % 2u) * ${16 * TN}u;
  ${decls.join('\n  ')}
  for (var k = 0u; k < K; k += ${KS}u) {
    for (var i = 0u; i < ${(128 * KS) / 128}u; i++) {
      let e = local + i * 128u;
      let r = e / ${KS}u;
      let q = e % ${KS}u;
      let ia = 1.0 / sa[rowBase + r];
      ${stageA}
    }
    for (var i = 0u; i < ${(rowsB * KS) / 2 / 128}u; i++) {
      let e = local + i * 128u;
      let r = e / ${KS / 2}u;
      let q = (e % ${KS / 2}u) * 2u;
      ${stageB}
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${KS}u; kk += 16u) {
      ${body.join('\n      ')}
    }
    workgroupBarrier();
  }
  ${epilogue.join('\n  ')}
}`;
}

const buffer = (data, usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC) =>
  createBuffer(data.byteLength, usage, data);
const readBack = async (src, bytes) => new Float32Array((await readBytes(src, bytes)).buffer);

const modes = (process.env.PROBE_MODES ?? 'f16,f16x3,f16x3t').split(',');
const TN = Number(process.env.PROBE_TN ?? 4);
// Every pipeline before any dispatch: a compile after dispatches crashed dawn.node here.
const pipelines = {};
for (const mode of modes) {
  trace(`compile ${mode} ${TN}`);
  const { pipeline, messages } = await compile(gemmSource(mode, TN));
  pipelines[mode] = pipeline;
  if (pipeline === undefined) log({ mode, messages: messages.slice(0, 6) });
}
for (const shape of shapes) {
  const { M, N, K } = shape;
  const { A, B, sa, sb, bHi, bLo } = data.get(shape);
  const buffers = {
    a: buffer(A),
    bhi: buffer(bHi),
    blo: buffer(bLo),
    sa: buffer(sa),
    sb: buffer(sb),
    c: device.createBuffer({
      size: M * N * 4,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
    }),
    sizes: buffer(new Uint32Array([M, N, K, 0]), GPUBufferUsage.UNIFORM),
    sizes4: buffer(new Uint32Array([M, N, K, 0])),
  };
  for (const mode of modes) {
    const pipeline = pipelines[mode];
    if (pipeline === undefined) continue;
    const names = [
      'a',
      'bhi',
      'sa',
      'sb',
      'c',
      'sizes',
      ...(mode.startsWith('f16x3') ? ['blo'] : []),
    ];
    const bind = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: names.map((n) => ({
        binding: ['a', 'bhi', 'sa', 'sb', 'c', 'sizes', 'blo'].indexOf(n),
        resource: { buffer: buffers[n] },
      })),
    });
    const run = async (times) => {
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bind);
      for (let t = 0; t < times; t++) pass.dispatchWorkgroups(N / (32 * TN), M / 128);
      pass.end();
      const start = performance.now();
      const commands = encoder.finish();
      keep.push(encoder, pass, commands);
      device.queue.submit([commands]);
      // Waits by mapping a small buffer (as tfjs does), not onSubmittedWorkDone.
      await readBack(buffers.sizes4, 16);
      return performance.now() - start;
    };
    device.pushErrorScope('validation');
    await run(1);
    trace('ran');
    const scopeError = await device.popErrorScope();
    const C = await readBack(buffers.c, Math.min(M * N, 64 * N) * 4);
    // Error relative to the row's scale Σ|a||b| (what f32 accumulation error is measured against),
    // and the plain relative error, against float64 on the f32 operands.
    let worstScaled = 0;
    let sumScaled = 0;
    let worstF32Scaled = 0;
    const samples = 512;
    for (let t = 0; t < samples; t++) {
      const i = (t * 7919) % 64;
      const j = (t * 104729) % N;
      let exact = 0;
      let scale = 0;
      let f32sum = 0;
      for (let k = 0; k < K; k++) {
        const p = A[i * K + k] * B[j * K + k];
        exact += p;
        scale += Math.abs(p);
        f32sum = Math.fround(f32sum + Math.fround(p));
      }
      const e = Math.abs(C[i * N + j] - exact) / scale;
      worstScaled = Math.max(worstScaled, e);
      sumScaled += e;
      worstF32Scaled = Math.max(worstF32Scaled, Math.abs(f32sum - exact) / scale);
    }
    trace('checked');
    await run(2);
    const times = [];
    for (let rep = 0; rep < 5; rep++) times.push((await run(10)) / 10);
    times.sort((x, y) => x - y);
    const ms = times[2];
    log({
      mode,
      TN,
      shape: shape.name,
      scopeError: scopeError?.message,
      msPerCall: Number(ms.toFixed(3)),
      TFLOPs: Number(((2 * M * N * K) / (ms / 1000) / 1e12).toFixed(1)),
      errorOverAbsSum: { worst: worstScaled, mean: sumScaled / samples },
      sequentialF32OverAbsSum: worstF32Scaled,
    });
  }
}
console.log(JSON.stringify(report, null, 1));
process.exit(0);
