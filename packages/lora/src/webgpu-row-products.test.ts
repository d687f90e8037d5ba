// The support check shared by the int8 and f16 tensor-core products, on described devices (no
// GPU needed): what a device must offer, and how a missing configuration is reported.
import { describe, expect, it } from 'vitest';
import { f16MatMulSource } from './_webgpu-f16';
import { int8MatMulSource } from './_webgpu-int8';
import {
  type SubgroupMatrixConfigLike,
  subgroupMatrixUnsupportedReason,
  type WebgpuDeviceLike,
} from './_webgpu-row-products';

const F16: SubgroupMatrixConfigLike = {
  componentType: 'f16',
  resultComponentType: 'f32',
  M: 16,
  N: 16,
  K: 16,
};
const FEATURES = ['shader-f16', 'chromium-experimental-subgroup-matrix', 'subgroups'];

function device(features: string[], info: WebgpuDeviceLike['adapterInfo'] = {}): WebgpuDeviceLike {
  return { features: new Set(features), adapterInfo: info, createShaderModule: () => ({}) };
}

describe('subgroupMatrixUnsupportedReason', () => {
  it('names the backend when it is not webgpu', () => {
    expect(subgroupMatrixUnsupportedReason(FEATURES, F16, undefined)).toMatch(
      /^the active backend is '.*', not webgpu$/,
    );
  });

  it('lists every missing feature', () => {
    expect(subgroupMatrixUnsupportedReason(FEATURES, F16, device(['subgroups']))).toBe(
      'the webgpu device lacks shader-f16, chromium-experimental-subgroup-matrix',
    );
  });

  it('requires subgroups of 32', () => {
    expect(
      subgroupMatrixUnsupportedReason(FEATURES, F16, device(FEATURES, { subgroupMaxSize: 64 })),
    ).toBe('its subgroups hold up to 64 invocations, not 32');
  });

  it('accepts the configuration when offered, or when the adapter lists none', () => {
    const offered = [{ ...F16, N: 8 }, F16];
    expect(
      subgroupMatrixUnsupportedReason(
        FEATURES,
        F16,
        device(FEATURES, { subgroupMatrixConfigs: offered }),
      ),
    ).toBeUndefined();
    expect(subgroupMatrixUnsupportedReason(FEATURES, F16, device(FEATURES))).toBeUndefined();
  });

  it('reports what is offered when the configuration is missing', () => {
    const int8Only = [
      { componentType: 'i8', resultComponentType: 'i32', M: 16, N: 16, K: 32 },
      { componentType: 'f16', resultComponentType: 'f16', M: 16, N: 16, K: 16 },
    ];
    expect(
      subgroupMatrixUnsupportedReason(
        FEATURES,
        F16,
        device(FEATURES, { subgroupMatrixConfigs: int8Only }),
      ),
    ).toBe(
      'no f16→f32 16×16×16 subgroup-matrix configuration (offered: i8→i32 16×16×32, f16→f16 16×16×16)',
    );
  });
});

describe('the raw product sources', () => {
  for (const { name, source, enables, x, w, result } of [
    {
      name: 'int8',
      source: int8MatMulSource(2048, 512, 4),
      enables: [],
      x: 'xq',
      w: 'wq',
      result: 'i32',
    },
    {
      name: 'f16',
      source: f16MatMulSource(2048, 1024),
      enables: ['enable f16;'],
      x: 'xh',
      w: 'wh',
      result: 'f32',
    },
  ]) {
    it(`${name}: enables first, tfjs binding order, entry _start`, () => {
      expect(source.split('\n').slice(0, enables.length + 3)).toEqual([
        ...enables,
        'enable subgroups;',
        'enable chromium_experimental_subgroup_matrix;',
        'diagnostic(off, chromium_experimental.subgroup_matrix_uniformity);',
      ]);
      const bindings = [...source.matchAll(/@binding\((\d)\) var<(\w+)(?:, (\w+))?> (\w+)/g)].map(
        (m) => [Number(m[1]), m[4]],
      );
      // tfjs binds the output first, then the inputs in variableNames order, then its uniforms.
      expect(bindings).toEqual([
        [0, 'result'],
        [1, x],
        [2, w],
        [3, 'ax'],
        [4, 'aw'],
        [5, 'uniforms'],
      ]);
      expect(source).toContain('fn _start(');
      expect(source).toContain(`subgroup_matrix_result<${result}, 16, 16>`);
    });
  }
});
