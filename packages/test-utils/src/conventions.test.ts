import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './paths';

// House conventions every published package follows (../shared/specs/style-anchors.md §5).
// Checked mechanically so they hold as the monorepo grows.

interface PackageJson {
  name: string;
  private?: boolean;
  type?: string;
  sideEffects?: boolean;
  files?: string[];
  exports?: Record<string, unknown>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

const packagesDir = join(repoRoot, 'packages');
const published = readdirSync(packagesDir)
  .map((folder) => ({
    folder,
    json: JSON.parse(
      readFileSync(join(packagesDir, folder, 'package.json'), 'utf8'),
    ) as PackageJson,
  }))
  .filter(({ json }) => !json.private);

const LEAVES = new Set(['nf4', 'safetensors', 'metrics']);

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

function stripComments(code: string): string {
  return code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
}

describe.each(published)('package $folder', ({ folder, json }) => {
  const dir = join(packagesDir, folder);

  it('is named after its folder and shaped as the house style says', () => {
    expect(json.name).toBe(`@qlora/${folder}`);
    expect(json.type).toBe('module');
    expect(json.sideEffects).toBe(false);
    // `dist` always; a few packages also ship data (the CLI's JSON schema and embedded assets).
    expect(json.files).toContain('dist');
    expect(json.files).not.toContain('src');
    const root = json.exports?.['.'] as Record<string, string> | undefined;
    expect(root?.['@qlora/source']).toBe('./src/index.ts');
    expect(root?.types).toBe('./dist/index.d.ts');
    expect(root?.default).toBe('./dist/index.js');
    expect(json.exports?.['./package.json']).toBe('./package.json');
  });

  it('has a README and an errors module', () => {
    expect(existsSync(join(dir, 'README.md'))).toBe(true);
    expect(existsSync(join(dir, 'src', 'errors.ts'))).toBe(true);
  });

  it('keeps src/index.ts to named re-exports', () => {
    const code = stripComments(readFileSync(join(dir, 'src', 'index.ts'), 'utf8'));
    const statements = code
      .split(';')
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
    for (const statement of statements) {
      expect(statement, statement).toMatch(/^export (type )?(\{[\s\S]*\}|\*) from '[^']+'$/);
      expect(statement).not.toMatch(/export default/);
    }
  });

  it('follows the dependency direction', () => {
    const deps = Object.keys(json.dependencies ?? {});
    if (LEAVES.has(folder)) expect(deps).toEqual([]);
    if (folder.startsWith('bench-')) {
      expect(deps.filter((d) => d.includes('tensorflow') || d === '@qlora/trainer')).toEqual([]);
    }
  });

  it.skipIf(folder === 'cli')('leaves argv, env and printing to the CLI', () => {
    for (const file of sourceFiles(join(dir, 'src'))) {
      const code = stripComments(readFileSync(file, 'utf8'));
      expect(code, file).not.toMatch(/process\.argv|console\.(log|info|warn|error)\(/);
    }
  });
});
