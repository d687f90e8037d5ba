import { dequantize4bit, FP4_CODE, NF4_CODE, type QuantType } from '@qlora/nf4';
import * as tf from '@tensorflow/tfjs-core';

/** Name of the kernel that dequantizes packed 4-bit words on the cpu backend. */
export const DEQUANTIZE_KERNEL = 'QloraDequantize4bit';

interface CpuBackendLike {
  data: { get(dataId: object): { values: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}

// The cpu backend's broadcasting floorDiv/mod/gather cost ~1 µs per element; this kernel runs
// @qlora/nf4's dequantize4bit on the backend's own arrays instead (same function, so the output
// is the reference's bit for bit), about 100× faster.
function registerOnce(): void {
  if (tf.getKernel(DEQUANTIZE_KERNEL, 'cpu') !== undefined) return;
  tf.registerKernel({
    kernelName: DEQUANTIZE_KERNEL,
    backendName: 'cpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const cpu = backend as unknown as CpuBackendLike;
      const { packed, absmax } = inputs as { packed: tf.TensorInfo; absmax: tf.TensorInfo };
      const { shape, blocksize, quantType } = attrs as unknown as {
        shape: [number, number];
        blocksize: number;
        quantType: QuantType;
      };
      const words = cpu.data.get(packed.dataId).values as Int32Array;
      const scales = cpu.data.get(absmax.dataId).values as Float32Array;
      const n = shape[0] * shape[1];
      const out = dequantize4bit({
        packed: new Uint8Array(words.buffer, words.byteOffset, Math.ceil(n / 2)),
        state: {
          quantType,
          blocksize,
          shape,
          dtype: 'float32',
          code: quantType === 'nf4' ? NF4_CODE : FP4_CODE,
          absmax: scales,
        },
      });
      return cpu.makeTensorInfo(shape, 'float32', out);
    },
  });
}

/** Dequantizes with the cpu kernel when the cpu backend is active, else returns undefined. */
export function dequantizeOnCpu(
  packed: tf.Tensor,
  absmax: tf.Tensor,
  shape: [number, number],
  blocksize: number,
  quantType: QuantType,
): tf.Tensor2D | undefined {
  if (tf.getBackend() !== 'cpu') return undefined;
  registerOnce();
  return tf.engine().runKernel(DEQUANTIZE_KERNEL, { packed, absmax }, {
    shape,
    blocksize,
    quantType,
  } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}
