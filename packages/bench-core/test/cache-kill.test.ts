// Crash safety of the evaluation cache: an evaluation SIGKILLed mid-append loses at most the
// torn last line; reopening keeps every complete answer and later appends stay readable.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openJsonlRequestCache } from '../src/node';

const child = join(import.meta.dirname, 'cache-child.ts');
const root = mkdtempSync(join(tmpdir(), 'qlora-cache-kill-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Runs the child on `path` and SIGKILLs it `delayMs` after it reports `after` flushed answers. */
function killChildAfter(path: string, after: number, delayMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      ['--conditions=@qlora/source', '--import', 'tsx', child, path],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let flushed = 0;
    let err = '';
    proc.stdout.on('data', (chunk: Buffer) => {
      for (const m of chunk.toString().matchAll(/flushed (\d+)/g)) flushed = Number(m[1]);
      if (flushed >= after && !proc.killed) setTimeout(() => proc.kill('SIGKILL'), delayMs);
    });
    proc.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    proc.on('error', reject);
    proc.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`child ended without the kill (${code}): ${err}`));
      else resolve(flushed);
    });
  });
}

describe('kill safety of the JSONL request cache (real SIGKILL)', () => {
  it('every flushed answer survives; the torn tail is cut; appends after resume stay readable', async () => {
    const path = join(root, 'cache.jsonl');
    for (const [after, delayMs] of [
      [16, 0],
      [64, 3],
      [128, 7],
    ] as const) {
      const flushed = await killChildAfter(path, after, delayMs);
      const cache = await openJsonlRequestCache(path);
      expect(cache.size).toBeGreaterThanOrEqual(flushed);
      for (let i = 0; i < cache.size; i++) {
        expect(cache.get(`key-${i}`)).toMatchObject({ logprob: -(i + 1), isGreedy: i % 2 === 0 });
      }
    }
  }, 60_000);
});
