import * as tf from '@tensorflow/tfjs-core';
import type { LlamaConfig } from './config';
import { TrainerError } from './errors';

// WebGPU fails on a tensor whose buffer is larger than the device allows: a storage binding over
// `maxStorageBufferBindingSize` (2 GiB on an H200, 128 MiB on Mesa lavapipe) or a buffer over
// `maxBufferSize`. Dawn reports that asynchronously as a validation (or out-of-memory) error and
// tfjs-webgpu carries on, reading zeros or garbage. Two defences live here: a pre-flight check of
// the largest tensors a forward or training step creates against the device limits (plain
// arithmetic on the shapes), and a WebGPU error scope around a step that turns a failure the
// check did not foresee into the same typed error.

/**
 * The two WebGPU limits a single tensor must respect (`GPUDevice.limits`).
 *
 * @example
 * ```ts
 * const h200: DeviceLimits = { maxStorageBufferBindingSize: 2 ** 31, maxBufferSize: 2 ** 40 };
 * ```
 */
export interface DeviceLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

/**
 * One forward pass: `batch` rows of `steps` new tokens after `past` cached ones; `logitSteps` of
 * them produce logits (1 with `lastOnly`).
 */
export interface ForwardShape {
  batch: number;
  steps: number;
  past?: number;
  logitSteps?: number;
}

/** A tensor a forward pass creates, with its f32 size. */
export interface BufferEstimate {
  name: string;
  shape: number[];
  bytes: number;
}

/** The settings a caller names in the hint: what lowers the batch, what lowers the length. */
export interface LimitSettings {
  /** What the check is about, e.g. 'training step'. */
  what: string;
  batch: string;
  length: string;
}

const F32 = 4;

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * The step-dependent tensors of one forward pass that grow with batch and length (each also
 * exists as a gradient of the same size in training): the `[B, T, vocab]` logits (and their
 * log-softmax), the `[B, heads, T, past + T]` attention scores and the `[B, T, intermediate]`
 * MLP activations. Weights are checked separately ({@link weightBuffers}).
 *
 * @example
 * ```ts
 * forwardBuffers(config, { batch: 2, steps: 512 })[0]; // { name: 'logits', shape: [2, 512, 128256], bytes: 525336576 }
 * ```
 */
export function forwardBuffers(config: LlamaConfig, shape: ForwardShape): BufferEstimate[] {
  const { batch, steps } = shape;
  const past = shape.past ?? 0;
  const logitSteps = shape.logitSteps ?? steps;
  const shapes: [string, number[]][] = [
    ['logits', [batch, logitSteps, config.vocabSize]],
    ['attention scores', [batch, config.numAttentionHeads, steps, past + steps]],
    ['MLP activations', [batch, steps, config.intermediateSize]],
  ];
  return shapes.map(([name, dims]) => ({ name, shape: dims, bytes: product(dims) * F32 }));
}

/** The largest weights (f32 on every backend): the embedding and an untied output head. */
export function weightBuffers(config: LlamaConfig): BufferEstimate[] {
  const dims = [config.vocabSize, config.hiddenSize];
  const bytes = product(dims) * F32;
  return [
    { name: 'model.embed_tokens.weight', shape: dims, bytes },
    ...(config.tieWordEmbeddings ? [] : [{ name: 'lm_head.weight', shape: dims, bytes }]),
  ];
}

/** The binding the largest tensor must fit: the smaller of the two limits, by name. */
export function bufferLimit(limits: DeviceLimits): { name: string; bytes: number } {
  return limits.maxStorageBufferBindingSize <= limits.maxBufferSize
    ? { name: 'maxStorageBufferBindingSize', bytes: limits.maxStorageBufferBindingSize }
    : { name: 'maxBufferSize', bytes: limits.maxBufferSize };
}

function largest(buffers: readonly BufferEstimate[]): BufferEstimate {
  return buffers.reduce((a, b) => (b.bytes > a.bytes ? b : a));
}

function fits(config: LlamaConfig, shape: ForwardShape, limit: number): boolean {
  return largest(forwardBuffers(config, shape)).bytes <= limit;
}

/**
 * The largest batch whose step tensors fit `limit` bytes at this length (0: not even one row).
 *
 * @example
 * ```ts
 * largestFittingBatch(llama1b, { batch: 8, steps: 2048 }, 2 ** 31); // 2
 * ```
 */
export function largestFittingBatch(
  config: LlamaConfig,
  shape: ForwardShape,
  limit: number,
): number {
  // Every step tensor is linear in the batch size.
  const perRow = largest(forwardBuffers(config, { ...shape, batch: 1 })).bytes;
  return Math.floor(limit / perRow);
}

/**
 * The largest number of new tokens per row whose step tensors fit `limit` bytes at this batch
 * size (0: not even one). Logits follow the length unless the shape asks for one position.
 *
 * @example
 * ```ts
 * largestFittingLength(llama1b, { batch: 8, steps: 2048 }, 2 ** 31); // 523
 * ```
 */
export function largestFittingLength(
  config: LlamaConfig,
  shape: ForwardShape,
  limit: number,
): number {
  const at = (steps: number): ForwardShape => ({
    ...shape,
    steps,
    logitSteps:
      shape.logitSteps === undefined || shape.logitSteps === shape.steps ? steps : shape.logitSteps,
  });
  let low = 0;
  let high = shape.steps;
  // Every step tensor grows with the length: binary search for the last length that fits.
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (fits(config, at(mid), limit)) low = mid;
    else high = mid - 1;
  }
  return low;
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/**
 * Throws `E_OUT_OF_MEMORY` when a weight or a step tensor of `shape` is larger than the device
 * allows, naming the tensor, the limit, the largest batch size and length that fit, and the
 * settings that change them.
 *
 * @example
 * ```ts
 * checkForwardFits(config, { batch: 8, steps: 2048 }, { maxStorageBufferBindingSize: 2 ** 31, maxBufferSize: 2 ** 40 },
 *   { what: 'training step', batch: 'batchSize', length: 'maxLength' });
 * // TrainerError E_OUT_OF_MEMORY: … B·T ≤ 4185 tokens for a 128256-token vocabulary …
 * ```
 */
export function checkForwardFits(
  config: LlamaConfig,
  shape: ForwardShape,
  limits: DeviceLimits,
  settings: LimitSettings,
): void {
  const limit = bufferLimit(limits);
  const weight = largest(weightBuffers(config));
  if (weight.bytes > limit.bytes) {
    throw new TrainerError(
      'E_OUT_OF_MEMORY',
      `${settings.what} on webgpu: expected every tensor within the device's ${limit.name} (${limit.bytes} bytes, ${mib(limit.bytes)}), got ${weight.name} [${weight.shape.join(', ')}] f32 of ${weight.bytes} bytes (${mib(weight.bytes)}). Hint: no batch or length setting helps; use another backend (initBackend('tensorflow' | 'wasm'), qlora --backend).`,
    );
  }
  const step = largest(forwardBuffers(config, shape));
  if (step.bytes <= limit.bytes) return;
  const batches = largestFittingBatch(config, shape, limit.bytes);
  const length = largestFittingLength(config, shape, limit.bytes);
  const logitTokens = Math.floor(limit.bytes / (config.vocabSize * F32));
  const fitting = [
    batches > 0
      ? `at length ${shape.steps}, batch size ≤ ${batches} fits`
      : `at length ${shape.steps} not even batch size 1 fits`,
    length > 0
      ? `at batch size ${shape.batch}, length ≤ ${length} fits`
      : `at batch size ${shape.batch} no length fits`,
  ];
  const logitNote =
    step.name === 'logits' && (shape.logitSteps ?? shape.steps) === shape.steps
      ? ` (B·T ≤ ${logitTokens} tokens for a ${config.vocabSize}-token vocabulary)`
      : '';
  throw new TrainerError(
    'E_OUT_OF_MEMORY',
    `${settings.what} too large for the webgpu device: expected every tensor within its ${limit.name} (${limit.bytes} bytes, ${mib(limit.bytes)}), got ${step.name} [${step.shape.join(', ')}] f32 of ${step.bytes} bytes (${mib(step.bytes)}) for batch size ${shape.batch} × length ${shape.steps}; ${fitting.join('; ')}${logitNote}. Hint: lower ${settings.batch} or ${settings.length}.`,
  );
}

/** The slice of `GPUDevice` used here (lib.dom has no WebGPU types). */
interface GpuErrorScopeDevice {
  limits: DeviceLimits;
  pushErrorScope(filter: 'validation' | 'out-of-memory' | 'internal'): void;
  popErrorScope(): Promise<{ message: string; constructor: { name: string } } | null>;
}

/** The tfjs webgpu backend's device when that backend is active, else null. */
export function webgpuDevice(): GpuErrorScopeDevice | null {
  if (tf.getBackend() !== 'webgpu') return null;
  const device = (tf.backend() as unknown as { device?: GpuErrorScopeDevice }).device;
  return device && typeof device.pushErrorScope === 'function' ? device : null;
}

/** The active webgpu device's limits, or null on every other backend. */
export function webgpuLimits(): DeviceLimits | null {
  const device = webgpuDevice();
  if (device === null) return null;
  return {
    maxStorageBufferBindingSize: Number(device.limits.maxStorageBufferBindingSize),
    maxBufferSize: Number(device.limits.maxBufferSize),
  };
}

/**
 * {@link checkForwardFits} against the active webgpu device; nothing on other backends (their
 * tensors are plain memory without a per-buffer limit).
 */
export function checkDeviceFits(
  config: LlamaConfig,
  shape: ForwardShape,
  settings: LimitSettings,
): void {
  const limits = webgpuLimits();
  if (limits !== null) checkForwardFits(config, shape, limits, settings);
}

// Error scopes are a per-device stack: only the outermost guarded call pushes, so the error is
// reported with the most specific settings (train() names batchSize, a bare forward cannot).
let activeScopes = 0;

const SIZE_ERROR =
  /binding size|buffer size|maxStorageBufferBindingSize|maxBufferSize|out of memory/i;

/**
 * Runs `run` inside WebGPU `out-of-memory` and `validation` error scopes (on the webgpu backend;
 * elsewhere it only runs it). A captured allocation failure, or a buffer over a device limit,
 * becomes `E_OUT_OF_MEMORY` naming the settings to lower; any other captured validation error
 * becomes `E_GPU`. The scopes are popped after `run`'s reads, so the cost is two promise turns.
 *
 * @example
 * ```ts
 * const loss = await guardDeviceErrors({ what: 'training step', batch: 'batchSize', length: 'maxLength' },
 *   () => lossTensor.data());
 * ```
 */
export async function guardDeviceErrors<T>(
  settings: LimitSettings,
  run: () => Promise<T>,
): Promise<T> {
  const device = webgpuDevice();
  if (device === null || activeScopes > 0) return run();
  activeScopes++;
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let value: T | undefined;
  let failure: unknown;
  let failed = false;
  try {
    value = await run();
  } catch (error) {
    failed = true;
    failure = error;
  } finally {
    activeScopes--;
  }
  const validation = await device.popErrorScope();
  const outOfMemory = await device.popErrorScope();
  const captured = outOfMemory ?? validation;
  if (captured) {
    const firstLine = captured.message.split('\n')[0]?.trim() ?? '';
    const sizeRelated = outOfMemory !== null || SIZE_ERROR.test(captured.message);
    throw new TrainerError(
      sizeRelated ? 'E_OUT_OF_MEMORY' : 'E_GPU',
      sizeRelated
        ? `${settings.what} on webgpu: expected its buffers to fit the device, got ${outOfMemory ? 'an out-of-memory error' : 'a buffer over a device limit'} ("${firstLine}"); its results would be garbage. Hint: lower ${settings.batch} or ${settings.length}.`
        : `${settings.what} on webgpu: expected no device error, got ${captured.constructor.name} "${firstLine}"; its results would be garbage. Hint: try another backend (qlora --backend wasm) and report this error.`,
      { cause: failed ? failure : captured },
    );
  }
  if (failed) throw failure;
  return value as T;
}
