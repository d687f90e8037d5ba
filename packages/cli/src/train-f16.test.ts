// qlora train --f16-base: only webgpu reaches the tensor cores (usage error elsewhere); off an
// f16-capable GPU (Mesa lavapipe here) it stops with NOT_AVAILABLE (exit 4) before training.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { qlora, useTempDir } from './_test-helpers';

const assets = join(import.meta.dirname, '..', 'assets', 'embedded');
const dir = useTempDir('qlora-train-f16-');
const args = (backend: string) => [
  'train',
  '--model',
  join(assets, 'model'),
  '--data',
  join(assets, 'data/alpaca/instructions.json'),
  '--n',
  '4',
  '--max-length',
  '64',
  '--max-steps',
  '1',
  '--f16-base',
  '--backend',
  backend,
  '--run-dir',
  join(dir, backend),
];

describe('qlora train --f16-base', () => {
  it('is a usage error on a backend without tensor cores', async () => {
    const run = await qlora(args('cpu'));
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('--f16-base: expected --backend webgpu (or auto), got cpu');
  });

  it('stops with exit code 4 and the reason on a device without f16 subgroup matrices', async (context) => {
    const run = await qlora(args('webgpu'));
    if (/no WebGPU adapter|webgpu.*(did not|failed)|E_BACKEND/i.test(run.stderr)) context.skip();
    expect(run.status).toBe(4);
    expect(run.stderr).toContain('--f16-base: [@qlora/lora] useF16BaseProducts');
    expect(run.stderr).toContain('drop --f16-base to train in exact f32');
  }, 60_000);
});
