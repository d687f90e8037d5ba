import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './paths';

/** What a walk of a workspace package's dependency graph found. */
export interface DependencyWalk {
  /** Every workspace package reached, starting with the root. */
  packages: string[];
  /** `pkg → dep` or `pkg/src/file imports spec` for each forbidden name reached. */
  forbidden: string[];
  /** Imports in src/ that the package's package.json does not declare. */
  undeclared: string[];
}

/**
 * Walks a workspace package's runtime dependencies (package.json deps, peers, optional deps)
 * and every import in its `src/` (tests excluded), transitively through `@qlora/*` packages,
 * collecting names that match `forbidden`. Comments are skipped: `@example` imports don't count.
 *
 * @example
 * ```ts
 * const walk = walkDependencies('@qlora/bench-gsm8k', /tfjs|tensorflow|^webgpu$/);
 * expect(walk.forbidden).toEqual([]);
 * ```
 */
export function walkDependencies(root: string, forbidden: RegExp): DependencyWalk {
  const visit: DependencyWalk = { packages: [], forbidden: [], undeclared: [] };
  const walk = (name: string): void => {
    if (visit.packages.includes(name)) return;
    visit.packages.push(name);
    const dir = join(repoRoot, 'packages', name.replace('@qlora/', ''));
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<
      string,
      Record<string, string> | undefined
    >;
    const deps = { ...pkg.dependencies, ...pkg.peerDependencies, ...pkg.optionalDependencies };
    for (const dep of Object.keys(deps)) {
      if (forbidden.test(dep)) visit.forbidden.push(`${name} → ${dep}`);
    }
    for (const file of readdirSync(join(dir, 'src'), { recursive: true }) as string[]) {
      if (!file.endsWith('.ts') || file.endsWith('.test.ts')) continue;
      const text = readFileSync(join(dir, 'src', file), 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/^\s*\/\/.*$/gm, '');
      for (const [, spec] of text.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)) {
        if (!spec || spec.startsWith('.') || spec.startsWith('node:')) continue;
        const packageName = spec.startsWith('@')
          ? spec.split('/').slice(0, 2).join('/')
          : (spec.split('/')[0] ?? spec);
        if (forbidden.test(packageName))
          visit.forbidden.push(`${name}/src/${file} imports ${spec}`);
        if (!(packageName in deps)) visit.undeclared.push(`${name}/src/${file} imports ${spec}`);
      }
    }
    for (const dep of Object.keys(deps)) if (dep.startsWith('@qlora/')) walk(dep);
  };
  walk(root);
  return visit;
}

/** Packages that must never reach TensorFlow.js (the bench packages and their dependencies). */
export const TFJS_NAMES: RegExp = /tfjs|tensorflow|^webgpu$/;
