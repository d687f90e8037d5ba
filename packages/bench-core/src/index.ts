export { BenchCoreError } from './errors';
export type * from './types';
