// Issue 11 fuzzing: hostile safetensors headers, bodies and sharded indexes end only in
// SafetensorsError, quickly, without allocating what the file claims. CI runs the base counts;
// QLORA_FUZZ_RUNS multiplies them (tools/fuzz/run.ts runs ≥ 10,000 per parser).

import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePath } from '@qlora/test-utils';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  expectTyped,
  expectTypedAsync,
  FUZZ_SEED,
  fuzzRuns,
  mutatedBytesArb,
  mutatedJsonArb,
} from '../../../tools/fuzz/mutate';
import { toFloat32 } from './convert';
import { SafetensorsError } from './errors';
import { openSafetensors, openSafetensorsDir } from './fs';
import { parseSafetensors } from './parse';

const TYPED = [SafetensorsError] as const;
const encoder = new TextEncoder();
const seedFiles = readdirSync(fixturePath('safetensors'))
  .filter((f) => f.endsWith('.safetensors'))
  .map((f) => new Uint8Array(readFileSync(fixturePath('safetensors', f))));

function headerOf(file: Uint8Array): unknown {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  return JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n)));
}

function withHeader(header: string, body: Uint8Array): Uint8Array {
  const json = encoder.encode(header);
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

function bodyOf(file: Uint8Array): Uint8Array {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  return file.subarray(8 + n);
}

/** Parse, then decode every tensor body to float32 (the path a model load takes). */
function parseAndDecode(bytes: Uint8Array): void {
  const { tensors } = parseSafetensors(bytes);
  for (const entry of Object.values(tensors)) {
    expect(entry.data.byteOffset + entry.data.byteLength).toBeLessThanOrEqual(
      entry.data.buffer.byteLength,
    );
    try {
      toFloat32(entry);
    } catch (error) {
      // complex/4-bit dtypes have no float32 view: that refusal is typed too
      if (!(error instanceof SafetensorsError) || error.code !== 'UNSUPPORTED_DTYPE') throw error;
    }
  }
}

const temp = mkdtempSync(join(tmpdir(), 'safetensors-fuzz-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

describe('fuzz: parseSafetensors (in memory)', () => {
  it(`mutated files (bytes anywhere, header and body), ${fuzzRuns(1000)} cases`, () => {
    fc.assert(
      fc.property(mutatedBytesArb(seedFiles), (bytes) => {
        expectTyped(TYPED, () => parseAndDecode(bytes));
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(1000) },
    );
  });

  it(`structurally edited headers (hostile sizes, types, keys), ${fuzzRuns(1000)} cases`, () => {
    const seeds = seedFiles.map((f) => ({ header: headerOf(f), body: bodyOf(f) }));
    fc.assert(
      fc.property(
        fc.constantFrom(...seeds.keys()),
        mutatedJsonArb(seeds.map((s) => s.header)),
        (i, header) => {
          const body = seeds[i]?.body ?? new Uint8Array();
          expectTyped(TYPED, () => parseAndDecode(withHeader(JSON.stringify(header) ?? '', body)));
        },
      ),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(1000) },
    );
  });
});

describe('fuzz: openSafetensors and openSafetensorsDir (files on disk)', () => {
  it(`mutated files read tensor by tensor, ${fuzzRuns(200)} cases`, async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(mutatedBytesArb(seedFiles), async (bytes) => {
        const path = join(temp, `case-${n++}.safetensors`);
        writeFileSync(path, bytes);
        await expectTypedAsync(TYPED, async () => {
          const file = await openSafetensors(path);
          try {
            for (const name of file.names) await file.read(name);
          } finally {
            await file.close();
          }
        });
        rmSync(path);
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(200) },
    );
  });

  it(`mutated sharded indexes (weight_map paths, types), ${fuzzRuns(200)} cases`, async () => {
    const dir = fixturePath('safetensors', 'sharded');
    const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
    const shards = readdirSync(dir).filter((f) => f.endsWith('.safetensors'));
    const caseDir = join(temp, 'sharded');
    rmSync(caseDir, { recursive: true, force: true });
    const { mkdirSync, copyFileSync } = await import('node:fs');
    mkdirSync(caseDir);
    for (const shard of shards) copyFileSync(join(dir, shard), join(caseDir, shard));
    await fc.assert(
      fc.asyncProperty(mutatedJsonArb([index]), async (edited) => {
        writeFileSync(join(caseDir, 'model.safetensors.index.json'), JSON.stringify(edited) ?? '');
        await expectTypedAsync(TYPED, async () => {
          const reader = await openSafetensorsDir(caseDir);
          await reader.close();
        });
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(200) },
    );
  });

  it('refuses index shard paths that leave the directory (.., absolute, backslash)', async () => {
    const caseDir = join(temp, 'escape');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(caseDir, { recursive: true });
    for (const file of [
      '../outside.safetensors',
      '/etc/passwd',
      'a/../../b.safetensors',
      '..\\x',
    ]) {
      writeFileSync(
        join(caseDir, 'model.safetensors.index.json'),
        JSON.stringify({ weight_map: { w: file } }),
      );
      await expect(openSafetensorsDir(caseDir)).rejects.toMatchObject({ code: 'INVALID_INDEX' });
    }
  });
});

describe('sizes declared in the file allocate nothing (2^40 and beyond fail fast)', () => {
  const cases: [string, string, Uint8Array][] = [
    [
      'header length 2^40',
      'HEADER_TOO_LARGE',
      (() => {
        const b = new Uint8Array(64);
        new DataView(b.buffer).setBigUint64(0, 1n << 40n, true);
        return b;
      })(),
    ],
    [
      'a 2^40-element F32 tensor in a 100-byte file',
      'INCOMPLETE_BUFFER',
      withHeader(
        '{"w":{"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,4398046511104]}}',
        new Uint8Array(16),
      ),
    ],
    [
      'a shape whose product overflows u64',
      'SIZE_MISMATCH',
      withHeader(
        '{"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,16]}}',
        new Uint8Array(16),
      ),
    ],
    [
      'offsets beyond 2^53',
      'INVALID_TENSOR_INFO',
      withHeader(
        '{"w":{"dtype":"U8","shape":[16],"data_offsets":[0,9007199254740993]}}',
        new Uint8Array(16),
      ),
    ],
  ];
  it.each(cases)('%s → %s in under 50 ms, in memory and from disk', async (_, code, bytes) => {
    const start = performance.now();
    expect(() => parseSafetensors(bytes)).toThrow(expect.objectContaining({ code }));
    const path = join(temp, 'huge.safetensors');
    writeFileSync(path, bytes);
    await expect(openSafetensors(path)).rejects.toMatchObject({ code });
    expect(performance.now() - start).toBeLessThan(50);
  });
});
