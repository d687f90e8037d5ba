"""Reference fixture for W8A8 (@qlora/lora Int8Linear and the WGSL row quantizer).

bitsandbytes' row quantizer (`int8_vectorwise_quant`, default backend,
bitsandbytes/backends/default/ops.py, threshold 0) is, for float32 input A:

    row_stats = torch.max(A.abs(), dim=1).values.float()
    out_row = torch.round(A * (127.0 / row_stats.unsqueeze(-1))).to(torch.int8)

Neither torch nor bitsandbytes installs on the dev machine, so this script replays those two
lines in numpy float32, which rounds `/` and `*` correctly as torch's CPU kernels do and rounds
half to even as torch.round does. bitsandbytes leaves an all-zero row undefined (0 · inf = NaN
before the int8 cast); the fixture has none. The integer product of two quantized matrices is
computed exactly in int64, and `output` applies our documented epilogue in float32:
f32(sum) · (absmax_x · absmax_w · f32(1/127²)).

  python3 tools/reference/int8_vectorwise_np.py test-fixtures/lora/int8_vectorwise.json
"""

import sys

import numpy as np
from _row_fixture import row_case, write_fixture


def quantize_rows(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    row_stats = np.max(np.abs(a), axis=1).astype(np.float32)
    scale = (np.float32(127.0) / row_stats)[:, None]
    return np.round(a * scale).astype(np.int8), row_stats


def main(out_path: str) -> None:
    rng = np.random.default_rng(20261128)
    cases = []
    for name, rows, out, k in (("64 wide", 6, 10, 64), ("odd width", 5, 7, 100), ("long rows", 3, 4, 2000)):
        x = (rng.standard_normal((rows, k)) * 2).astype(np.float32)
        w = (rng.standard_normal((out, k)) * 0.05).astype(np.float32)
        x[1, 3] = -4 * np.max(np.abs(x[1]))  # a negative absmax: its code is -127
        x[2, :] = x[2, 0]  # ties on purpose: equal values, code ±127 everywhere
        xq, xs = quantize_rows(x)
        wq, ws = quantize_rows(w)
        sums = xq.astype(np.int64) @ wq.astype(np.int64).T
        scale = (xs[:, None] * ws[None, :]).astype(np.float32) * np.float32(1.0 / 16129.0)
        output = sums.astype(np.float32) * scale.astype(np.float32)
        cases.append(row_case(
            name, x, w, xs, ws, output.astype(np.float32),
            xCodes=xq.flatten().tolist(), wCodes=wq.flatten().tolist(), sums=sums.flatten().tolist(),
        ))
    write_fixture(
        out_path,
        "tools/reference/int8_vectorwise_np.py",
        "bitsandbytes default backend int8_vectorwise_quant (threshold 0), replayed in numpy float32",
        cases,
    )

if __name__ == "__main__":
    main(sys.argv[1])
