// tfjs-backend-webgpu pools released buffers by exact size forever; evaluation makes a new size
// at every batch. trimWebgpuBufferPool frees the pool between batches: here a loop of
// varying-size tensors grows the pool, the trim empties it, and the backend keeps computing
// correctly afterwards. Skipped without a WebGPU adapter (Mesa lavapipe runs it on the CPU).
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { bucketBytes, MIN_BUCKETED_BYTES, trimWebgpuBufferPool } from './_webgpu-pool';
import { hasWebgpu } from './_webgpu-probe';
import { initBackend } from './backend';

const webgpu = await hasWebgpu();

interface PoolMaps {
  freeBuffers: Map<string, unknown[]>;
}

interface Manager {
  numBytesAllocated: number;
  numBytesUsed: number;
  numFreeBuffers: number;
}

describe('bucketBytes', () => {
  it('rounds large tensor buffers up to a sixteenth of their power of two, small ones not at all', () => {
    expect(bucketBytes(268_311_552)).toBe(2 ** 28); // a [523, 128256] f32 loss chunk
    expect(bucketBytes(2 ** 28)).toBe(2 ** 28); // [8, 32, 512, 512] f32 attention scores
    expect(bucketBytes(17_000_000)).toBe(17 * 2 ** 20);
    expect(bucketBytes(MIN_BUCKETED_BYTES - 4)).toBe(MIN_BUCKETED_BYTES - 4);
    // [32, 128, 128256] f32 logits: the 2 GiB class is past the H200's 2 GiB − 4 binding limit
    expect(bucketBytes(2_101_346_304, 2_147_483_644)).toBe(2_101_346_304);
    expect(bucketBytes(2_101_346_304)).toBe(2 ** 31);
    for (const size of [2 ** 24, 3e7, 1e9, 5e9]) {
      expect(bucketBytes(size)).toBeGreaterThanOrEqual(size);
      expect(bucketBytes(size) / size).toBeLessThanOrEqual(1 + 1 / 16);
    }
  });
});

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

  it('reuses one buffer for tensors of one size class and reads back exactly each tensor', async () => {
    await initBackend('webgpu'); // installs the size classes
    const manager = (tf.backend() as unknown as { bufferManager: PoolMaps }).bufferManager;
    trimWebgpuBufferPool(0);
    const classBytes = 17 * 2 ** 20; // 17,000,000 and 17,400,000 bytes: both in the 17 MiB class
    const pooled = () =>
      [...manager.freeBuffers.entries()]
        .filter(([key]) => key.startsWith(`${classBytes}_`))
        .reduce((n, [, buffers]) => n + buffers.length, 0);
    const first = tf.fill([4_250_000], 1.5);
    expect((await first.data()).length).toBe(4_250_000);
    first.dispose();
    expect(pooled()).toBe(1);
    const second = tf.fill([4_350_000], 2.5); // a program output: takes the pooled buffer
    expect(pooled()).toBe(0);
    const values = (await second.data()) as Float32Array;
    expect(values.length).toBe(4_350_000);
    expect([values[0], values[4_349_999]]).toEqual([2.5, 2.5]);
    const doubled = tf.mul(second, tf.scalar(2)); // reads the larger buffer as 4,350,000 values
    expect((await doubled.data())[4_349_999]).toBe(5);
    tf.dispose([second, doubled]);
    expect(pooled()).toBe(2);
  });

  it('is a no-op on the cpu backend', async () => {
    await tf.setBackend('cpu');
    expect(trimWebgpuBufferPool(0)).toBe(0);
  });
});
