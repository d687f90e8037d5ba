// tfjs-backend-webgpu pools released buffers by exact size forever; evaluation makes a new size
// at every batch. trimWebgpuBufferPool frees the pool between batches: here a loop of
// varying-size tensors grows the pool, the trim empties it, and the backend keeps computing
// correctly afterwards. Skipped without a WebGPU adapter (Mesa lavapipe runs it on the CPU).
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { trimWebgpuBufferPool } from './_webgpu-pool';
import { hasWebgpu } from './_webgpu-probe';

const webgpu = await hasWebgpu();

interface Manager {
  numBytesAllocated: number;
  numBytesUsed: number;
  numFreeBuffers: number;
}

describe.skipIf(!webgpu)('trimWebgpuBufferPool on webgpu', () => {
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it('destroys pooled buffers of past shapes once they exceed the bound, and nothing in use', async () => {
    await tf.setBackend('webgpu');
    const manager = (tf.backend() as unknown as { bufferManager: Manager }).bufferManager;
    const kept = tf.range(0, 1000, 1, 'float32');
    for (let width = 100; width < 140; width++) {
      const t = tf.mul(tf.ones([width, 257]), tf.scalar(2));
      await t.data();
      t.dispose();
    }
    const freeBefore = manager.numBytesAllocated - manager.numBytesUsed;
    expect(freeBefore).toBeGreaterThan(40 * 100 * 257 * 4);
    expect(trimWebgpuBufferPool(freeBefore + 1)).toBe(0); // under the bound: kept
    const freed = trimWebgpuBufferPool(0);
    expect(freed).toBe(freeBefore);
    expect(manager.numBytesAllocated - manager.numBytesUsed).toBe(0);
    expect(manager.numFreeBuffers).toBe(0);
    const sum = tf.sum(tf.add(kept, tf.scalar(1)));
    expect((await sum.data())[0]).toBe(500500);
    tf.dispose([kept, sum]);
  });

  it('is a no-op on the cpu backend', async () => {
    await tf.setBackend('cpu');
    expect(trimWebgpuBufferPool(0)).toBe(0);
  });
});
