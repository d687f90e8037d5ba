/**
 * One measured read of a safetensors file in a fresh process, so each variant's peak memory is
 * its own: `node --import tsx read-worker.ts <lazy|whole> <path>` prints one JSON line.
 */
import { readFile } from 'node:fs/promises';
import { parseSafetensors } from '@qlora/safetensors';
import { openSafetensors } from '@qlora/safetensors/node';

const [mode, path] = process.argv.slice(2);
if (path === undefined || (mode !== 'lazy' && mode !== 'whole'))
  throw new Error('usage: <lazy|whole> <path>');

// Sampled rather than taken from resourceUsage().maxRSS: Linux keeps ru_maxrss across
// fork+exec, so a child would report its (large) parent's peak.
let peakRss = 0;
let peakHeap = 0;
let peakArrayBuffers = 0;
const sample = (): void => {
  const m = process.memoryUsage();
  peakRss = Math.max(peakRss, m.rss);
  peakHeap = Math.max(peakHeap, m.heapUsed);
  peakArrayBuffers = Math.max(peakArrayBuffers, m.arrayBuffers);
};

sample();
const baselineRssMB = peakRss / 2 ** 20;
const start = performance.now();
let bytes = 0;
if (mode === 'lazy') {
  const file = await openSafetensors(path);
  for (const name of file.names) {
    const entry = await file.read(name);
    bytes += entry.data.byteLength;
    sample();
  }
  await file.close();
} else {
  const parsed = parseSafetensors(await readFile(path));
  for (const entry of Object.values(parsed.tensors)) {
    bytes += entry.data.byteLength;
    sample();
  }
}
const ms = performance.now() - start;
sample();
process.stdout.write(
  `${JSON.stringify({ ms, bytes, baselineRssMB, peakRssMB: peakRss / 2 ** 20, peakHeapMB: peakHeap / 2 ** 20, peakArrayBuffersMB: peakArrayBuffers / 2 ** 20 })}\n`,
);
