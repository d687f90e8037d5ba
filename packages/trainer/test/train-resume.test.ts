import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '../src/run/prng';
import { readStepLog } from '../src/run/step-log';
import { RESUME_CONFIG } from './_resume-config';

const child = join(import.meta.dirname, 'train-child.ts');
const root = mkdtempSync(join(tmpdir(), 'qlora-resume-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Runs the child; with killAt, SIGKILLs it once it reports that checkpoint. */
function runChild(
  runDir: string,
  mode: 'fresh' | 'resume',
  killAt?: number,
): Promise<{ code: number | null; signal: string | null; out: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      ['--conditions=@qlora/source', '--import', 'tsx', child, runDir, mode],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    proc.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (killAt !== undefined && out.includes(`checkpoint ${killAt}\n`)) proc.kill('SIGKILL');
    });
    proc.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    proc.on('error', reject);
    proc.on('exit', (code, signal) => {
      if (code !== 0 && signal === null) reject(new Error(`child failed (${code}): ${err}`));
      else resolve({ code, signal, out });
    });
  });
}

describe('kill and resume (child processes, cpu)', () => {
  it('a run SIGKILLed after a checkpoint and resumed ends with the uninterrupted run’s adapter bytes', async () => {
    const total = RESUME_CONFIG.maxSteps as number;
    const killAt = 1 + Rng.fromSeed(Date.now() >>> 0).nextInt(total - 2); // 1 … total − 2
    const whole = join(root, 'whole');
    const broken = join(root, 'broken');
    const [uninterrupted, killed] = await Promise.all([
      runChild(whole, 'fresh'),
      runChild(broken, 'fresh', killAt),
    ]);
    expect(uninterrupted.out).toContain('done');
    expect(killed.signal).toBe('SIGKILL');
    expect(killed.out).not.toContain('done');
    const resumed = await runChild(broken, 'resume');
    expect(resumed.out).toContain('done');
    expect(resumed.out).not.toContain('checkpoint 1\n');
    const adapter = (dir: string) =>
      readFileSync(join(dir, 'adapter', 'adapter_model.safetensors'));
    expect(Buffer.compare(adapter(broken), adapter(whole)), `killed at ${killAt}`).toBe(0);
    const final = (dir: string, file: string) =>
      readFileSync(join(dir, `checkpoint-${total}`, file));
    expect(
      Buffer.compare(final(broken, 'optimizer.safetensors'), final(whole, 'optimizer.safetensors')),
    ).toBe(0);
    const log = (dir: string) => readStepLog(join(dir, 'steps.jsonl')).records;
    expect(log(broken).map((r) => r.step)).toEqual(log(whole).map((r) => r.step));
    expect(log(broken).map((r) => r.loss)).toEqual(log(whole).map((r) => r.loss));
  }, 60_000);
});
