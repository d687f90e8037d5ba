// The trainer's limit errors reach the command line as usage errors (exit 2) that name the flag
// to change: a --max-length above the model's positions is refused before any training.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { qlora, useTempDir } from './_test-helpers';
import { EMBEDDED_CONFIG_PATH } from './commands/experiment';

const dir = useTempDir('qlora-limits-');
const assets = join(EMBEDDED_CONFIG_PATH, '..');

describe('limits on the command line', () => {
  it('qlora train with the preset --max-length 2048 on a 512-position model exits 2 naming --max-length', async () => {
    const { status, stderr } = await qlora([
      'train',
      '--model',
      join(assets, 'model'),
      '--data',
      join(assets, 'data/alpaca/instructions.json'),
      '--n',
      '4',
      '--backend',
      'cpu',
      '--run-dir',
      join(dir, 'run'),
      '--json',
    ]);
    expect(status).toBe(2);
    const { error } = JSON.parse(stderr.trim().split('\n').at(-1) as string);
    expect(error.code).toBe('E_SEQUENCE_TOO_LONG');
    expect(error.message).toContain('expected at most 512 positions (max_position_embeddings of');
    expect(error.message).toContain('got a maxLength of 2048 tokens');
    expect(error.message).toContain('--max-length');
    expect(error.hint).toContain('--max-length');
  }, 60_000);
});
