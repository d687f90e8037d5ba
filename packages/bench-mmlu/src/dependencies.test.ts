import { TFJS_NAMES, walkDependencies } from '@qlora/test-utils';
import { describe, expect, it } from 'vitest';

// Bench packages must never pull in TensorFlow.js, directly or through workspace packages.
describe('dependency graph of @qlora/bench-mmlu', () => {
  it('reaches no tfjs through package.json deps or src imports, transitively', () => {
    const walk = walkDependencies('@qlora/bench-mmlu', TFJS_NAMES);
    expect(walk.packages).toContain('@qlora/metrics');
    expect(walk.forbidden).toEqual([]);
    expect(walk.undeclared.filter((u) => u.startsWith('@qlora/bench-mmlu'))).toEqual([]);
  });
});
