export { TrainerError } from './errors';
