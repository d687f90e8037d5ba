"""What the two row-product fixture scripts share (int8_vectorwise_np.py, f16_rows_np.py): the
fields of a case every row-product test reads, and the file with its provenance."""

import json
import platform

import numpy as np


def row_case(name: str, x: np.ndarray, w: np.ndarray, x_absmax: np.ndarray, w_absmax: np.ndarray,
             output: np.ndarray, **extra: list) -> dict:
    """x [rows, k], w [out, k], output [rows, out]; `extra` holds the script's own fields."""
    rows, k = x.shape
    return {
        "name": name,
        "rows": rows,
        "out": w.shape[0],
        "k": k,
        "x": x.flatten().tolist(),
        "w": w.flatten().tolist(),
        "xAbsmax": x_absmax.tolist(),
        "wAbsmax": w_absmax.tolist(),
        "output": output.flatten().tolist(),
        **extra,
    }


def write_fixture(path: str, generator: str, reference: str, cases: list) -> None:
    with open(path, "w") as f:
        json.dump({
            "generator": generator,
            "reference": reference,
            "versions": {"numpy": np.__version__, "python": platform.python_version()},
            "cases": cases,
        }, f)
        f.write("\n")
