import * as tf from '@tensorflow/tfjs-core';
import { DEQUANTIZE_KERNEL } from './_cpu-kernel';

// What this file needs of tfjs-backend-webgpu's backend (not a dependency of this package).
interface WebgpuBackendLike {
  runWebGPUProgram(
    program: object,
    inputs: tf.TensorInfo[],
    outputDtype: tf.DataType,
    programUniforms: { type: 'int32' | 'float32'; data: number[] }[],
  ): tf.TensorInfo;
}

const WORKGROUP = 128;

// tfjs-backend-webgpu computes its binary ops in f32, which drops the low bits of packed words
// above 2^24. WGSL has exact u32 shifts, so one program decodes each element: nibble p (0..7) of
// word i sits in byte p >> 1, high nibble for even p (bitsandbytes' order), then
// `table[code] * absmax[block]`, one correctly rounded f32 product as in @qlora/nf4.
class Dequantize4bitProgram {
  readonly variableNames = ['words', 'absmax', 'table'];
  readonly uniforms = 'blocksize : i32,';
  readonly size = true;
  readonly workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  readonly outputShape: number[];
  readonly dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  shaderKey = 'qloraDequantize4bit';

  constructor(shape: [number, number]) {
    this.outputShape = shape;
    this.dispatchLayout = { x: [0, 1] };
    this.dispatch = [Math.ceil((shape[0] * shape[1]) / WORKGROUP), 1, 1];
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let word = bitcast<u32>(words[index / 8]);
          let p = u32(index % 8);
          let shift = (p >> 1u) * 8u + select(0u, 4u, (p & 1u) == 0u);
          let code = (word >> shift) & 15u;
          setOutputAtIndex(index, table[code] * absmax[index / uniforms.blocksize]);
        }
      }
    `;
  }
}

/** Registers the webgpu dequantization kernel once (no-op when already there). */
export function registerWebgpuKernel(): void {
  if (tf.getKernel(DEQUANTIZE_KERNEL, 'webgpu') !== undefined) return;
  tf.registerKernel({
    kernelName: DEQUANTIZE_KERNEL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { packed, absmax, table } = inputs as {
        packed: tf.TensorInfo;
        absmax: tf.TensorInfo;
        table: tf.TensorInfo;
      };
      const { shape, blocksize } = attrs as unknown as {
        shape: [number, number];
        blocksize: number;
      };
      return (backend as unknown as WebgpuBackendLike).runWebGPUProgram(
        new Dequantize4bitProgram(shape),
        [packed, absmax, table],
        'float32',
        [{ type: 'int32', data: [blocksize] }],
      );
    },
  });
}
