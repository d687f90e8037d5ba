// The support check shared by the int8 and f16 tensor-core products, on described devices (no
// GPU needed): what a device must offer, and how a missing configuration is reported.
import { describe, expect, it } from 'vitest';
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
