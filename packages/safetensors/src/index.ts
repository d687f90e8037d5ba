export { SafetensorsError } from './errors';
