import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '@qlora/test-utils';
import { describe, expect, it } from 'vitest';

// Bench packages must never pull in TensorFlow.js, directly or through workspace packages: the
// walk reads each package's runtime dependencies and every import in its src/, transitively.
const FORBIDDEN = /tfjs|tensorflow|^webgpu$/;

interface Visit {
  packages: string[];
  forbidden: string[];
  undeclared: string[];
}

function walk(name: string, visit: Visit): void {
  if (visit.packages.includes(name)) return;
  visit.packages.push(name);
  const dir = join(repoRoot, 'packages', name.replace('@qlora/', ''));
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<
    string,
    Record<string, string> | undefined
  >;
  const deps = { ...pkg.dependencies, ...pkg.peerDependencies, ...pkg.optionalDependencies };
  for (const dep of Object.keys(deps))
    if (FORBIDDEN.test(dep)) visit.forbidden.push(`${name} → ${dep}`);
  for (const file of readdirSync(join(dir, 'src'), { recursive: true }) as string[]) {
    if (!file.endsWith('.ts') || file.endsWith('.test.ts')) continue;
    // Comments hold @example imports; only code counts.
    const text = readFileSync(join(dir, 'src', file), 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/^\s*\/\/.*$/gm, '');
    for (const [, spec] of text.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)) {
      if (!spec || spec.startsWith('.') || spec.startsWith('node:')) continue;
      const root = spec.startsWith('@')
        ? spec.split('/').slice(0, 2).join('/')
        : spec.split('/')[0]!;
      if (FORBIDDEN.test(root)) visit.forbidden.push(`${name}/src/${file} imports ${spec}`);
      if (!(root in deps)) visit.undeclared.push(`${name}/src/${file} imports ${spec}`);
    }
  }
  for (const dep of Object.keys(deps)) if (dep.startsWith('@qlora/')) walk(dep, visit);
}

describe('dependency graph of @qlora/bench-gsm8k', () => {
  it('reaches no tfjs through package.json deps or src imports, transitively', () => {
    const visit: Visit = { packages: [], forbidden: [], undeclared: [] };
    walk('@qlora/bench-gsm8k', visit);
    expect(visit.packages).toContain('@qlora/metrics');
    expect(visit.forbidden).toEqual([]);
    expect(visit.undeclared.filter((u) => u.startsWith('@qlora/bench-gsm8k'))).toEqual([]);
  });
});
