export { BenchMmluError } from './errors';
