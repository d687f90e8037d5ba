import { sha256Hex } from '@qlora/metrics';
import { BenchCoreError } from './errors';
import type { GenerateRequest, LoglikelihoodRequest, RollingRequest } from './types';

/** Which `LanguageModel` method a request goes to. */
export type RequestKind = 'loglikelihood' | 'generate_until' | 'loglikelihood_rolling';

/**
 * JSON with object keys sorted at every level and no whitespace, so equal requests always give
 * the same bytes (and the same hash) whatever order their fields were built in.
 *
 * @example
 * ```ts
 * canonicalJson({ b: 1, a: ['x'] }); // '{"a":["x"],"b":1}'
 * ```
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) {
        throw new BenchCoreError(
          'E_CANONICAL_JSON',
          `canonical JSON: expected a finite number, got ${value}`,
        );
      }
      return JSON.stringify(value);
    case 'object': {
      const keys = Object.keys(value as object)
        .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
        .sort();
      const body = keys.map(
        (k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`,
      );
      return `{${body.join(',')}}`;
    }
    default:
      throw new BenchCoreError(
        'E_CANONICAL_JSON',
        `canonical JSON: expected a JSON value, got ${typeof value}`,
      );
  }
}

/**
 * The cache key of one model request: sha256 hex of the canonical JSON of `{ kind, request }`.
 * It names what the model is asked, not which model answers: use one cache per model.
 *
 * @example
 * ```ts
 * hashRequest('loglikelihood', { context: 'Q: 2+2?', continuation: ' 4' }); // 64 hex chars
 * ```
 */
export function hashRequest(
  kind: RequestKind,
  request: LoglikelihoodRequest | GenerateRequest | RollingRequest,
): string {
  return sha256Hex(canonicalJson({ kind, request }));
}
