import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from './backend';
import { TrainerError } from './errors';

describe('initBackend', () => {
  it('auto reports why tensorflow and webgpu were not taken, then runs wasm', async () => {
    const report = await initBackend('auto');
    expect(report.backend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(report.tried.map((t) => [t.name, t.ok])).toEqual([
      ['tensorflow', false],
      ['webgpu', false],
      ['wasm', true],
    ]);
    expect(report.tried[0]?.reason).toContain('@tensorflow/tfjs-node-gpu is not installed');
    expect(report.tried[0]?.reason).toContain('@tensorflow/tfjs-node is not installed');
    expect(report.tried[1]?.reason).toMatch(/WebGPU|webgpu/);
  });

  it('starts cpu and wasm explicitly', async () => {
    expect((await initBackend('cpu')).backend).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect((await initBackend('wasm')).tried).toEqual([
      { name: 'wasm', ok: true, reason: expect.stringContaining('WebAssembly') },
    ]);
  });

  it('an explicit backend that cannot start throws with the reason, or falls back when asked', async () => {
    await expect(initBackend('tensorflow')).rejects.toThrow(TrainerError);
    await expect(initBackend('tensorflow')).rejects.toThrow(
      /no backend started.*tfjs-node-gpu is not installed/,
    );
    const report = await initBackend('tensorflow', { fallback: true });
    expect(report.backend).not.toBe('tensorflow');
    expect(report.tried[0]).toMatchObject({ name: 'tensorflow', ok: false });
  });

  it('rejects unknown names', async () => {
    // @ts-expect-error: not a backend name
    await expect(initBackend('cuda')).rejects.toThrow(/unknown backend/);
  });
});
