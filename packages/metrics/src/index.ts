export { MetricsError } from './errors';
