export { BenchGsm8kError } from './errors';
