/**
 * The parity measure of every tensor test: max |actual − expected| / max |expected|.
 *
 * @example
 * ```ts
 * expect(relativeError(ourLogits, transformersLogits)).toBeLessThan(1e-4);
 * ```
 */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs((actual[i] as number) - (expected[i] as number)));
    maxRef = Math.max(maxRef, Math.abs(expected[i] as number));
  }
  return maxDiff / maxRef;
}
