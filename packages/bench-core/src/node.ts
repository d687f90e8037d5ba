// The `@qlora/bench-core/node` entry: file-backed pieces that need node:fs. The main entry
// stays free of node:* so it runs in browsers.

export type { JsonlRequestCache } from './jsonl-cache';
export { openJsonlRequestCache } from './jsonl-cache';
