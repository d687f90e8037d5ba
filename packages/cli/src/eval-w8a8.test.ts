// qlora eval --w8a8 off an int8-capable GPU: the model loads on webgpu (Mesa lavapipe here), then
// the W8A8 switch stops with NOT_AVAILABLE (exit 4) saying what the device lacks, before any
// request is scored. Skipped where webgpu itself cannot start.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { qlora } from './_test-helpers';

const model = join(import.meta.dirname, '..', 'assets', 'embedded', 'model');

describe('qlora eval --w8a8', () => {
  it('stops with exit code 4 and the reason on a device without int8 subgroup matrices', async (context) => {
    const run = await qlora([
      'eval',
      '--model',
      model,
      '--w8a8',
      '--tasks',
      'hellaswag',
      '--limit',
      '1',
      '--out',
      join(import.meta.dirname, '..', '..', '..', 'node_modules', '.tmp-eval-w8a8'),
    ]);
    if (/no WebGPU adapter|webgpu.*(did not|failed)|E_BACKEND/i.test(run.stderr)) context.skip();
    expect(run.status).toBe(4);
    expect(run.stderr).toContain('--w8a8: [@qlora/lora] useInt8Projections');
    expect(run.stderr).toMatch(/lacks chromium-experimental-subgroup-matrix|not webgpu/);
    expect(run.stderr).toContain('drop --w8a8 to evaluate in exact f32');
  }, 60_000);
});
