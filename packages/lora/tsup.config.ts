import { defineConfig } from 'tsup';
import { baseConfig } from '../../tsup.base';

// Two entries sharing one chunk, so `./node` and `.` share the LoraLinear and LoraError classes
// (instanceof works across them). Only the `./node` entry imports node:* modules.
export default defineConfig({
  ...baseConfig,
  entry: ['src/index.ts', 'src/node.ts'],
  splitting: true,
  platform: 'node',
  removeNodeProtocol: false,
});
