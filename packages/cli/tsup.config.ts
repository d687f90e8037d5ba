import { defineConfig } from 'tsup';
import { baseConfig } from '../../tsup.base';

// Two entries: the library (`src/index.ts`) and the `qlora` bin (`src/cli.ts`). Node-only (fs,
// tty, process), so platform node; dependencies stay external. The shebang goes on the bin only.
export default defineConfig({
  ...baseConfig,
  entry: ['src/index.ts', 'src/cli.ts'],
  platform: 'node',
  splitting: true,
  removeNodeProtocol: false,
  async onSuccess() {
    const { readFile, writeFile, chmod } = await import('node:fs/promises');
    const bin = 'dist/cli.js';
    const text = await readFile(bin, 'utf8');
    if (!text.startsWith('#!')) await writeFile(bin, `#!/usr/bin/env node\n${text}`);
    await chmod(bin, 0o755);
  },
});
