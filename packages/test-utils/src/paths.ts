import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Absolute path of the repository root (the folder holding pnpm-workspace.yaml). */
export const repoRoot: string = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * Path inside the read-only shared data folder that sits beside the checkout (`../shared/data`).
 * Tests read real data from there; its files are never copied into the repository.
 */
export function sharedDataPath(...parts: string[]): string {
  return join(repoRoot, '..', 'shared', 'data', ...parts);
}

/** True when `../shared/data` exists (it does on developer machines and in CI). */
export function hasSharedData(): boolean {
  return existsSync(sharedDataPath());
}

/** Path of a committed reference fixture under `test-fixtures/`. */
export function fixturePath(...parts: string[]): string {
  return join(repoRoot, 'test-fixtures', ...parts);
}
