import { createHash } from 'node:crypto';
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { canonicalJson, hashRequest } from './request-hash';
import { sha256Hex } from './sha256';

describe('sha256Hex', () => {
  it('matches FIPS 180-4 vectors', () => {
    expect(sha256Hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256Hex('abc')).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expect(sha256Hex('a'.repeat(1_000_000))).toBe(
      'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0',
    );
  });

  test.prop([fc.string({ unit: 'grapheme', maxLength: 300 })], { seed: 42 })(
    'equals node:crypto on UTF-8 text',
    (s) => {
      expect(sha256Hex(s)).toBe(createHash('sha256').update(s, 'utf8').digest('hex'));
    },
  );
});

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
