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
  let bytes: Buffer = Buffer.alloc(0);
  try {
    bytes = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw cacheIoError(path, error);
    try {
      await mkdir(dirname(path), { recursive: true });
    } catch (cause) {
      throw cacheIoError(path, cause);
    }
  }
  // Complete lines end in '\n'; a torn last line (a kill mid-append) is cut off. Counted in
  // bytes, not decoded characters: an invalid UTF-8 byte decodes to a 3-byte U+FFFD, and counting
  // decoded text used to cut the file at the wrong offset, leaving half a line for the next
  // append to glue onto (found by fuzzing).
  const keptBytes = bytes.lastIndexOf(0x0a) + 1;
  const lines = bytes.subarray(0, keptBytes).toString('utf8').split('\n');
  for (let i = 0; i < lines.length - 1; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    let entry: unknown;
    try {
      entry = JSON.parse(line);
    } catch (cause) {
      throw new BenchCoreError(
        'E_CACHE_LINE',
        `request cache ${path}:${i + 1}: expected a JSON line, got ${JSON.stringify(line.slice(0, 80))}. Hint: only the last line may be truncated; delete the file to start over.`,
        { cause },
      );
    }
    const key =
      entry !== null && typeof entry === 'object' ? (entry as { key?: unknown }).key : undefined;
    if (typeof key !== 'string') {
      throw new BenchCoreError(
        'E_CACHE_LINE',
        `request cache ${path}:${i + 1}: expected an object with a string "key", got ${JSON.stringify(line.slice(0, 80))}. Hint: delete the file to start over.`,
      );
    }
    map.set(key, (entry as { value?: unknown }).value);
  }
  if (keptBytes !== bytes.length) {
    try {
      await truncate(path, keptBytes);
    } catch (cause) {
      throw cacheIoError(path, cause);
    }
  }

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

function cacheIoError(path: string, cause: unknown): BenchCoreError {
  return new BenchCoreError(
    'E_CACHE_IO',
    `request cache ${path}: expected a readable, writable file, got ${(cause as NodeJS.ErrnoException).code ?? String(cause)}. Hint: point the cache at a file in a writable folder.`,
    { cause },
  );
}
