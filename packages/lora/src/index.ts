export { useF16BaseProducts } from './_f16-base';
export { supportsF16MatMul } from './_webgpu-f16';
export { supportsInt8MatMul } from './_webgpu-int8';
export type { WebgpuBackendLike } from './_webgpu-kernel';
export { WGSL_WORKGROUP_ROW, wgslTreeReduce } from './_webgpu-kernel';
export { fusedWebgpuKernelsActive, useFusedWebgpuKernels } from './_webgpu-matmul';
export type {
  AdapterConfig,
  AdapterConfigOptions,
  AdapterTensor,
  LoadedAdapter,
} from './adapter';
export {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  adapterConfig,
  adapterConfigSchema,
  adapterTensors,
  applyAdapter,
  formatAdapterConfig,
  parseAdapterConfig,
} from './adapter';
export { DenseLinear } from './dense-linear';
export type { LoraErrorCode } from './errors';
export { LoraError } from './errors';
export type { F16Report } from './f16-linear';
export { F16Linear, useF16Projections } from './f16-linear';
export type { InjectLoraOptions, LoraSettings, TrainableParameters } from './inject';
export {
  countParameters,
  injectLora,
  isTargetModule,
  LLAMA_PROJECTIONS,
  loraLayers,
  loraSettingsOf,
  removeLora,
  setLoraTraining,
  trainableVariables,
} from './inject';
export type { Int8Arithmetic, Int8Options, Int8Report } from './int8-linear';
export { Int8Linear, useInt8Projections } from './int8-linear';
export type { Linear, LoraTargetModel } from './linear';
export type { LoraInit, LoraLinearOptions } from './lora-linear';
export { LoraLinear, loraScaling } from './lora-linear';
export type { MergeReport } from './merge';
export { mergeAdapter, mergeAndUnload, unmergeAdapter } from './merge';
export {
  type CodesPerWord,
  Nf4Linear,
  type Nf4LinearOptions,
  nf4LinearFromBnbTensors,
} from './nf4-linear';
export type { QuantizeProjectionsOptions, QuantizeReport, StateTensor } from './quantize';
export { bnbQuantizationConfig, quantizedStateDict, quantizeProjections } from './quantize';
