/**
 * Where the runner keeps model answers by request hash, so an interrupted evaluation resumes
 * without asking the model again. `get` returns `undefined` on a miss. Values are JSON.
 */
export interface RequestCache {
  get(key: string): unknown | Promise<unknown>;
  set(key: string, value: unknown): void | Promise<void>;
}

/**
 * An in-memory {@link RequestCache} (a Map), for tests and for one process.
 *
 * @example
 * ```ts
 * const cache = createMemoryCache();
 * await evaluate(lm, task, docs, { cache });
 * cache.size; // number of distinct requests answered
 * ```
 */
export function createMemoryCache(): RequestCache & { readonly size: number } {
  const map = new Map<string, unknown>();
  return {
    get: (key) => map.get(key),
    set: (key, value) => {
      map.set(key, value);
    },
    get size() {
      return map.size;
    },
  };
}
