import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@qlora/test-utils';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { initBackend } from '../backend';
import { TrainerError } from '../errors';
import { AdamW } from '../optim/adamw';
import { AdamW8bit } from '../optim/adamw-8bit';
import type { Optimizer } from '../optim/types';
import {
  type CheckpointData,
  findLatestCheckpoint,
  loadCheckpoint,
  pruneCheckpoints,
  verifyCheckpoint,
  writeCheckpoint,
} from './checkpoint';
import { Rng } from './prng';

let runDir: string;
beforeEach(async () => {
  runDir = await mkdtemp(join(tmpdir(), 'qlora-run-'));
  await initBackend('cpu');
});
afterEach(async () => {
  await rm(runDir, { recursive: true, force: true });
});

function adapterOf(step: number) {
  return {
    'base_model.model.layers.0.q_proj.lora_A.weight': {
      dtype: 'F32' as const,
      shape: [2, 3],
      data: new Float32Array([1, 2, 3, 4, 5, step]),
    },
  };
}

function dataAt(step: number, optimizer?: Optimizer): CheckpointData {
  return {
    step,
    adapter: adapterOf(step),
    optimizer: optimizer?.stateDict() ?? { kind: 'adamw', steps: {}, tensors: {} },
    rng: { data: Rng.fromSeed(step).state() },
    dataPosition: { epoch: 0, index: step * 8 },
    config: { lr: 2e-4, r: 16, seed: 3407 },
  };
}

const crashAt =
  (at: string) =>
  (phase: string): void => {
    if (phase === at) throw new Error(`simulated crash after ${phase}`);
  };

describe('writeCheckpoint / loadCheckpoint', () => {
  it('round-trips adapter, 8-bit optimizer state, RNG, data position and config; resume is bit-identical', async () => {
    const w = tf.variable(tf.randomNormal([80, 64], 0, 1, 'float32', 1));
    const b = tf.variable(tf.randomNormal([10], 0, 1, 'float32', 2));
    const grads = (s: number) => ({
      w: tf.randomNormal([80, 64], 0, 1, 'float32', 10 + s),
      b: tf.randomNormal([10], 0, 1, 'float32', 20 + s),
    });
    const opt = new AdamW8bit({ w, b }, { lr: 2e-4, weightDecay: 0.001 });
    opt.step(grads(1));
    const rng = Rng.fromSeed(3407);
    rng.permutation(10);
    const path = await writeCheckpoint(runDir, {
      ...dataAt(1, opt),
      adapter: { w: { dtype: 'F32', shape: [80, 64], data: w.dataSync() as Float32Array } },
      rng: { data: rng.state() },
    });
    expect(path).toBe(join(runDir, 'checkpoint-1'));
    expect(readFileSync(join(runDir, 'latest'), 'utf8')).toBe('checkpoint-1\n');

    const loaded = await loadCheckpoint(path);
    expect(loaded.step).toBe(1);
    expect(loaded.dataPosition).toEqual({ epoch: 0, index: 8 });
    expect(loaded.config).toEqual({ lr: 2e-4, r: 16, seed: 3407 });
    expect(loaded.adapter.w?.data).toEqual(w.dataSync());
    expect(loaded.optimizer).toEqual(opt.stateDict());
    expect(loaded.optimizer.tensors['w.state1']?.dtype).toBe('U8');
    expect(Rng.fromState(loaded.rng.data as number[]).nextUint32()).toBe(rng.nextUint32());

    // continue straight vs from the files
    opt.step(grads(2));
    const straight = w.dataSync().slice();
    w.assign(tf.tensor(loaded.adapter.w?.data as Float32Array, [80, 64]));
    const resumed = new AdamW8bit({ w, b }, { lr: 2e-4, weightDecay: 0.001 });
    resumed.loadStateDict(loaded.optimizer);
    resumed.step({ w: grads(2).w });
    expect(w.dataSync()).toEqual(straight);
  });

  it('writes AdamW state and an empty optimizer state', async () => {
    const w = tf.variable(tf.ones([3]));
    const opt = new AdamW({ w });
    await writeCheckpoint(runDir, dataAt(0));
    opt.step({ w: tf.ones([3]) });
    await writeCheckpoint(runDir, dataAt(1, opt));
    const loaded = await loadCheckpoint(join(runDir, 'checkpoint-1'));
    expect(loaded.optimizer).toEqual(opt.stateDict());
    expect((await loadCheckpoint(join(runDir, 'checkpoint-0'))).optimizer.steps).toEqual({});
  });
});

describe('kill safety', () => {
  for (const phase of ['files-written', 'manifest-written']) {
    it(`a crash after "${phase}" (before the rename) leaves the previous checkpoint intact and loadable`, async () => {
      await writeCheckpoint(runDir, dataAt(1));
      await expect(writeCheckpoint(runDir, dataAt(2), { onPhase: crashAt(phase) })).rejects.toThrow(
        /simulated crash/,
      );
      expect(readdirSync(runDir).sort()).toEqual([
        'checkpoint-1',
        `checkpoint-2.tmp-${process.pid}`,
        'latest',
      ]);
      const found = await findLatestCheckpoint(runDir);
      expect(found?.step).toBe(1);
      expect(readFileSync(join(runDir, 'latest'), 'utf8')).toBe('checkpoint-1\n');
      const loaded = await loadCheckpoint(found?.path as string);
      expect(loaded.adapter['base_model.model.layers.0.q_proj.lora_A.weight']?.data).toEqual(
        adapterOf(1)['base_model.model.layers.0.q_proj.lora_A.weight'].data,
      );
      // the next write clears the leftover
      await writeCheckpoint(runDir, dataAt(2));
      expect(readdirSync(runDir).sort()).toEqual(['checkpoint-1', 'checkpoint-2', 'latest']);
      expect((await findLatestCheckpoint(runDir))?.step).toBe(2);
    });
  }

  it('a crash after the rename but before the pointer: the new checkpoint is complete and found', async () => {
    await writeCheckpoint(runDir, dataAt(1));
    await expect(
      writeCheckpoint(runDir, dataAt(2), { onPhase: crashAt('renamed') }),
    ).rejects.toThrow();
    expect(readFileSync(join(runDir, 'latest'), 'utf8')).toBe('checkpoint-1\n');
    expect((await findLatestCheckpoint(runDir))?.step).toBe(2);
  });

  it('a truncated manifest rejects the checkpoint and the previous one is used', async () => {
    await writeCheckpoint(runDir, dataAt(1));
    await writeCheckpoint(runDir, dataAt(2));
    const manifest = join(runDir, 'checkpoint-2', 'manifest.json');
    const text = readFileSync(manifest, 'utf8');
    writeFileSync(manifest, text.slice(0, Math.floor(text.length / 2)));
    const rejected: string[] = [];
    const found = await findLatestCheckpoint(runDir, {
      onRejected: (p, reason) => rejected.push(`${p}: ${reason}`),
    });
    expect(found?.step).toBe(1);
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).toMatch(/checkpoint-2.*manifest\.json to be JSON/);
    await expect(loadCheckpoint(join(runDir, 'checkpoint-2'))).rejects.toThrow(TrainerError);
  });

  it('a flipped byte or a missing file is caught by the sha256 / size check', async () => {
    await writeCheckpoint(runDir, dataAt(1));
    await writeCheckpoint(runDir, dataAt(2));
    await writeCheckpoint(runDir, dataAt(3));
    const adapter = join(runDir, 'checkpoint-3', 'adapter_model.safetensors');
    const bytes = readFileSync(adapter);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
    writeFileSync(adapter, bytes);
    await expect(verifyCheckpoint(join(runDir, 'checkpoint-3'))).rejects.toThrow(
      /adapter_model\.safetensors of/,
    );
    await rm(join(runDir, 'checkpoint-2', 'rng_state.json'));
    expect((await findLatestCheckpoint(runDir))?.step).toBe(1);
    expect(await findLatestCheckpoint(join(runDir, 'nothing-here'))).toBeUndefined();
  });
});

/** Runs the writer loop in a child process and SIGKILLs it after `writes` checkpoints + `delayMs`. */
async function killWriterAfter(dir: string, writes: number, delayMs: number): Promise<number> {
  const child = spawn(
    process.execPath,
    [
      '--conditions=@qlora/source',
      '--import',
      'tsx',
      join(repoRoot, 'packages/trainer/test/checkpoint-writer-child.ts'),
      dir,
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let reported = 0;
  await new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', () => resolve());
    child.stdout.on('data', (chunk: Buffer) => {
      reported = Math.max(
        reported,
        ...[...chunk.toString().matchAll(/wrote (\d+)/g)].map((m) => Number(m[1])),
      );
      if (reported >= writes) setTimeout(() => child.kill('SIGKILL'), delayMs);
    });
  });
  return reported;
}

describe('kill safety with a real SIGKILL', () => {
  it('whenever the writer dies, the newest complete checkpoint loads and holds its own step', async () => {
    for (const [writes, delayMs] of [
      [2, 0],
      [3, 7],
      [4, 23],
    ] as const) {
      const dir = join(runDir, `kill-${writes}`);
      const reported = await killWriterAfter(dir, writes, delayMs);
      const found = await findLatestCheckpoint(dir);
      expect(found).toBeDefined();
      // the kill may land after a rename and before the "wrote" line
      expect(found?.step).toBeGreaterThanOrEqual(reported);
      const loaded = await loadCheckpoint(found?.path as string);
      expect(loaded.adapter.w?.data.every((x) => x === found?.step)).toBe(true);
      expect(loaded.optimizer.steps).toEqual({ w: found?.step });
    }
  }, 20_000);
});

describe('retention', () => {
  it('keeps the newest K complete checkpoints', async () => {
    for (let s = 1; s <= 4; s++) await writeCheckpoint(runDir, dataAt(s * 10), { keepLast: 2 });
    expect(readdirSync(runDir).sort()).toEqual(['checkpoint-30', 'checkpoint-40', 'latest']);
    // an incomplete newest directory does not count toward K and is removed
    await writeCheckpoint(runDir, dataAt(50));
    await rm(join(runDir, 'checkpoint-50', 'manifest.json'));
    const removed = await pruneCheckpoints(runDir, 1);
    expect(removed.map((p) => p.split(/[\\/]/).pop()).sort()).toEqual([
      'checkpoint-30',
      'checkpoint-50',
    ]);
    expect(existsSync(join(runDir, 'checkpoint-40'))).toBe(true);
  });

  it('re-writing a step replaces it; bad arguments throw', async () => {
    await writeCheckpoint(runDir, dataAt(5));
    await writeCheckpoint(runDir, { ...dataAt(5), config: { changed: true } });
    expect((await loadCheckpoint(join(runDir, 'checkpoint-5'))).config).toEqual({ changed: true });
    expect(readdirSync(runDir).sort()).toEqual(['checkpoint-5', 'latest']);
    await expect(writeCheckpoint(runDir, dataAt(-1))).rejects.toThrow(/step/);
    await expect(writeCheckpoint(runDir, dataAt(1), { keepLast: 0 })).rejects.toThrow(/keepLast/);
  });
});
