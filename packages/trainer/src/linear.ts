// One definition of the projection interface and of the dense projection, in @qlora/lora (LoRA
// and NF4 layers implement the interface, and a merge leaves a DenseLinear behind); re-exported
// here because every LlamaModel projection is one.
export type { Linear } from '@qlora/lora';
export { DenseLinear } from '@qlora/lora';
