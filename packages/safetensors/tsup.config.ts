import { defineConfig } from 'tsup';
import { baseConfig } from '../../tsup.base';

// Both entries in one build with code splitting, so `./node` and `.` share one chunk (one
// SafetensorsError class: `instanceof` works across the two entry points). The main entry
// imports no node:* module; only the `./node` entry does.
export default defineConfig({
  ...baseConfig,
  entry: ['src/index.ts', 'src/node.ts'],
  splitting: true,
  platform: 'node',
  removeNodeProtocol: false,
});
