// initBackend('webgpu', { int8TensorCores: true }) creates the device itself, asking for the
// subgroup features the adapter offers (tfjs's own factory asks for timestamp queries only).
// Mesa lavapipe offers `subgroups` but no subgroup matrices; skipped without an adapter.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from './backend';

const started = await initBackend('webgpu', { int8TensorCores: true }).then(
  () => true,
  () => false,
);

describe.skipIf(!started)('initBackend webgpu with int8TensorCores', () => {
  it('requests every subgroup feature the adapter has', async () => {
    const device = (tf.backend() as unknown as { device: { features: Set<string> } }).device;
    const gpu = (
      globalThis as unknown as {
        navigator: { gpu: { requestAdapter(): Promise<{ features: Set<string> }> } };
      }
    ).navigator.gpu;
    const adapter = await gpu.requestAdapter();
    for (const feature of ['subgroups', 'chromium-experimental-subgroup-matrix']) {
      expect(device.features.has(feature)).toBe(adapter.features.has(feature));
    }
    // lavapipe has subgroups: proof that this device came from our factory.
    if (adapter.features.has('subgroups')) expect(device.features.has('subgroups')).toBe(true);
  });
});
