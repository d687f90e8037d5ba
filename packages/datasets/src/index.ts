export { DatasetsError } from './errors';
export type { Tokenizer } from './tokenizer';
