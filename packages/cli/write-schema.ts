// Writes schema/experiment.schema.json from the zod schema (`pnpm --filter @qlora/cli run schema`).
// A test fails when the committed file is stale.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { experimentSchemaText } from './src/_schema-text';

const target = fileURLToPath(new URL('./schema/experiment.schema.json', import.meta.url));
writeFileSync(target, experimentSchemaText());
console.log(`wrote ${target}`);
