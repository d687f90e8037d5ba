import { appendFile, mkdir, readFile, truncate } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { RequestCache } from './cache';
import { BenchCoreError } from './errors';

/** A {@link RequestCache} backed by an append-only JSONL file (`{"key":…,"value":…}` per line). */
export interface JsonlRequestCache extends RequestCache {
  readonly path: string;
  /** Entries loaded or added so far. */
  readonly size: number;
  /** Waits for pending appends. */
  flush(): Promise<void>;
}

/**
 * Opens (or creates) a JSONL request cache. Every answer is appended as one line as soon as the
 * model returns it, so a killed run loses at most the batch in flight. A truncated last line (the
 * process died mid-write) is cut off on open; a broken line elsewhere is an error.
 *
 * @example
 * ```ts
 * import { openJsonlRequestCache } from '@qlora/bench-core/node';
 * const cache = await openJsonlRequestCache('runs/base/cache/hellaswag.jsonl');
 * await evaluate(lm, task, docs, { cache }); // rerun after a crash: only missing requests run
 * ```
 */
export async function openJsonlRequestCache(path: string): Promise<JsonlRequestCache> {
  const map = new Map<string, unknown>();
  let text = '';
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await mkdir(dirname(path), { recursive: true });
  }
  const lines = text.split('\n');
  const complete = text.endsWith('\n') || text === '';
  let keptBytes = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const isLast = i === lines.length - 1;
    if (isLast && !complete) break;
    if (line === '') {
      keptBytes += isLast ? 0 : 1;
      continue;
    }
    let entry: { key?: unknown; value?: unknown };
    try {
      entry = JSON.parse(line) as { key?: unknown; value?: unknown };
    } catch (cause) {
      throw new BenchCoreError(
        'E_CACHE_LINE',
        `request cache ${path}:${i + 1}: expected a JSON line, got ${JSON.stringify(line.slice(0, 80))}. Hint: only the last line may be truncated; delete the file to start over.`,
        { cause },
      );
    }
    if (typeof entry.key !== 'string') {
      throw new BenchCoreError(
        'E_CACHE_LINE',
        `request cache ${path}:${i + 1}: expected a string "key", got ${typeof entry.key}`,
      );
    }
    map.set(entry.key, entry.value);
    keptBytes += Buffer.byteLength(line, 'utf8') + 1;
  }
  if (!complete) await truncate(path, keptBytes);

  // Lines set while a write is in flight go out together in the next append (one syscall per
  // model batch rather than per answer).
  let buffer: string[] = [];
  let pending: Promise<void> = Promise.resolve();
  const flushBuffer = (): Promise<void> => {
    pending = pending.then(() => {
      if (buffer.length === 0) return;
      const chunk = buffer.join('');
      buffer = [];
      return appendFile(path, chunk, 'utf8');
    });
    return pending;
  };
  return {
    path,
    get size() {
      return map.size;
    },
    get: (key) => map.get(key),
    set(key, value) {
      map.set(key, value);
      buffer.push(`${JSON.stringify({ key, value })}\n`);
      return flushBuffer();
    },
    flush: flushBuffer,
  };
}
