export {
  bf16ToF32,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  toFloat32,
} from './convert';
export type { DtypeArray, SafetensorsDtype, TensorEntry, TensorInfo, TensorInput } from './dtypes';
export { SAFETENSORS_DTYPES } from './dtypes';
export type { SafetensorsErrorCode } from './errors';
export { SafetensorsError } from './errors';
export type { ParsedSafetensors } from './parse';
export { parseSafetensors } from './parse';
export type { MetadataToWrite, TensorsToWrite } from './serialize';
export { serializeSafetensors } from './serialize';
