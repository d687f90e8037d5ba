// initBackend('webgpu', { dawnToggles }) passes Dawn toggles to the instance it creates.
// Runs on Mesa lavapipe; skipped where no WebGPU adapter starts.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from './backend';

const badName = await initBackend('webgpu', { dawnToggles: ['disable robustness; rm'] }).then(
  () => 'started',
  (error: Error) => error.message,
);
const started = await initBackend('webgpu', { dawnToggles: ['disable_robustness'] }).then(
  () => true,
  () => false,
);

describe('initBackend webgpu with dawnToggles', () => {
  it('rejects a toggle that is not a snake_case name, before creating anything', () => {
    expect(badName).toMatch(/a Dawn toggle is a snake_case name.*got "disable robustness; rm"/);
  });

  it.skipIf(!started)('runs with disable_robustness, with the same results', async () => {
    expect(tf.getBackend()).toBe('webgpu');
    const a = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = tf.tensor2d([1, 0, -1, 2, 0.5, 1], [3, 2]);
    expect(Array.from(await tf.matMul(a, b).data())).toEqual([0.5, 7, 2, 16]);
  });

  it.skipIf(!started)(
    'refuses toggles once navigator.gpu exists (they would be ignored)',
    async () => {
      tf.removeBackend('webgpu');
      await expect(initBackend('webgpu', { dawnToggles: ['disable_robustness'] })).rejects.toThrow(
        /need a Dawn instance created here, but navigator.gpu already exists/,
      );
    },
  );
});
