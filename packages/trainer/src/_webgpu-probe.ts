// Test-only: whether initBackend('webgpu') can start here (a GPU, or Mesa's lavapipe on the CPU),
// probed once per test file; the backend is switched back to cpu afterwards.
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from './backend';

let probe: Promise<boolean> | undefined;

async function startWebgpu(): Promise<boolean> {
  try {
    await initBackend('webgpu');
    return true;
  } catch {
    return false;
  } finally {
    await tf.setBackend('cpu');
  }
}

/** True when the webgpu backend starts (the tests that need it skip otherwise). */
export function hasWebgpu(): Promise<boolean> {
  probe ??= startWebgpu();
  return probe;
}
