import { defineConfig } from 'tsup';
import { baseConfig } from '../../tsup.base';

// Two entries: the portable main entry and `./node` (the JSONL request cache, uses node:fs).
// Splitting puts shared modules (BenchCoreError) in one chunk, so `instanceof` works across both.
export default defineConfig({
  ...baseConfig,
  entry: ['src/index.ts', 'src/node.ts'],
  splitting: true,
});
