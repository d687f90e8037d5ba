/**
 * Writes test-fixtures/nf4/ts-written.safetensors: 4-bit weights quantized by @qlora/nf4 and
 * serialised with toBnbTensors, plus their sources and our dequantization, for
 * `tools/reference/nf4_bnb.py verify` to load with bitsandbytes (QuantState.from_dict).
 *
 *   node --conditions=@qlora/source --import tsx tools/reference/nf4_write_checkpoint.ts
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
// The root package does not depend on workspace packages, so tools import them by path.
import { numberToBfloat16, numberToFloat16 } from '../../packages/nf4/src/_float';
import {
  dequantize4bit,
  type FloatDtype,
  type QuantType,
  quantize4bit,
  type TensorRecord,
  toBnbTensors,
} from '../../packages/nf4/src/index';

const root = resolve(import.meta.dirname, '../..');

/** Seeded standard normals (mulberry32 + Box-Muller), rounded to float32. */
function gaussian(n: number, seed: number, scale: number): Float32Array {
  let state = seed >>> 0;
  const uniform = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = scale * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  }
  return out;
}

function toHalf(values: Float32Array, dtype: 'bfloat16' | 'float16'): Uint16Array {
  const convert = dtype === 'bfloat16' ? numberToBfloat16 : numberToFloat16;
  return Uint16Array.from(values, (v) => convert(v));
}

interface Layer {
  shape: [number, number];
  dtype: FloatDtype;
  quantType: QuantType;
  doubleQuant: boolean;
  blocksize: number;
  seed: number;
}

const layers: Record<string, Layer> = {
  'model.layers.0.self_attn.q_proj': {
    shape: [64, 96],
    dtype: 'bfloat16',
    quantType: 'nf4',
    doubleQuant: true,
    blocksize: 64,
    seed: 1,
  },
  'model.layers.0.self_attn.v_proj': {
    shape: [33, 65],
    dtype: 'float32',
    quantType: 'fp4',
    doubleQuant: true,
    blocksize: 128,
    seed: 2,
  },
  'model.layers.0.mlp.up_proj': {
    shape: [40, 64],
    dtype: 'float16',
    quantType: 'nf4',
    doubleQuant: false,
    blocksize: 256,
    seed: 3,
  },
  'model.layers.0.mlp.down_proj': {
    shape: [128, 160],
    dtype: 'float32',
    quantType: 'nf4',
    doubleQuant: true,
    blocksize: 64,
    seed: 4,
  },
};

const tensors: Record<string, TensorRecord> = {};
const meta: Record<
  string,
  { shape: number[]; blocksize: number; doubleQuant: boolean; quantType: QuantType }
> = {};
for (const [name, layer] of Object.entries(layers)) {
  const values = gaussian(layer.shape[0] * layer.shape[1], layer.seed, 0.02);
  values[7] = 0.4; // an outlier
  const source = layer.dtype === 'float32' ? values : toHalf(values, layer.dtype);
  const q = quantize4bit(source, {
    shape: layer.shape,
    dtype: layer.dtype,
    quantType: layer.quantType,
    doubleQuant: layer.doubleQuant,
    blocksize: layer.blocksize,
  });
  Object.assign(tensors, toBnbTensors(q, name));
  const sourceDtype =
    layer.dtype === 'float32' ? 'F32' : layer.dtype === 'bfloat16' ? 'BF16' : 'F16';
  tensors[`source.${name}`] = { dtype: sourceDtype, shape: layer.shape, data: source };
  tensors[`ts_dequant.${name}`] = {
    dtype: sourceDtype,
    shape: layer.shape,
    data: dequantize4bit(q, { dtype: layer.dtype }),
  };
  meta[name] = {
    shape: layer.shape,
    blocksize: layer.blocksize,
    doubleQuant: layer.doubleQuant,
    quantType: layer.quantType,
  };
}

/** A plain safetensors writer (header JSON padded to 8 bytes, then the raw little-endian data). */
function serialize(
  records: Record<string, TensorRecord>,
  metadata: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  const chunks: Uint8Array[] = [];
  for (const [key, r] of Object.entries(records)) {
    const bytes = new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength);
    header[key] = { dtype: r.dtype, shape: r.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

const path = join(root, 'test-fixtures', 'nf4', 'ts-written.safetensors');
writeFileSync(
  path,
  serialize(tensors, {
    layers: JSON.stringify(meta),
    made_by: 'tools/reference/nf4_write_checkpoint.ts',
  }),
);
console.log(`wrote ${path}`);
