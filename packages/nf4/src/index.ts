export { fromBnbTensors, quantStateJson, toBnbTensors } from './checkpoint';
export { DYNAMIC_CODE, FP4_CODE, NF4_CODE } from './codebooks';
export type { Nf4ErrorCode } from './errors';
export { Nf4Error } from './errors';
export { bitsPerParameter, quantizationError } from './metrics';
export { packNibbles, unpackNibbles } from './nibbles';
export { blockAbsmax, dequantize4bit, quantize4bit } from './quantize';
export type * from './types';
