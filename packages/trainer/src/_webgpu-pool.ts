import * as tf from '@tensorflow/tfjs-core';

// tfjs-backend-webgpu keeps every released buffer in a pool keyed by its exact byte size and never
// frees it. Training on fixed shapes reuses them; evaluation (and training on collated batches of
// varying width) makes new sizes at every batch, so the pool grows until the device runs out of
// memory: the full HellaSwag set hit VK_ERROR_OUT_OF_DEVICE_MEMORY on a 141 GB H200 within 40 s.
// Callers of variable-shape loops trim the pool between batches. GPUBuffer.destroy() is safe for
// buffers still used by submitted work (WebGPU frees them when that work completes).

interface PooledBuffer {
  size: number;
  destroy(): void;
}

interface BufferManagerLike {
  freeBuffers?: Map<string, PooledBuffer[]>;
  numFreeBuffers?: number;
  numBytesAllocated?: number;
  numBytesUsed?: number;
}

/** Free pool bytes above which {@link trimWebgpuBufferPool} destroys the pooled buffers. */
export const POOL_TRIM_BYTES = 2 ** 30;

/**
 * Destroys the webgpu backend's pooled (released, unused) buffers when they hold more than
 * `maxFreeBytes`; a no-op on other backends. Returns the bytes freed.
 */
export function trimWebgpuBufferPool(maxFreeBytes: number = POOL_TRIM_BYTES): number {
  if (tf.getBackend() !== 'webgpu') return 0;
  const manager = (tf.backend() as unknown as { bufferManager?: BufferManagerLike }).bufferManager;
  const pools = manager?.freeBuffers;
  if (manager === undefined || pools === undefined) return 0;
  const free = (manager.numBytesAllocated ?? 0) - (manager.numBytesUsed ?? 0);
  if (free <= maxFreeBytes) return 0;
  let freed = 0;
  for (const buffers of pools.values()) {
    for (const buffer of buffers) {
      freed += buffer.size;
      buffer.destroy();
    }
    buffers.length = 0;
  }
  manager.numFreeBuffers = 0;
  manager.numBytesAllocated = (manager.numBytesAllocated ?? 0) - freed;
  return freed;
}

interface PoolManager {
  acquireBuffer(size: number, usage: number, mappedAtCreation?: boolean, reuse?: boolean): object;
  releaseBuffer(buffer: object, reuse?: boolean): void;
}

const BUCKETED = Symbol('qlora.bucketedPool');
const STORAGE_USAGE = 0x80; // GPUBufferUsage.STORAGE
/** Tensor buffers from this size on are rounded up to a size class. */
export const MIN_BUCKETED_BYTES = 2 ** 24;
const BUCKETS_PER_OCTAVE = 16;

/**
 * The pool size class of a tensor buffer: sizes of at least {@link MIN_BUCKETED_BYTES} rounded up
 * to a sixteenth of their power of two (at most 6.25% more), smaller ones, and any whose class
 * would exceed `maxBindingBytes` (the device's storage binding limit), exact.
 */
export function bucketBytes(size: number, maxBindingBytes = Number.POSITIVE_INFINITY): number {
  if (size < MIN_BUCKETED_BYTES) return size;
  const step = 2 ** (Math.floor(Math.log2(size)) - Math.log2(BUCKETS_PER_OCTAVE));
  const bucketed = Math.ceil(size / step) * step;
  // tfjs binds whole buffers: a class above the binding limit would fail every dispatch that
  // reads it (a 2.1 GB logits tensor would round to 2 GiB, past Dawn's 2 GiB − 4 limit).
  return bucketed > maxBindingBytes ? size : bucketed;
}

// The pool matches sizes exactly, so tensors of nearly equal size never share buffers: training's
// [523, 128256] loss chunks (268,311,552 bytes) and [8, 32, 512, 512] attention scores
// (268,435,456) each kept their own, and the chunks sat idle in the pool through every layer's
// backward. Storage buffers are therefore created at their size class; the GPUBuffer gets an own
// `size` property with the tensor's byte size while it is in use (tfjs reads `buffer.size` to copy
// and read back exactly the tensor), removed on release so the pool files it under its class.
/**
 * Makes the webgpu backend's buffer pool reuse a buffer for any tensor of the same size class
 * ({@link bucketBytes}); idempotent, a no-op on other backends. Returns whether it is installed.
 */
export function bucketWebgpuBufferPool(): boolean {
  if (tf.getBackend() !== 'webgpu') return false;
  const backend = tf.backend() as unknown as {
    bufferManager?: PoolManager;
    device?: { limits?: { maxStorageBufferBindingSize?: number } };
  };
  const manager = backend.bufferManager;
  if (manager === undefined) return false;
  const maxBinding = backend.device?.limits?.maxStorageBufferBindingSize ?? 2 ** 27;
  const marked = manager as PoolManager & { [BUCKETED]?: true };
  if (marked[BUCKETED]) return true;
  const acquire = manager.acquireBuffer.bind(manager);
  const release = manager.releaseBuffer.bind(manager);
  manager.acquireBuffer = (size, usage, mappedAtCreation = false, reuse = true) => {
    const bucketed =
      !mappedAtCreation && (usage & STORAGE_USAGE) !== 0 ? bucketBytes(size, maxBinding) : size;
    const buffer = acquire(bucketed, usage, mappedAtCreation, reuse);
    if (bucketed !== size) {
      Object.defineProperty(buffer, 'size', { value: size, configurable: true });
    }
    return buffer;
  };
  manager.releaseBuffer = (buffer, reuse = true) => {
    if (Object.hasOwn(buffer, 'size')) delete (buffer as { size?: number }).size;
    release(buffer, reuse);
  };
  marked[BUCKETED] = true;
  return true;
}
