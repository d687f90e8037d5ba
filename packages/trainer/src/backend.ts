import * as tf from '@tensorflow/tfjs-core';
import { bucketWebgpuBufferPool } from './_webgpu-pool';
import { TrainerError } from './errors';

/**
 * A TensorFlow.js compute backend that {@link initBackend} can start.
 *
 * @example
 * ```ts
 * const name: BackendName = 'wasm';
 * ```
 */
export type BackendName = 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';

/**
 * One backend that `initBackend` tried, and why it was or was not taken.
 *
 * @example
 * ```ts
 * const attempt: BackendAttempt = { name: 'webgpu', ok: false, reason: 'no WebGPU adapter …' };
 * ```
 */
export interface BackendAttempt {
  name: BackendName;
  ok: boolean;
  reason: string;
}

/**
 * What `initBackend` chose: the running backend and every attempt, in order.
 *
 * @example
 * ```ts
 * const { backend, tried } = await initBackend();
 * for (const t of tried) if (!t.ok) console.warn(`${t.name}: ${t.reason}`);
 * ```
 */
export interface BackendReport {
  backend: BackendName;
  tried: BackendAttempt[];
}

/**
 * Options of {@link initBackend}.
 *
 * @example
 * ```ts
 * await initBackend('webgpu', { fallback: true, wasmPaths: '/static/tfjs/' });
 * ```
 */
export interface InitBackendOptions {
  /**
   * With an explicit backend: fall back through the `auto` order when it does not start
   * (default false: throw a `TrainerError` that lists the reason).
   */
  fallback?: boolean;
  /** Folder (or URL prefix) holding the `tfjs-backend-wasm*.wasm` files; found automatically in Node. */
  wasmPaths?: string;
  /**
   * webgpu: also ask for Dawn's experimental `chromium-experimental-subgroup-matrix` feature (and
   * `subgroups`), which int8 (W8A8) evaluation needs for the int8 tensor cores. In Node this
   * creates Dawn with its `allow_unsafe_apis` toggle; the device gets the features only where
   * the adapter offers them (NVIDIA through Vulkan). Default false.
   */
  int8TensorCores?: boolean;
  /**
   * webgpu: also ask for `shader-f16` and the subgroup-matrix features, which f16 tensor-core
   * evaluation (`useF16Inference`) needs. In Node this creates Dawn with its `allow_unsafe_apis`
   * and `vulkan_enable_f16_on_nvidia` toggles (Dawn hides f16 on NVIDIA without the latter); the
   * device gets the features only where the adapter offers them. Default false.
   */
  f16TensorCores?: boolean;
  /**
   * webgpu in Node: extra Dawn toggles for the instance this creates, e.g. `disable_robustness`
   * (drops the bounds clamp WebGPU puts on every array access: our kernels measured faster
   * without it, and any access outside an array becomes undefined instead of clamped) or
   * `vulkan_enable_f16_on_nvidia`. Needs Dawn from the `webgpu` package: an error when
   * `navigator.gpu` already exists. Default none.
   */
  dawnToggles?: readonly string[];
}

// The limits tfjs-backend-webgpu's own factory asks for; ours asks for the same.
const WEBGPU_LIMITS = [
  'maxComputeWorkgroupStorageSize',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupSizeX',
  'maxComputeInvocationsPerWorkgroup',
] as const;

interface AdapterLike {
  features: { has(name: string): boolean };
  limits: Record<string, number>;
  info?: unknown;
  requestDevice(descriptor: object): Promise<unknown>;
}

// tfjs registers a factory that requests a device with timestamp queries only; this one adds
// shader-f16 and the subgroup-matrix features when the adapter has them. It must replace the
// factory before the backend is first initialized.
async function registerWebgpuWithSubgroupMatrix(gpu: {
  requestAdapter(options?: object): Promise<unknown>;
}): Promise<void> {
  const module = (await importOptional('@tensorflow/tfjs-backend-webgpu')) as {
    WebGPUBackend: new (device: unknown, adapterInfo: unknown) => tf.KernelBackend;
  };
  const factory = async (): Promise<tf.KernelBackend> => {
    const adapter = (await gpu.requestAdapter({
      powerPreference: 'high-performance',
    })) as AdapterLike | null;
    if (adapter === null) throw new Error('no WebGPU adapter');
    const wanted = [
      'timestamp-query',
      'subgroups',
      'chromium-experimental-subgroup-matrix',
      'shader-f16',
    ].filter((feature) => adapter.features.has(feature));
    const requiredLimits = Object.fromEntries(
      WEBGPU_LIMITS.map((name) => [name, adapter.limits[name]]),
    );
    const device = await adapter.requestDevice({ requiredFeatures: wanted, requiredLimits });
    return new module.WebGPUBackend(device, adapter.info);
  };
  // Already initialized: too late to change its device (findBackend would initialize it).
  const registry = (tf.engine() as unknown as { registry: Record<string, unknown> }).registry;
  if (registry.webgpu !== undefined) return;
  tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', factory, 3);
}

const AUTO_ORDER: readonly BackendName[] = ['tensorflow', 'webgpu', 'wasm', 'cpu'];

const isNode = typeof process !== 'undefined' && process.versions?.node !== undefined;

// Module names are held in variables so bundlers leave the optional peers alone.
async function importOptional(name: string): Promise<unknown> {
  return import(/* @vite-ignore */ name);
}

function describeError(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const firstLine = text.split('\n')[0] ?? text;
  return firstLine.length > 200 ? `${firstLine.slice(0, 200)}…` : firstLine;
}

function isMissingModule(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  const text = error instanceof Error ? error.message : String(error);
  return (
    code === 'ERR_MODULE_NOT_FOUND' ||
    code === 'MODULE_NOT_FOUND' ||
    /Cannot find (module|package)|Could not resolve|Failed to resolve/.test(text)
  );
}

async function startTensorflow(): Promise<string> {
  const failures: string[] = [];
  for (const name of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await importOptional(name);
      if (await tf.setBackend('tensorflow')) return `${name} loaded`;
      failures.push(`${name} loaded but the 'tensorflow' backend did not start`);
    } catch (error) {
      failures.push(
        isMissingModule(error)
          ? `${name} is not installed`
          : `${name} failed to load (${describeError(error)})`,
      );
    }
  }
  throw new Error(failures.join('; '));
}

async function startWebgpu(
  allowSoftwareAdapter: boolean,
  tensorCores: { int8: boolean; f16: boolean },
  dawnToggles: readonly string[],
): Promise<string> {
  const scope = globalThis as unknown as { navigator?: { gpu?: unknown } };
  if (dawnToggles.length > 0 && scope.navigator?.gpu !== undefined) {
    throw new Error(
      `Dawn toggles (${dawnToggles.join(', ')}) need a Dawn instance created here, but navigator.gpu already exists`,
    );
  }
  const badToggle = dawnToggles.find((toggle) => !/^[a-z0-9_]+$/.test(toggle));
  if (badToggle !== undefined) {
    throw new Error(
      `a Dawn toggle is a snake_case name such as disable_robustness, got "${badToggle}"`,
    );
  }
  if (scope.navigator?.gpu === undefined) {
    if (!isNode) throw new Error('navigator.gpu is missing: this browser has no WebGPU');
    // Dawn through the `webgpu` npm package; the tfjs backend reads navigator.gpu when it loads.
    const dawn = (await importOptional('webgpu')) as {
      create: (flags: string[]) => unknown;
      globals: Record<string, unknown>;
    };
    Object.assign(globalThis, dawn.globals);
    // allow_unsafe_apis exposes experimental features such as subgroup matrices; only on request.
    const toggles = [
      ...(tensorCores.int8 || tensorCores.f16 ? ['allow_unsafe_apis'] : []),
      ...(tensorCores.f16 ? ['vulkan_enable_f16_on_nvidia'] : []),
      ...dawnToggles,
    ];
    const gpu = dawn.create(
      toggles.length > 0 ? [`enable-dawn-features=${toggles.join(',')}`] : [],
    );
    Object.defineProperty(globalThis, 'navigator', {
      value: { ...(scope.navigator ?? {}), gpu },
      configurable: true,
      writable: true,
    });
  }
  const gpu = (
    globalThis as unknown as { navigator: { gpu: { requestAdapter(): Promise<unknown> } } }
  ).navigator.gpu;
  const adapter = await gpu.requestAdapter();
  if (adapter === null || adapter === undefined) {
    throw new Error('no WebGPU adapter (no GPU, or no Vulkan/Metal/D3D12 driver)');
  }
  // A software adapter (e.g. Mesa's llvmpipe/lavapipe) emulates the GPU on the CPU and is far
  // slower than the wasm backend, so `auto` passes it over; asking for 'webgpu' still uses it.
  const { info, isFallbackAdapter } = adapter as {
    info?: { isFallbackAdapter?: boolean };
    isFallbackAdapter?: boolean;
  };
  if ((info?.isFallbackAdapter ?? isFallbackAdapter ?? false) && !allowSoftwareAdapter) {
    throw new Error(
      'only a software (fallback) WebGPU adapter is available; pass backend "webgpu" to use it anyway',
    );
  }
  await importOptional('@tensorflow/tfjs-backend-webgpu');
  if (tensorCores.int8 || tensorCores.f16) await registerWebgpuWithSubgroupMatrix(gpu);
  if (!(await tf.setBackend('webgpu'))) throw new Error('the webgpu backend did not initialise');
  bucketWebgpuBufferPool();
  return 'WebGPU adapter found';
}

async function defaultWasmPaths(): Promise<string | undefined> {
  if (!isNode) return undefined;
  const { createRequire } = await import('node:module');
  const { dirname, join } = await import('node:path');
  const require = createRequire(import.meta.url);
  const packageJson = require.resolve('@tensorflow/tfjs-backend-wasm/package.json');
  return `${join(dirname(packageJson), 'dist')}/`;
}

async function startWasm(wasmPaths: string | undefined): Promise<string> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const paths = wasmPaths ?? (await defaultWasmPaths());
  if (paths !== undefined) wasm.setWasmPaths(paths);
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend did not initialise');
  const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  return `WebAssembly${simd ? ' with SIMD' : ''}`;
}

async function startCpu(): Promise<string> {
  await import('@tensorflow/tfjs-backend-cpu');
  if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend did not initialise');
  return 'pure JavaScript, always available';
}

async function startBackend(
  name: BackendName,
  options: InitBackendOptions,
  requested: BackendName | 'auto',
): Promise<string> {
  switch (name) {
    case 'tensorflow':
      return startTensorflow();
    case 'webgpu':
      return startWebgpu(
        requested === 'webgpu',
        { int8: options.int8TensorCores ?? false, f16: options.f16TensorCores ?? false },
        options.dawnToggles ?? [],
      );
    case 'wasm':
      return startWasm(options.wasmPaths);
    case 'cpu':
      return startCpu();
  }
}

/**
 * Selects and starts a TensorFlow.js backend. `auto` tries, in order, `tensorflow`
 * (`@tensorflow/tfjs-node-gpu` or `@tensorflow/tfjs-node`, when installed), `webgpu`
 * (in Node through the `webgpu` package), `wasm`, then `cpu`, and takes the first that starts.
 * The report says which runs and why the others were not taken.
 *
 * @example
 * ```ts
 * const report = await initBackend('auto');
 * report.backend; // 'wasm' on a machine without tfjs-node and without a GPU
 * report.tried[0]; // { name: 'tensorflow', ok: false, reason: '@tensorflow/tfjs-node-gpu not installed …' }
 * ```
 */
export async function initBackend(
  requested: BackendName | 'auto' = 'auto',
  options: InitBackendOptions = {},
): Promise<BackendReport> {
  if (requested !== 'auto' && !AUTO_ORDER.includes(requested)) {
    throw new TrainerError(
      'E_BACKEND',
      `unknown backend: expected one of auto, ${AUTO_ORDER.join(', ')}, got ${JSON.stringify(requested)}`,
    );
  }
  const order =
    requested === 'auto'
      ? AUTO_ORDER
      : options.fallback
        ? [requested, ...AUTO_ORDER.filter((name) => name !== requested)]
        : [requested];
  const tried: BackendAttempt[] = [];
  for (const name of order) {
    try {
      const reason = await startBackend(name, options, requested);
      await tf.ready();
      tried.push({ name, ok: true, reason });
      return { backend: name, tried };
    } catch (error) {
      tried.push({ name, ok: false, reason: describeError(error) });
    }
  }
  throw new TrainerError(
    'E_BACKEND',
    `no backend started: expected ${order.join(' or ')} to start, got ${tried
      .map((attempt) => `${attempt.name}: ${attempt.reason}`)
      .join('; ')}. Hint: 'cpu' always works where @tensorflow/tfjs-backend-cpu is installed.`,
  );
}
