import { describe, expect, it } from 'vitest';
import { f32, u8 } from './_reference';
import {
  dequantizeBlockwise,
  quantizeBlockwise,
  signedDynamicMap,
  unsignedDynamicMap,
} from './dynamic-map';

describe('dynamic maps', () => {
  it('equal bitsandbytes create_dynamic_map(signed=true/false) bit for bit', () => {
    expect(signedDynamicMap()).toEqual(f32('qmap/signed'));
    expect(unsignedDynamicMap()).toEqual(f32('qmap/unsigned'));
  });

  it('match the spec table layout: sorted, 0 and +1 present, asymmetric extremes', () => {
    const s = signedDynamicMap();
    for (let i = 1; i < 256; i++) expect(s[i] as number).toBeGreaterThan(s[i - 1] as number);
    expect([s[0], s[127], s[128], s[255]]).toEqual([
      Math.fround(-0.99296874),
      0,
      Math.fround(5.5000004e-7),
      1,
    ]);
    const u = unsignedDynamicMap();
    for (let i = 1; i < 256; i++) expect(u[i] as number).toBeGreaterThan(u[i - 1] as number);
  });
});

describe('quantizeBlockwise', () => {
  const x = () => f32('quant/x');
  it('equals bitsandbytes default-backend codes and absmax (signed map, with a partial block)', () => {
    const values = x();
    const codes = new Uint8Array(values.length);
    const absmax = new Float32Array(Math.ceil(values.length / 256));
    quantizeBlockwise(values, signedDynamicMap(), 256, codes, absmax);
    expect(absmax).toEqual(f32('quant/signed/absmax'));
    expect(codes).toEqual(u8('quant/signed/codes'));
  });

  it('equals bitsandbytes for the unsigned map on squares', () => {
    const values = x().map((v) => Math.fround(v * v));
    const codes = new Uint8Array(values.length);
    const absmax = new Float32Array(Math.ceil(values.length / 256));
    quantizeBlockwise(values, unsignedDynamicMap(), 256, codes, absmax);
    expect(absmax).toEqual(f32('quant/unsigned/absmax'));
    expect(codes).toEqual(u8('quant/unsigned/codes'));
  });

  it('dequantizes to code × absmax and round-trips within half a code step', () => {
    const values = x();
    const code = signedDynamicMap();
    const codes = new Uint8Array(values.length);
    const absmax = new Float32Array(4);
    quantizeBlockwise(values, code, 256, codes, absmax);
    const back = new Float32Array(values.length);
    dequantizeBlockwise(codes, absmax, code, 256, back);
    for (let i = 0; i < values.length; i++) {
      const a = absmax[Math.floor(i / 256)] as number;
      // the widest gap of the signed map is between 0.97890630 and 0.99296874 / near 1
      expect(Math.abs((back[i] as number) - (values[i] as number))).toBeLessThanOrEqual(0.0071 * a);
    }
  });
});
