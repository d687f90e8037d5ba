/**
 * Largest difference of `actual` from `expected`, relative to max(|expected|, floor), and the
 * number of elements that are not bit-equal.
 */
export function compareF32(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  floor = 1e-30,
): { maxRel: number; maxAbs: number; unequal: number } {
  if (actual.length !== expected.length) {
    throw new Error(`length ${actual.length} vs ${expected.length}`);
  }
  let maxRel = 0;
  let maxAbs = 0;
  let unequal = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    if (Object.is(a, e) || a === e) continue;
    unequal++;
    const abs = Math.abs(a - e);
    maxAbs = Math.max(maxAbs, abs);
    maxRel = Math.max(maxRel, abs / Math.max(Math.abs(e), floor));
  }
  return { maxRel, maxAbs, unequal };
}
