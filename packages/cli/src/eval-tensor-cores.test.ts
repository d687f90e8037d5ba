// qlora eval --w8a8 / --f16 off a GPU with the subgroup matrices they need: the model loads on
// webgpu (Mesa lavapipe here), then the switch stops with NOT_AVAILABLE (exit 4) saying what the
// device lacks, before any request is scored. Skipped where webgpu itself cannot start.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { qlora } from './_test-helpers';

const model = join(import.meta.dirname, '..', 'assets', 'embedded', 'model');

describe('qlora eval on tensor cores the device lacks', () => {
  for (const [flag, conversion] of [
    ['--w8a8', 'useInt8Projections'],
    ['--f16', 'useF16Projections'],
  ] as const) {
    it(`${flag} stops with exit code 4 and the reason`, async (context) => {
      const run = await qlora([
        'eval',
        '--model',
        model,
        flag,
        '--tasks',
        'hellaswag',
        '--limit',
        '1',
        '--out',
        join(import.meta.dirname, '..', '..', '..', 'node_modules', `.tmp-eval${flag.slice(1)}`),
      ]);
      if (/no WebGPU adapter|webgpu.*(did not|failed)|E_BACKEND/i.test(run.stderr)) context.skip();
      expect(run.status).toBe(4);
      expect(run.stderr).toContain(`${flag}: [@qlora/lora] ${conversion}`);
      expect(run.stderr).toMatch(/lacks .*chromium-experimental-subgroup-matrix|not webgpu/);
      expect(run.stderr).toContain(`drop ${flag} to evaluate in exact f32`);
    }, 60_000);
  }
});
