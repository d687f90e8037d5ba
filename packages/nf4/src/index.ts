export type { Nf4ErrorCode } from './errors';
export { Nf4Error } from './errors';
