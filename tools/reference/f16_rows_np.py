"""Reference fixture for the f16 tensor-core path (@qlora/lora F16Linear and its WGSL packer).

Each row r of an operand is multiplied by the power of two 2^(14 - floor(log2 absmax_r)) (exact:
only the exponent changes), so its largest magnitude lies in [2^14, 2^15), then rounded to IEEE
binary16 with round-to-nearest-even (numpy's float32 -> float16 cast). The product is
`y = (Σ_k xh[m,k] · wh[n,k]) · 2^(floor(log2 absmax_x) - 14) · 2^(floor(log2 absmax_w) - 14)`,
where the tensor cores sum f16 products in f32; `sums` here is that sum in float64 (exact for
products of two f16), which the GPU's f32 accumulation approaches to about 2^-24 of Σ|terms|.
The exponent comes from the float32 bits of absmax, as the WGSL does.

  python3 tools/reference/f16_rows_np.py test-fixtures/lora/f16_rows.json
"""

import sys

import numpy as np
from _row_fixture import row_case, write_fixture


def row_scale(absmax: np.ndarray) -> np.ndarray:
    exponent = (absmax.astype(np.float32).view(np.uint32) >> 23) & 0xFF
    return np.where(exponent > 14, np.ldexp(np.float32(1), exponent.astype(np.int32) - 141), 1).astype(np.float32)


def pack_rows(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    absmax = np.max(np.abs(a), axis=1).astype(np.float32)
    scaled = a / row_scale(absmax)[:, None]  # exact: a power of two
    return scaled.astype(np.float16), absmax


def main(out_path: str) -> None:
    rng = np.random.default_rng(20261129)
    cases = []
    for name, rows, out, k in (("32 wide", 6, 10, 32), ("odd width", 5, 7, 100), ("long rows", 3, 4, 2000)):
        x = (rng.standard_normal((rows, k)) * 2).astype(np.float32)
        w = (rng.standard_normal((out, k)) * 0.05).astype(np.float32)
        x[1, 3] = -4 * np.max(np.abs(x[1]))  # a negative absmax
        x[2, :5] = [1e-6, -3e-7, 2.0**-20, 65504.0, 1.0]  # far below the row's absmax: f16 subnormal range after scaling
        if rows > 3:
            x[3, :] = np.float32(2.0**-130) * (rng.standard_normal(k) > 0)  # a row of subnormal f32: scale 1
        if rows > 4:
            x[4, :] = 0  # an all-zero row: scale 1, codes 0
        xh, xs = pack_rows(x)
        wh, ws = pack_rows(w)
        sums = xh.astype(np.float64) @ wh.astype(np.float64).T
        output = sums * row_scale(xs)[:, None].astype(np.float64) * row_scale(ws)[None, :].astype(np.float64)
        exact = x.astype(np.float64) @ w.astype(np.float64).T
        abs_sum = np.abs(x.astype(np.float64)) @ np.abs(w.astype(np.float64)).T
        cases.append(row_case(
            name, x, w, xs, ws, output,
            xHalfBits=xh.view(np.uint16).flatten().tolist(),
            wHalfBits=wh.view(np.uint16).flatten().tolist(),
            exact=exact.flatten().tolist(),
            absSum=abs_sum.flatten().tolist(),
        ))
    write_fixture(
        out_path,
        "tools/reference/f16_rows_np.py",
        "rows scaled by 2^(14 - floor(log2 absmax)) and rounded to float16 by numpy (nearest even); float64 sums",
        cases,
    )

if __name__ == "__main__":
    main(sys.argv[1])
