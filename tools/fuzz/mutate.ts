// Shared fuzzing pieces for the packages' `src/fuzz.test.ts` files and `tools/fuzz/run.ts`:
// seeded mutation arbitraries over bytes, text and parsed JSON, plus the "only the typed error"
// check with a per-case time bound. Test-only code: packages never import it from `src`.

import fc from 'fast-check';

/** The one seed every fuzz property uses, so a failure reproduces from its run count alone. */
export const FUZZ_SEED = 20261128;

/** A case that takes longer than this is reported as a hang. */
export const CASE_MS_BOUND = 2_000;

/**
 * `base` cases times the `QLORA_FUZZ_RUNS` multiplier (default 1). CI runs the base count;
 * `QLORA_FUZZ_RUNS=20 pnpm test` or `tools/fuzz/run.ts` run the long campaign.
 */
export function fuzzRuns(base: number): number {
  const raw = process.env.QLORA_FUZZ_RUNS;
  const factor = raw === undefined || raw === '' ? 1 : Number(raw);
  if (!Number.isFinite(factor) || factor <= 0) {
    throw new Error(`QLORA_FUZZ_RUNS: expected a positive number, got ${JSON.stringify(raw)}`);
  }
  return Math.max(1, Math.round(base * factor));
}

const encoder = new TextEncoder();

/** Text snippets that break parsers: quoting, escapes, huge and special numbers, nesting, keys. */
export const HOSTILE_SNIPPETS: readonly string[] = [
  '"',
  "'",
  '\n',
  '\r\n',
  '\r',
  ',',
  ';',
  '\\',
  '\\u',
  '\\ud800',
  '{',
  '}',
  '[',
  ']',
  ':',
  '""',
  '\t',
  '\uFEFF',
  '\u0000',
  '\u2028',
  'null',
  '-1',
  '-0',
  '1e309',
  '-1e309',
  'NaN',
  'Infinity',
  '18446744073709551616',
  '1099511627776',
  '9007199254740993',
  '0.1e-400',
  '"__proto__"',
  '{"__proto__":{"polluted":1}}',
  '"constructor"',
  '../../../../etc/passwd',
  '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[',
  '['.repeat(5_000),
  '{"a":'.repeat(2_000),
  'x'.repeat(70_000),
];

/** Byte sequences that are not (or not plain) UTF-8: a BOM, lone continuation and lead bytes, a CESU surrogate, NUL. */
export const HOSTILE_BYTES: readonly Uint8Array[] = [
  Uint8Array.of(0xff),
  Uint8Array.of(0xfe, 0xff),
  Uint8Array.of(0xc3),
  Uint8Array.of(0x80),
  Uint8Array.of(0xed, 0xa0, 0x80),
  Uint8Array.of(0xef, 0xbb, 0xbf),
  Uint8Array.of(0xf4, 0x90, 0x80, 0x80),
  Uint8Array.of(0x00),
];

/** One edit of a byte string; positions are taken modulo the length at the time of the edit. */
export type Mutation =
  | { kind: 'flip'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'duplicate'; at: number; length: number };

const insertArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.constantFrom(...HOSTILE_SNIPPETS).map((s) => encoder.encode(s)),
  fc.constantFrom(...HOSTILE_BYTES),
  fc.uint8Array({ minLength: 1, maxLength: 8 }),
  fc.string({ maxLength: 8, unit: 'binary' }).map((s) => encoder.encode(s)),
);

/** 1–4 edits: byte flips, truncation, inserted hostile snippets, deletions, duplicated regions. */
export const mutationsArb: fc.Arbitrary<Mutation[]> = fc.array(
  fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('flip' as const),
        at: fc.nat(),
        value: fc.integer({ min: 0, max: 255 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('insert' as const),
        at: fc.nat(),
        bytes: insertArb,
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('delete' as const),
        at: fc.nat(),
        length: fc.integer({ min: 1, max: 64 }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('duplicate' as const),
        at: fc.nat(),
        length: fc.integer({ min: 1, max: 256 }),
      }),
    },
  ),
  { minLength: 1, maxLength: 4 },
);

/** Applies `mutations` to a copy of `bytes`. */
export function applyMutations(bytes: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let out = bytes.slice();
  for (const m of mutations) {
    const at = out.length === 0 ? 0 : m.at % (out.length + (m.kind === 'insert' ? 1 : 0));
    if (m.kind === 'flip') {
      if (out.length > 0) out[at] = m.value;
    } else if (m.kind === 'truncate') {
      out = out.slice(0, at);
    } else if (m.kind === 'insert') {
      const next = new Uint8Array(out.length + m.bytes.length);
      next.set(out.subarray(0, at), 0);
      next.set(m.bytes, at);
      next.set(out.subarray(at), at + m.bytes.length);
      out = next;
    } else if (m.kind === 'delete') {
      const next = new Uint8Array(out.length - Math.min(m.length, out.length - at));
      next.set(out.subarray(0, at), 0);
      next.set(out.subarray(at + m.length), at);
      out = next;
    } else {
      const region = out.slice(at, at + m.length);
      const next = new Uint8Array(out.length + region.length);
      next.set(out.subarray(0, at + region.length), 0);
      next.set(region, at + region.length);
      next.set(out.subarray(at + region.length), at + 2 * region.length);
      out = next;
    }
  }
  return out;
}

/** A seed file, mutated. */
export function mutatedBytesArb(seeds: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(fc.constantFrom(...seeds), mutationsArb)
    .map(([seed, mutations]) => applyMutations(seed, mutations));
}

/** Values that break validators: wrong types, huge and negative sizes, deep nesting, path tricks. */
export const hostileValueArb: fc.Arbitrary<unknown> = fc.oneof(
  fc
    .constantFrom<unknown>(
      null,
      true,
      false,
      0,
      -1,
      -0,
      0.5,
      1.5,
      2 ** 31,
      2 ** 32,
      2 ** 40,
      2 ** 53 + 2,
      1e308,
      -1e308,
      '',
      'NaN',
      'nf4',
      'float32',
      '__proto__',
      '../../../etc/passwd',
      '/etc/passwd',
      'C:\\Windows\\win.ini',
      'x'.repeat(100_000),
      [],
      {},
      [2 ** 20, 2 ** 20],
      [2 ** 40],
      [-1],
      [1.5],
    )
    .map((v) =>
      // a fresh copy per case: edits mutate what they insert, and a shared constant could turn cyclic
      v !== null && typeof v === 'object' ? structuredClone(v) : v,
    ),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 12 }),
  fc.jsonValue({ maxDepth: 3 }),
  fc.integer({ min: 100, max: 3_000 }).map((depth) => nest(depth)),
);

function nest(depth: number): unknown {
  let value: unknown = 0;
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { a: value };
  return value;
}

type JsonPath = (string | number)[];

function pathsOf(value: unknown, path: JsonPath, out: JsonPath[], budget: { left: number }): void {
  if (budget.left-- <= 0) return;
  out.push(path);
  // Edits go no deeper than real files nest; hostile deep values are still carried along whole.
  if (path.length >= 12) return;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) pathsOf(value[i], [...path, i], out, budget);
  } else if (value !== null && typeof value === 'object') {
    for (const [k, item] of Object.entries(value)) pathsOf(item, [...path, k], out, budget);
  }
}

function setOwn(
  target: Record<string | number, unknown>,
  key: string | number,
  value: unknown,
): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

/** One structural edit of parsed JSON. */
export interface JsonEdit {
  at: number;
  op: 'replace' | 'delete' | 'add' | 'wrap';
  value: unknown;
  key: string;
}

const jsonEditArb: fc.Arbitrary<JsonEdit> = fc.record({
  at: fc.nat(),
  op: fc.constantFrom(
    'replace' as const,
    'replace' as const,
    'delete' as const,
    'add' as const,
    'wrap' as const,
  ),
  value: hostileValueArb,
  key: fc.oneof(
    fc.constantFrom('__proto__', 'constructor', 'prototype', ''),
    fc.string({ maxLength: 8 }),
  ),
});

/** Applies `edits` to a deep copy of `seed` (object keys such as `__proto__` become own keys). */
export function applyJsonEdits(seed: unknown, edits: readonly JsonEdit[]): unknown {
  let root = structuredClone(seed);
  for (const edit of edits) {
    const paths: JsonPath[] = [];
    pathsOf(root, [], paths, { left: 2_000 });
    const path = paths[edit.at % paths.length] ?? [];
    const parentPath = path.slice(0, -1);
    const last = path[path.length - 1];
    let parent: unknown = root;
    for (const k of parentPath) parent = (parent as Record<string | number, unknown>)[k];
    const target = last === undefined ? root : (parent as Record<string | number, unknown>)[last];
    const replaceWith = (value: unknown): void => {
      if (last === undefined) root = value;
      else setOwn(parent as Record<string | number, unknown>, last, value);
    };
    if (edit.op === 'replace') replaceWith(edit.value);
    else if (edit.op === 'wrap') replaceWith([target]);
    else if (edit.op === 'delete') {
      if (last === undefined) root = undefined;
      else if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else delete (parent as Record<string, unknown>)[last];
    } else if (target !== null && typeof target === 'object' && !Array.isArray(target)) {
      setOwn(target as Record<string, unknown>, edit.key, edit.value);
    } else if (Array.isArray(target)) {
      target.push(edit.value);
    } else {
      replaceWith(edit.value);
    }
  }
  return root;
}

/** A seed value with 1–3 structural edits. */
export function mutatedJsonArb(seeds: readonly unknown[]): fc.Arbitrary<unknown> {
  return fc
    .tuple(fc.constantFrom(...seeds), fc.array(jsonEditArb, { minLength: 1, maxLength: 3 }))
    .map(([seed, edits]) => applyJsonEdits(seed, edits));
}

/**
 * JSON text from a seed: structurally edited and serialised, byte-mutated, or both; as UTF-8
 * bytes (so invalid UTF-8 reaches the reader).
 */
export function mutatedJsonBytesArb(seeds: readonly unknown[]): fc.Arbitrary<Uint8Array> {
  const texts = seeds.map((s) => encoder.encode(JSON.stringify(s, null, 1)));
  return fc.oneof(
    mutatedJsonArb(seeds).map((v) => encoder.encode(JSON.stringify(v) ?? '')),
    mutatedBytesArb(texts),
    fc
      .tuple(mutatedJsonArb(seeds), mutationsArb)
      .map(([v, m]) => applyMutations(encoder.encode(JSON.stringify(v) ?? ''), m)),
    fc.jsonValue().map((v) => encoder.encode(JSON.stringify(v) ?? '')),
  );
}

/** What one case ended in: `ok`, or the typed error's code. */
export type Outcome = string;

/** A non-typed exception or a hang, with the input that caused it. */
export class FuzzFailure extends Error {
  constructor(
    message: string,
    readonly input: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

function outcomeOf(
  error: unknown,
  typed: readonly (abstract new (...args: never[]) => Error)[],
): Outcome {
  if (typed.some((cls) => error instanceof cls)) {
    const e = error as Error & { code?: unknown };
    return `${e.name}:${typeof e.code === 'string' ? e.code : '?'}`;
  }
  const e = error as Error;
  throw new FuzzFailure(
    `untyped exception ${e?.name ?? typeof error}: ${String(e?.message ?? error).slice(0, 300)}`,
    undefined,
    { cause: error },
  );
}

/** Runs `fn`; returns `ok` or the typed error's `Name:code`; throws FuzzFailure on anything else or a hang. */
export function expectTyped(
  typed: readonly (abstract new (...args: never[]) => Error)[],
  fn: () => unknown,
  bound = CASE_MS_BOUND,
): Outcome {
  const start = performance.now();
  let outcome: Outcome;
  try {
    fn();
    outcome = 'ok';
  } catch (error) {
    outcome = outcomeOf(error, typed);
  }
  const ms = performance.now() - start;
  if (ms > bound)
    throw new FuzzFailure(`case took ${ms.toFixed(0)} ms (bound ${bound} ms)`, undefined);
  return outcome;
}

/** {@link expectTyped} for async parsers. */
export async function expectTypedAsync(
  typed: readonly (abstract new (...args: never[]) => Error)[],
  fn: () => Promise<unknown>,
  bound = CASE_MS_BOUND,
): Promise<Outcome> {
  const start = performance.now();
  let outcome: Outcome;
  try {
    await fn();
    outcome = 'ok';
  } catch (error) {
    outcome = outcomeOf(error, typed);
  }
  const ms = performance.now() - start;
  if (ms > bound)
    throw new FuzzFailure(`case took ${ms.toFixed(0)} ms (bound ${bound} ms)`, undefined);
  return outcome;
}
