// qlora eval --f16 off an f16-capable GPU: the model loads on webgpu (Mesa lavapipe here), then
// the f16 switch stops with NOT_AVAILABLE (exit 4) saying what the device lacks, before any
// request is scored. Skipped where webgpu itself cannot start.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { qlora } from './_test-helpers';

const model = join(import.meta.dirname, '..', 'assets', 'embedded', 'model');

describe('qlora eval --f16', () => {
  it('stops with exit code 4 and the reason on a device without f16 subgroup matrices', async (context) => {
    const run = await qlora([
      'eval',
      '--model',
      model,
      '--f16',
      '--tasks',
      'hellaswag',
      '--limit',
      '1',
      '--out',
      join(import.meta.dirname, '..', '..', '..', 'node_modules', '.tmp-eval-f16'),
    ]);
    if (/no WebGPU adapter|webgpu.*(did not|failed)|E_BACKEND/i.test(run.stderr)) context.skip();
    expect(run.status).toBe(4);
    expect(run.stderr).toContain('--f16: [@qlora/lora] useF16Projections');
    expect(run.stderr).toMatch(/lacks .*chromium-experimental-subgroup-matrix|not webgpu/);
    expect(run.stderr).toContain('drop --f16 to evaluate in exact f32');
  }, 60_000);
});
