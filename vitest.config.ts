import { existsSync, readdirSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

// One vitest project per package. Tests resolve workspace packages from `src/` through the
// `@qlora/source` export condition, so `pnpm test` needs no build.
const packages = readdirSync('packages').filter((name) => existsSync(`packages/${name}/src`));

export default defineConfig({
  test: {
    projects: packages.map((name) => ({
      resolve: { conditions: ['@qlora/source'] },
      ssr: { resolve: { conditions: ['@qlora/source'] } },
      test: {
        name,
        root: `packages/${name}`,
        include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
        testTimeout: 60_000,
        clearMocks: true,
        restoreMocks: true,
      },
    })),
  },
});
