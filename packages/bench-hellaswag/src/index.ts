export { BenchHellaswagError } from './errors';
export type { LoadHellaswagDocsOptions } from './load';
export { loadHellaswagDocs } from './load';
export type { HellaswagDoc } from './process';
export {
  preprocessHellaswagText,
  processHellaswagDoc,
  processPreprocessedHellaswagDoc,
  pythonCapitalize,
} from './process';
export type { RunHellaswagOptions } from './run';
export { runHellaswag } from './run';
export type { HellaswagTaskOptions } from './task';
export { HELLASWAG_TASK_VERSION, hellaswagTask } from './task';
