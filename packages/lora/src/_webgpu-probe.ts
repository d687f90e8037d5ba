// Test-only: starts tfjs-backend-webgpu through the `webgpu` npm package (Dawn) when an adapter
// exists (a GPU, or Mesa's lavapipe on the CPU); machines without one skip the webgpu tests.
import * as tf from '@tensorflow/tfjs-core';

let probe: Promise<boolean> | undefined;

async function importByName(name: string): Promise<unknown> {
  return import(/* @vite-ignore */ name);
}

async function startWebgpu(): Promise<boolean> {
  try {
    const scope = globalThis as unknown as { navigator?: { gpu?: unknown } };
    if (scope.navigator?.gpu === undefined) {
      const dawn = (await importByName('webgpu')) as {
        create: (flags: string[]) => unknown;
        globals: Record<string, unknown>;
      };
      Object.assign(globalThis, dawn.globals);
      Object.defineProperty(globalThis, 'navigator', {
        value: { ...(scope.navigator ?? {}), gpu: dawn.create([]) },
        configurable: true,
        writable: true,
      });
    }
    const gpu = (
      globalThis as unknown as { navigator: { gpu: { requestAdapter(): Promise<unknown> } } }
    ).navigator.gpu;
    if ((await gpu.requestAdapter()) == null) return false;
    await importByName('@tensorflow/tfjs-backend-webgpu');
    const previous = tf.getBackend();
    const ok = await tf.setBackend('webgpu');
    if (previous !== undefined && previous !== 'webgpu') await tf.setBackend(previous);
    return ok;
  } catch {
    return false;
  }
}

/** Whether the webgpu backend can start here; probes once per test file. */
export function hasWebgpu(): Promise<boolean> {
  probe ??= startWebgpu();
  return probe;
}
