// Issue 10, the W8A8 study's first step: what Dawn's `chromium-experimental-subgroup-matrix` offers on
// the GPU host, which WGSL spelling this Dawn accepts, what unit `offset` counts for i8 matrices, and
// how fast a plain int8 subgroup-matrix GEMM runs (checked exactly against integer arithmetic on
// the host). Raw WebGPU, no tfjs. Run on the GPU host after `source .gpu/gpu-env.sh`:
//   node tools/gpu/int8-probe.mjs > $OUT/int8-probe.json
import { loadDawn, openDevice, probeHelpers } from './_dawn-probe.mjs';

const create = await loadDawn();

const report = { steps: [] };
const log = (entry) => {
  report.steps.push(entry);
  console.error(JSON.stringify(entry));
};

const { adapter, device } = await openDevice(create, {
  toggles: ['allow_unsafe_apis'],
  features: ['subgroups', 'chromium-experimental-subgroup-matrix', 'timestamp-query'],
});
const info = adapter.info;
report.adapter = {
  vendor: info.vendor,
  architecture: info.architecture,
  description: info.description,
  subgroupMinSize: info.subgroupMinSize,
  subgroupMaxSize: info.subgroupMaxSize,
  subgroupMatrixConfigs: [...(info.subgroupMatrixConfigs ?? [])].map((c) => ({
    componentType: c.componentType,
    resultComponentType: c.resultComponentType,
    M: c.M,
    N: c.N,
    K: c.K,
  })),
  features: [...adapter.features],
};
log({ adapter: report.adapter });
device.addEventListener?.('uncapturederror', (e) => log({ uncaptured: String(e.error?.message) }));

const { compile, buffer, readBack } = probeHelpers(device);

const header =
  'enable chromium_experimental_subgroup_matrix;\ndiagnostic(off, chromium_experimental.subgroup_matrix_uniformity);\n';
// Two spellings seen in Dawn's history: the layout as a bool argument, or as a template argument.
const spellings = {
  boolArgument: {
    load: (type, ptr, offset, colMajor, stride) =>
      `subgroupMatrixLoad<${type}>(${ptr}, ${offset}, ${colMajor}, ${stride})`,
    store: (ptr, offset, value, colMajor, stride) =>
      `subgroupMatrixStore(${ptr}, ${offset}, ${value}, ${colMajor}, ${stride})`,
  },
  templateArgument: {
    load: (type, ptr, offset, colMajor, stride) =>
      `subgroupMatrixLoad<${type}, ${colMajor ? 'col_major' : 'row_major'}>(${ptr}, ${offset}, ${stride})`,
    store: (ptr, offset, value, colMajor, stride) =>
      `subgroupMatrixStore<${colMajor ? 'col_major' : 'row_major'}>(${ptr}, ${offset}, ${value}, ${stride})`,
  },
};

// A left i8 matrix (16 rows x 32 columns) loaded row-major at `offset` 4, stride 64, stored back
// row-major at 0 with stride 32. Byte b of `src` holds b & 127, so the first stored byte says
// whether offset counted bytes (4) or i32 words (16).
function roundTripSource(s) {
  return `${header}
@group(0) @binding(0) var<storage, read> src : array<i32>;
@group(0) @binding(1) var<storage, read_write> dst : array<i32>;
@compute @workgroup_size(32)
fn main() {
  let m = ${s.load('subgroup_matrix_left<i8, 32, 16>', '&src', '4u', false, '64u')};
  ${s.store('&dst', '0u', 'm', false, '32u')};
}`;
}

const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

let spelling;
let offsetUnit;
for (const [name, s] of Object.entries(spellings)) {
  const { pipeline, messages } = await compile(roundTripSource(s));
  log({ spelling: name, compiled: pipeline !== undefined, messages });
  if (pipeline === undefined) continue;
  spelling ??= name;
  const bytes = new Uint8Array(64 * 64);
  for (let i = 0; i < bytes.length; i++) bytes[i] = i & 127;
  const src = buffer(bytes.length, STORAGE, bytes);
  const dst = buffer(16 * 32, STORAGE);
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(
    0,
    device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: src } },
        { binding: 1, resource: { buffer: dst } },
      ],
    }),
  );
  pass.dispatchWorkgroups(1);
  pass.end();
  device.queue.submit([encoder.finish()]);
  const out = await readBack(dst, 16 * 32);
  const first = [...out.slice(0, 8)];
  const secondRow = [...out.slice(32, 36)];
  offsetUnit = first[0] === 4 ? 'byte' : first[0] === 16 ? 'word' : `unknown (${first[0]})`;
  log({ spelling: name, firstBytes: first, secondRowBytes: secondRow, offsetUnit });
}
report.spelling = spelling;
report.offsetUnit = offsetUnit;

// The GEMM: C[M,N] (i32) = A[M,K] (i8, row-major) x B[N,K]^T (i8, B row-major = B^T column-major).
// Stores need a uniform pointer and offset (the uniformity diagnostic does not cover them), so
// the offsets may depend on the workgroup id only. Modes:
//   'wg32': one subgroup per workgroup, tile (16*TM) x (16*TN), stores straight to global memory;
//   'wg32-private': the same with the ids read through var<private> copies, as tfjs's shader
//     prelude hands them to a program's main();
//   'subgroup-id': 4 subgroups per workgroup, told apart by the subgroup_id builtin.
// The bindings of every GEMM variant: C = A · Bᵀ over i8 rows packed in i32 words.
const GEMM_BINDINGS = `
struct Sizes { M : u32, N : u32, K : u32 };
@group(0) @binding(0) var<storage, read> a : array<i32>;
@group(0) @binding(1) var<storage, read> b : array<i32>;
@group(0) @binding(2) var<storage, read_write> c : array<i32>;
@group(0) @binding(3) var<uniform> sizes : Sizes;
`;

// The loads, accumulators, multiply-accumulates and stores of a TM × TN grid of 16 × 16 tiles;
// `a(i)` / `b(j)` give the load offset and stride of left tile i and right tile j, `store(i, j)`
// the whole store statement of accumulator ij.
function tileGrid(s, TM, TN, a, b, store) {
  const loads = [];
  const decls = [];
  const mmas = [];
  const stores = [];
  for (let i = 0; i < TM; i++) {
    const [ptr, offset, stride] = a(i);
    loads.push(
      `let a${i} = ${s.load('subgroup_matrix_left<i8, 32, 16>', ptr, offset, false, stride)};`,
    );
  }
  for (let j = 0; j < TN; j++) {
    const [ptr, offset, stride] = b(j);
    loads.push(
      `let b${j} = ${s.load('subgroup_matrix_right<i8, 16, 32>', ptr, offset, true, stride)};`,
    );
  }
  for (let i = 0; i < TM; i++)
    for (let j = 0; j < TN; j++) {
      decls.push(`var c${i}${j} = subgroup_matrix_result<i32, 16, 16>();`);
      mmas.push(`c${i}${j} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, c${i}${j});`);
      stores.push(store(i, j));
    }
  return { loads, decls, mmas, stores };
}

// 'shared': 4 subgroups (subgroup_id) stage 64-byte K slices of the workgroup's A and B rows in
// workgroup memory (rows padded to 80 bytes), then each loads its matrices from there.
function sharedGemmSource(s, TM, TN) {
  const rowsA = 32 * TM;
  const rowsB = 32 * TN;
  const { loads, decls, mmas, stores } = tileGrid(
    s,
    TM,
    TN,
    (i) => ['&tileA', `(subRow + ${16 * i}u) * 80u + kk`, '80u'],
    (j) => ['&tileB', `(subCol + ${16 * j}u) * 80u + kk`, '80u'],
    (i, j) =>
      `${s.store('&c', `(group.y * ${rowsA}u + subRow + ${16 * i}u) * N + group.x * ${rowsB}u + subCol + ${16 * j}u`, `c${i}${j}`, false, 'N')};`,
  );
  const lines = [...loads, ...mmas];
  return `${header}${GEMM_BINDINGS}var<workgroup> tileA : array<i32, ${rowsA * 20}>;
var<workgroup> tileB : array<i32, ${rowsB * 20}>;
@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) group : vec3<u32>, @builtin(local_invocation_index) local : u32,
        @builtin(subgroup_id) sub : u32) {
  let N = sizes.N;
  let K = sizes.K;
  let words = K / 4u;
  let subRow = (sub / 2u) * ${16 * TM}u;
  let subCol = (sub % 2u) * ${16 * TN}u;
  let aBase = group.y * ${rowsA}u * words;
  let bBase = group.x * ${rowsB}u * words;
  ${decls.join('\n  ')}
  for (var k = 0u; k < words; k += 16u) {
    for (var i = 0u; i < ${(rowsA * 16) / 128}u; i++) {
      let e = local + i * 128u;
      tileA[(e / 16u) * 20u + e % 16u] = a[aBase + (e / 16u) * words + k + e % 16u];
    }
    for (var i = 0u; i < ${(rowsB * 16) / 128}u; i++) {
      let e = local + i * 128u;
      tileB[(e / 16u) * 20u + e % 16u] = b[bBase + (e / 16u) * words + k + e % 16u];
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 64u; kk += 32u) {
      ${lines.join('\n      ')}
    }
    workgroupBarrier();
  }
  ${stores.join('\n  ')}
}`;
}

function gemmSource(s, TM, TN, unit, mode) {
  const bytes = (e) => (unit === 'word' ? `(${e}) / 4u` : e);
  const { loads, decls, mmas, stores } = tileGrid(
    s,
    TM,
    TN,
    (i) => ['&a', bytes(`(row0 + ${16 * i}u) * K + k`), bytes('K')],
    (j) => ['&b', bytes(`(col0 + ${16 * j}u) * K + k`), bytes('K')],
    (i, j) =>
      mode === 'wg32-scratch'
        ? `${s.store('&scratch', `${16 * i * 16 * TN + 16 * j}u`, `c${i}${j}`, false, `${16 * TN}u`)};`
        : `${s.store('&c', `(row0 + ${16 * i}u) * N + col0 + ${16 * j}u`, `c${i}${j}`, false, 'N')};`,
  );
  if (mode === 'wg32-scratch')
    stores.push(`workgroupBarrier();
  for (var e = lane; e < ${256 * TM * TN}u; e += 32u) {
    c[(row0 + e / ${16 * TN}u) * N + col0 + e % ${16 * TN}u] = scratch[e];
  }`);
  const four = mode === 'subgroup-id';
  const ids =
    mode === 'wg32' || mode === 'wg32-scratch'
      ? `let row0 = group.y * ${16 * TM}u;\n  let col0 = group.x * ${16 * TN}u;`
      : mode === 'wg32-private'
        ? `workgroupId = group;\n  let row0 = workgroupId.y * ${16 * TM}u;\n  let col0 = workgroupId.x * ${16 * TN}u;`
        : `let row0 = group.y * ${32 * TM}u + (sub / 2u) * ${16 * TM}u;\n  let col0 = group.x * ${32 * TN}u + (sub % 2u) * ${16 * TN}u;`;
  return `${header}${GEMM_BINDINGS}var<private> workgroupId : vec3<u32>;
${mode === 'wg32-scratch' ? `var<workgroup> scratch : array<i32, ${256 * TM * TN}>;` : ''}
@compute @workgroup_size(${four ? 128 : 32})
fn main(@builtin(workgroup_id) group : vec3<u32>, @builtin(local_invocation_index) lane : u32${four ? ', @builtin(subgroup_id) sub : u32' : ''}) {
  let N = sizes.N;
  let K = sizes.K;
  ${ids}
  ${decls.join('\n  ')}
  for (var k = 0u; k < K; k += 32u) {
    ${loads.join('\n    ')}
    ${mmas.join('\n    ')}
  }
  ${stores.join('\n  ')}
}`;
}

const tileRows = (TM, mode) => (mode === 'subgroup-id' || mode === 'shared' ? 32 : 16) * TM;

for (const [name, unit, mode] of [
  ['boolArgument', 'byte', 'shared'],
  ['boolArgument', 'byte', 'wg32'],
  ['boolArgument', 'byte', 'wg32-scratch'],
  ['boolArgument', 'byte', 'wg32-private'],
  ['boolArgument', 'byte', 'subgroup-id'],
  ['templateArgument', 'word', 'wg32'],
].filter(([, , mode]) => (process.env.PROBE_MODES ?? mode).split(',').includes(mode))) {
  const s = spellings[name];
  const shapes = [
    { name: 'small 64x64x64', M: 64, N: 64, K: 64 },
    { name: 'mlp up 4096x8192x2048', M: 4096, N: 8192, K: 2048 },
    { name: 'mlp down 4096x2048x8192', M: 4096, N: 2048, K: 8192 },
    { name: 'q 4096x2048x2048', M: 4096, N: 2048, K: 2048 },
  ];
  let seed = 12345;
  const next = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return ((seed >>> 8) % 255) - 127;
  };
  for (const [TM, TN] of [
    [2, 2],
    [2, 4],
    [4, 2],
    [4, 4],
  ]) {
    if (process.env.PROBE_TILES && !process.env.PROBE_TILES.split(',').includes(`${TM}x${TN}`))
      continue;
    console.error(`compiling ${name} ${mode} ${TM}x${TN}`);
    const { pipeline, messages } = await compile(
      mode === 'shared' ? sharedGemmSource(s, TM, TN) : gemmSource(s, TM, TN, unit, mode),
    );
    console.error(`compiled ${name} ${mode} ${TM}x${TN}`);
    if (pipeline === undefined) {
      log({
        gemm: `${name} ${mode} ${TM}x${TN}`,
        messages: messages.filter((m) => !m.includes('deprecated')),
      });
      continue;
    }
    for (const shape of shapes) {
      const { M, N, K } = shape;
      if (M % tileRows(TM, mode) || N % tileRows(TN, mode)) continue;
      if (
        process.env.PROBE_SHAPES &&
        !process.env.PROBE_SHAPES.split(',').some((p) => shape.name.startsWith(p))
      )
        continue;
      console.error(`running ${shape.name}`);
      const A = new Int8Array(M * K).map(next);
      const B = new Int8Array(N * K).map(next);
      const aBuf = buffer(M * K, STORAGE, A);
      const bBuf = buffer(N * K, STORAGE, B);
      const cBuf = buffer(M * N * 4, STORAGE);
      const uBuf = buffer(
        16,
        GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
        new Uint32Array([M, N, K, 0]),
      );
      const bind = device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [aBuf, bBuf, cBuf, uBuf].map((b, i) => ({ binding: i, resource: { buffer: b } })),
      });
      const run = async (times) => {
        const encoder = device.createCommandEncoder();
        for (let t = 0; t < times; t++) {
          const pass = encoder.beginComputePass();
          pass.setPipeline(pipeline);
          pass.setBindGroup(0, bind);
          pass.dispatchWorkgroups(N / tileRows(TN, mode), M / tileRows(TM, mode));
          pass.end();
        }
        const start = performance.now();
        device.queue.submit([encoder.finish()]);
        await device.queue.onSubmittedWorkDone();
        return performance.now() - start;
      };
      device.pushErrorScope('validation');
      await run(1);
      console.error('ran once');
      const scopeError = await device.popErrorScope();
      console.error(`scope ${scopeError?.message}`);
      const C = new Int32Array((await readBack(cBuf, M * N * 4)).buffer);
      console.error('read back');
      let mismatches = 0;
      let checked = 0;
      for (let t = 0; t < 400; t++) {
        const i = (t * 7919) % M;
        const j = (t * 104729) % N;
        let sum = 0;
        for (let k = 0; k < K; k++) sum += A[i * K + k] * B[j * K + k];
        checked++;
        if (sum !== C[i * N + j]) mismatches++;
      }
      console.error(`verified ${mismatches}`);
      await run(3);
      console.error('warm');
      const reps = 20;
      const ms = await run(reps);
      const tops = (2 * M * N * K * reps) / (ms / 1000) / 1e12;
      log({
        gemm: `${name} ${mode} ${TM}x${TN}`,
        shape: shape.name,
        checked,
        mismatches,
        scopeError: scopeError?.message,
        msPerCall: ms / reps,
        TOPS: Number(tops.toFixed(1)),
      });
      for (const b of [aBuf, bBuf, cBuf, uBuf]) b.destroy();
    }
  }
}
console.log(JSON.stringify(report, null, 1));
process.exit(0);
