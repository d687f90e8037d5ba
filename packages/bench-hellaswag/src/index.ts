export { BenchHellaswagError } from './errors';
