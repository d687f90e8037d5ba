export { BenchMmluError } from './errors';
export { loadMmluCsvDocs, loadMmluParquetDocs } from './load';
export type { MmluDoc, MmluPromptOptions } from './prompt';
export { buildMmluPrompt, MMLU_LETTERS, mmluDocToText } from './prompt';
export type { MmluOutput, RunMmluOptions } from './run';
export { runMmlu } from './run';
export { MMLU_CS_SUBJECTS, mmluDescription } from './subjects';
export type { MmluTaskOptions } from './task';
export { MMLU_TASK_VERSION, mmluTask } from './task';
