import { readFileSync } from 'node:fs';
import { fixturePath } from '@qlora/test-utils';

/** One array of test-fixtures/trainer/optim/optim.bin, as indexed by optim.json. */
interface ArrayIndex {
  offset: number;
  dtype: 'F32' | 'U8';
  count: number;
  shape: number[];
}

export interface AdamWCase {
  name: string;
  lr: number;
  weight_decay: number;
  betas: [number, number];
  eps: number;
  amsgrad: boolean;
}

export interface Adamw8bitCase {
  name: string;
  lr: number;
  weight_decay: number;
  steps: number;
  record: number[];
}

interface OptimFixture {
  arrays: Record<string, ArrayIndex>;
  cases: {
    adamw: AdamWCase[];
    clip: { max_norm: number; total_norm: number; tag: string }[];
    adamw8bit: Adamw8bitCase[];
  };
}

export interface ScheduleCase {
  name: 'constant' | 'constant_with_warmup' | 'linear' | 'cosine';
  lr: number;
  warmup: number;
  total: number;
  /** `repr()` of each Python float: the lr of optimizer step i (0-based). */
  lrs: string[];
}

let cache: { index: OptimFixture; bytes: Uint8Array } | undefined;

/** The fixture written by tools/reference/adamw_ref.py (torch, bitsandbytes). */
export function optimFixture(): OptimFixture {
  cache ??= {
    index: JSON.parse(readFileSync(fixturePath('trainer', 'optim/optim.json'), 'utf8')),
    bytes: new Uint8Array(readFileSync(fixturePath('trainer', 'optim/optim.bin'))),
  };
  return cache.index;
}

/** A float32 array of the fixture. */
export function f32(name: string): Float32Array {
  const entry = arrayEntry(name, 'F32');
  const { bytes } = cache as { bytes: Uint8Array };
  return new Float32Array(
    bytes.buffer.slice(
      bytes.byteOffset + entry.offset,
      bytes.byteOffset + entry.offset + entry.count * 4,
    ),
  );
}

/** A uint8 array of the fixture. */
export function u8(name: string): Uint8Array {
  const entry = arrayEntry(name, 'U8');
  const { bytes } = cache as { bytes: Uint8Array };
  return bytes.slice(entry.offset, entry.offset + entry.count);
}

/** The shape of a fixture array. */
export function shapeOf(name: string): number[] {
  return arrayEntry(name).shape;
}

function arrayEntry(name: string, dtype?: 'F32' | 'U8'): ArrayIndex {
  const entry = optimFixture().arrays[name];
  if (entry === undefined) throw new Error(`fixture has no array ${name}`);
  if (dtype !== undefined && entry.dtype !== dtype) throw new Error(`${name} is ${entry.dtype}`);
  return entry;
}

/** transformers' schedules (tools/reference/adamw_ref.py). */
export function scheduleFixture(): ScheduleCase[] {
  return JSON.parse(readFileSync(fixturePath('trainer', 'optim/schedules.json'), 'utf8'));
}
