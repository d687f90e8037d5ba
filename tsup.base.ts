import type { Options } from 'tsup';

/**
 * The one build configuration every package shares: ESM + .d.ts from `src/index.ts`.
 * A package's `tsup.config.ts` re-exports this (or extends `entry` for subpaths).
 */
export const baseConfig: Options = {
  entry: ['src/index.ts'],
  format: ['esm'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'es2022',
  platform: 'neutral',
  splitting: false,
  treeshake: true,
};
