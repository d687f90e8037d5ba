import * as tf from '@tensorflow/tfjs-core';
import { DEQUANTIZE_KERNEL } from './_cpu-kernel';

/** What the WGSL kernels need of tfjs-backend-webgpu's backend (not a dependency of this package). */
export interface WebgpuBackendLike {
  runWebGPUProgram(
    program: object,
    inputs: tf.TensorInfo[],
    outputDtype: tf.DataType,
    programUniforms: { type: 'int32' | 'float32'; data: number[] }[],
  ): tf.TensorInfo;
}

/**
 * WGSL: the row of a one-workgroup-per-row program, whatever 2-D or 3-D shape tfjs gave the
 * dispatch when the row count passed the per-dimension limit.
 */
export const WGSL_WORKGROUP_ROW =
  'i32((workgroupId.z * numWorkgroups.y + workgroupId.y) * numWorkgroups.x + workgroupId.x)';

/**
 * WGSL: folds `array` (one value per lane of a `threads`-wide workgroup, `lane` in scope) into
 * element 0 with `combine`, ending on a barrier so every lane may read the result.
 *
 * @example
 * ```ts
 * wgslTreeReduce('partial', 64, (a, b) => `max(${a}, ${b})`);
 * ```
 */
export function wgslTreeReduce(
  array: string,
  threads: number,
  combine: (a: string, b: string) => string,
): string {
  return `
        workgroupBarrier();
        for (var stride = ${threads / 2}; stride > 0; stride >>= 1) {
          if (lane < stride) {
            ${array}[lane] = ${combine(`${array}[lane]`, `${array}[lane + stride]`)};
          }
          workgroupBarrier();
        }`;
}

const WORKGROUP = 128;

// tfjs-backend-webgpu computes its binary ops in f32, which drops the low bits of packed words
// above 2^24. WGSL has exact u32 shifts, so one program decodes the codes: nibble p (0..7) of
// word i sits in byte p >> 1, high nibble for even p (bitsandbytes' order), then
// `table[code] * absmax[block]`, one correctly rounded f32 product as in @qlora/nf4. When the
// element count and the blocksize are multiples of 8, one thread decodes a whole word and writes
// two vec4 (a copy-like access pattern: one 4-byte read per 32 bytes written); otherwise one
// thread per element.
class Dequantize4bitProgram {
  readonly variableNames = ['words', 'absmax', 'table'];
  readonly variableComponents = [1, 1, 1];
  readonly uniforms = 'blocksize : i32,';
  readonly size = true;
  readonly workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  readonly outputShape: number[];
  readonly outputComponent: number;
  readonly dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  shaderKey: string;
  private readonly perWord: boolean;

  constructor(shape: [number, number], blocksize: number) {
    const count = shape[0] * shape[1];
    this.perWord = count % 8 === 0 && blocksize % 8 === 0;
    this.outputComponent = this.perWord ? 4 : 1;
    this.outputShape = shape;
    this.dispatchLayout = { x: [0, 1] };
    this.dispatch = [Math.ceil(count / (this.perWord ? 8 : 1) / WORKGROUP), 1, 1];
    this.shaderKey = `qloraDequantize4bit_${this.perWord ? 'word' : 'element'}`;
  }

  getUserCode(): string {
    if (this.perWord) {
      // uniforms.size counts vec4 outputs: two per word.
      return `
      fn main(index : i32) {
        if (index * 2 < uniforms.size) {
          let word = bitcast<u32>(words[index]);
          let scale = absmax[(index * 8) / uniforms.blocksize];
          var out : array<f32, 8>;
          for (var p = 0u; p < 8u; p++) {
            let shift = (p >> 1u) * 8u + select(0u, 4u, (p & 1u) == 0u);
            out[p] = table[(word >> shift) & 15u] * scale;
          }
          result[index * 2] = vec4<f32>(out[0], out[1], out[2], out[3]);
          result[index * 2 + 1] = vec4<f32>(out[4], out[5], out[6], out[7]);
        }
      }
    `;
    }
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
        new Dequantize4bitProgram(shape, blocksize),
        [packed, absmax, table],
        'float32',
        [{ type: 'int32', data: [blocksize] }],
      );
    },
  });
}
