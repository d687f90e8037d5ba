import { TFJS_NAMES, walkDependencies } from '@qlora/test-utils';
import { describe, expect, it } from 'vitest';

// Bench packages must never pull in TensorFlow.js, directly or through workspace packages.
describe('dependency graph of @qlora/bench-gsm8k', () => {
  it('reaches no tfjs through package.json deps or src imports, transitively', () => {
    const walk = walkDependencies('@qlora/bench-gsm8k', TFJS_NAMES);
    expect(walk.packages).toContain('@qlora/metrics');
    expect(walk.forbidden).toEqual([]);
    expect(walk.undeclared.filter((u) => u.startsWith('@qlora/bench-gsm8k'))).toEqual([]);
  });
});
