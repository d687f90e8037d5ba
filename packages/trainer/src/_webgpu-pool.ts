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
