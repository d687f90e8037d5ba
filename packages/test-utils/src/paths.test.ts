import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hasSharedData, repoRoot, sharedDataPath } from './paths';

describe('paths', () => {
  it('finds the repository root', () => {
    expect(existsSync(join(repoRoot, 'pnpm-workspace.yaml'))).toBe(true);
  });

  it('finds the shared data beside the checkout', () => {
    expect(hasSharedData()).toBe(true);
    expect(existsSync(sharedDataPath('gsm8k', 'test.jsonl'))).toBe(true);
  });
});
