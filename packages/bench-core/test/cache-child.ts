// Child process for cache-kill.test.ts: appends answers to a JSONL request cache as an
// evaluation does (one append per batch of 8), printing each flushed count, until killed.
import { openJsonlRequestCache } from '../src/node';

const path = process.argv[2] as string;
const cache = await openJsonlRequestCache(path);
for (let i = cache.size; ; i++) {
  // long values make torn writes likely to land inside a line
  const writes = cache.set(`key-${i}`, {
    logprob: -(i + 1),
    isGreedy: i % 2 === 0,
    pad: 'x'.repeat(4096),
  });
  if (i % 8 === 7) {
    await writes;
    process.stdout.write(`flushed ${i + 1}\n`);
  }
}
