export { BenchGsm8kError } from './errors';
export type { ExactMatchOptions } from './exact-match';
export { exactMatch, GSM8K_REGEXES_TO_IGNORE } from './exact-match';
export { loadGsm8kDocs } from './load';
export type { Gsm8kDoc, Gsm8kPromptOptions } from './prompts';
export { buildGsm8kPrompts, drawGsm8kShots, gsm8kContext, gsm8kDocToText } from './prompts';
export type { RunGsm8kOptions } from './run';
export { runGsm8k } from './run';
export type { Gsm8kTaskOptions } from './task';
export {
  GSM8K_FLEXIBLE_EXTRACT,
  GSM8K_STRICT_MATCH,
  GSM8K_TASK_VERSION,
  GSM8K_UNTIL,
  gsm8kTask,
} from './task';
