import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson, hashRequest } from './request-hash';

describe('request hashing', () => {
  it('is independent of key order and sensitive to content', () => {
    expect(canonicalJson({ b: [1, { d: 1, c: 'x' }], a: true })).toBe(
      '{"a":true,"b":[1,{"c":"x","d":1}]}',
    );
    const a = hashRequest('loglikelihood', { context: 'Q', continuation: ' A' });
    const b = hashRequest('loglikelihood', { continuation: ' A', context: 'Q' });
    expect(a).toBe(b);
    expect(hashRequest('loglikelihood', { context: 'Q', continuation: ' B' })).not.toBe(a);
    expect(a).toBe(
      createHash('sha256')
        .update('{"kind":"loglikelihood","request":{"context":"Q","continuation":" A"}}')
        .digest('hex'),
    );
  });
});
