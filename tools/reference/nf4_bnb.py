"""Reference fixtures for @qlora/nf4, made by bitsandbytes itself.

Runs bitsandbytes' pure-PyTorch default backend on CPU (no native library needed).

  make:   PYTHONPATH=.ref python3 tools/reference/nf4_bnb.py make OUTDIR
          writes cases.json + cases.bin (quantize/dequantize results), means.json (torch CPU
          float32 mean of deterministic vectors), linear4bit.safetensors (a Linear4bit
          state_dict saved with safetensors) and versions.json.
  verify: PYTHONPATH=.ref python3 tools/reference/nf4_bnb.py verify CHECKPOINT OUTDIR
          loads a checkpoint written by @qlora/nf4 (tools/reference/nf4_write_checkpoint.ts),
          rebuilds every QuantState with bitsandbytes' QuantState.from_dict, dequantizes it with
          bitsandbytes and compares with what @qlora/nf4 wrote; also re-quantizes the stored
          source with bitsandbytes and compares every tensor and the JSON blob byte for byte.
          Writes bnb-reads-ts.json.

torch.compile is disabled (TORCHDYNAMO_DISABLE=1, set by the caller): the default backend's
dequantize wraps an eager function in torch.compile, and recompiling for every fixture shape is
slow; the eager function is the same arithmetic.
"""

import json
import os
import platform
import sys

import numpy as np
import torch

import bitsandbytes as bnb
import bitsandbytes.functional as F
from bitsandbytes.backends.default.ops import _get_4bit_quantize_bounds

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class Blob:
    """Concatenated little-endian arrays; the JSON index names (offset, bytes, dtype, count)."""

    def __init__(self):
        self.parts = []
        self.size = 0
        self.seen = {}  # identical arrays are stored once (keeps the fixture small)

    def add(self, t):
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().contiguous()
            if t.dtype == torch.bfloat16:
                arr = t.view(torch.int16).numpy().view(np.uint16)
                dtype = "BF16"
            elif t.dtype == torch.float16:
                arr = t.view(torch.int16).numpy().view(np.uint16)
                dtype = "F16"
            elif t.dtype == torch.float32:
                arr = t.numpy()
                dtype = "F32"
            elif t.dtype == torch.uint8:
                arr = t.numpy()
                dtype = "U8"
            else:
                raise ValueError(t.dtype)
        else:
            raise ValueError(type(t))
        raw = arr.reshape(-1).tobytes()
        if (dtype, raw) in self.seen:
            return dict(self.seen[(dtype, raw)])
        pad = (-self.size) % 8
        if pad:
            self.parts.append(b"\0" * pad)
            self.size += pad
        entry = {"offset": self.size, "bytes": len(raw), "dtype": dtype, "count": int(arr.size)}
        self.parts.append(raw)
        self.size += len(raw)
        self.seen[(dtype, raw)] = entry
        return dict(entry)


def f32(xs):
    return torch.tensor(np.asarray(xs, dtype=np.float32))


def randn(seed, n, scale=1.0):
    return np.random.default_rng(seed).standard_normal(n).astype(np.float32) * np.float32(scale)


def run_case(blob, name, x, shape, quant_type, blocksize, double_quant):
    x = x.reshape(shape)
    packed, qs = F.quantize_4bit(
        x, blocksize=blocksize, compress_statistics=double_quant, quant_type=quant_type
    )
    deq = F.dequantize_4bit(packed, qs)
    qs32 = F.QuantState(
        absmax=qs.absmax,
        shape=qs.shape,
        code=qs.code,
        blocksize=qs.blocksize,
        quant_type=qs.quant_type,
        dtype=torch.float32,
        offset=qs.offset,
        state2=qs.state2,
    )
    deq32 = F.dequantize_4bit(packed, qs32)
    case = {
        "name": name,
        "quantType": quant_type,
        "blocksize": blocksize,
        "dtype": str(x.dtype).replace("torch.", ""),
        "shape": list(shape),
        "doubleQuant": double_quant,
        "input": blob.add(x),
        "packed": blob.add(packed),
        "packedShape": list(packed.shape),
        "absmax": blob.add(qs.absmax),
        "dequant": blob.add(deq),
        "dequantF32": blob.add(deq32),
    }
    if double_quant:
        absmax_rec = F.dequantize_blockwise(qs.absmax, qs.state2)
        absmax_rec += qs.offset
        case["nestedAbsmax"] = blob.add(qs.state2.absmax)
        case["nestedBlocksize"] = qs.state2.blocksize
        case["offset"] = blob.add(qs.offset.reshape(1).float())
        case["offsetRepr"] = repr(qs.offset.item())
        case["absmaxReconstructed"] = blob.add(absmax_rec.float())
    return case


def make(outdir):
    os.makedirs(outdir, exist_ok=True)
    blob = Blob()
    cases = []

    def add(name, x, shape, qt, bs, dq=False):
        cases.append(run_case(blob, name, x, shape, qt, bs, dq))

    # §9 hand example.
    for qt in ("nf4", "fp4"):
        add(f"hand-{qt}", f32([1.0, -1.0, 0.0, 0.5]), (4,), qt, 64)

    # Every blocksize, a weight-like matrix with two outliers (4800 values: bs 4096 = full + partial).
    grid = randn(1, 4800)
    grid[3 * 100 + 7] = 25.0
    grid[40 * 100 + 1] = -40.0
    for qt in ("nf4", "fp4"):
        for bs in (32, 64, 128, 256, 512, 1024, 2048, 4096):
            add(f"grid-{qt}-bs{bs}", f32(grid), (48, 100), qt, bs)

    # Odd lengths and partial last blocks.
    for qt in ("nf4", "fp4"):
        for n in (1, 3, 63, 65, 127, 129, 1001):
            add(f"odd-{qt}-n{n}", f32(randn(100 + n, n)), (n,), qt, 64)
        add(f"odd-{qt}-bs32-n33", f32(randn(7, 33)), (3, 11), qt, 32)

    # All-zero blocks, including an all-zero partial last block, and an all-zero tensor.
    zb = randn(2, 64 * 5 + 33)
    zb[64:128] = 0.0
    zb[192:256] = 0.0
    zb[320:] = 0.0
    for qt in ("nf4", "fp4"):
        add(f"zero-blocks-{qt}", f32(zb), (353,), qt, 64)
        add(f"zero-blocks-{qt}-dq", f32(zb), (353,), qt, 64, True)
        add(f"all-zero-{qt}-n7", f32(np.zeros(7)), (7,), qt, 64)
        add(f"all-zero-{qt}-n128", f32(np.zeros(128)), (2, 64), qt, 64)

    # Ties: absmax 1 so xn == x; every midpoint of both backends' tables and the CUDA literals,
    # with their float32 neighbours, signed zeros and subnormals.
    special = [1.0, -0.0, 0.0, 1e-45, -1e-45, 1e-40, -1e-40, 1e-30, -1e-30]
    cuda_fp4 = [0.29166667, 0.583333, 0.8333333, 0.4166667, 0.0859375, 0.20833333, 0.00260417]
    pts = []
    for qt in ("nf4", "fp4"):
        bounds, _ = _get_4bit_quantize_bounds(qt, torch.device("cpu"))
        pts += bounds.tolist()
    pts += cuda_fp4 + [-v for v in cuda_fp4]
    for p in pts:
        p32 = np.float32(p)
        special += [p32, np.nextafter(p32, np.float32(2)), np.nextafter(p32, np.float32(-2))]
    special = np.asarray(special, dtype=np.float32)
    special = np.concatenate([special, np.zeros((-len(special)) % 256, dtype=np.float32)])
    for qt in ("nf4", "fp4"):
        add(f"ties-{qt}", f32(special), (len(special),), qt, 256)

    # Extremes: huge values, subnormal-only blocks, tiny normals (blocksize 32).
    ext = np.zeros(32 * 4, dtype=np.float32)
    ext[0:8] = [3.0e38, -3.4e38, 1.0, -1e-30, 1e30, 0.5, -0.0, 1e-45]
    ext[32:40] = [1e-40, -2e-41, 1e-45, -1e-45, 5e-39, 0.0, -3e-39, 1e-39]
    ext[64:72] = [1e-37, -2e-37, 3e-38, 1.2e-38, -1.1754944e-38, 1e-38, 0.0, 7e-38]
    ext[96:104] = [65504.0, -1e-8, 1e-8, 2.0, -3.0, 100.0, -1e5, 1e-3]
    for qt in ("nf4", "fp4"):
        add(f"extremes-{qt}", f32(ext), (128,), qt, 32)
        add(f"extremes-{qt}-bs64-odd", f32(ext[:101]), (101,), qt, 64)

    # bf16 and f16 inputs.
    b = torch.tensor(randn(3, 32 * 72, 0.05)).to(torch.bfloat16)
    h = torch.tensor(randn(4, 24 * 50, 0.5)).to(torch.float16)
    hx = torch.tensor(
        [60000.0, -65504.0, 1e-7, -6e-8, 0.0, -0.0, 1.0, 0.1] + [0.0] * 56, dtype=torch.float16
    )
    for qt in ("nf4", "fp4"):
        add(f"bf16-{qt}", b, (32, 72), qt, 64)
        add(f"bf16-{qt}-dq", b, (32, 72), qt, 64, True)
        add(f"bf16-{qt}-odd", b[:63], (7, 9), qt, 32)
        add(f"f16-{qt}", h, (24, 50), qt, 64)
        add(f"f16-{qt}-bs128-dq", h, (24, 50), qt, 128, True)
        add(f"f16-{qt}-extremes", hx, (64,), qt, 64)

    # Double quantization: several nested blocks (601 blocks: 256 + 256 + 89), few blocks
    # (scalar mean path), blocksizes 32 and 128, bf16.
    dq = randn(5, 64 * 600 + 17, 0.02)
    dq[12345] = 0.9
    dq[30001] = -1.3
    for qt in ("nf4", "fp4"):
        add(f"dq-{qt}-601blocks", f32(dq), (64 * 600 + 17,), qt, 64, True)
        add(f"dq-{qt}-bs32", f32(dq[: 32 * 300]), (300, 32), qt, 32, True)
        add(f"dq-{qt}-bs128", f32(dq[: 128 * 70 + 5]), (128 * 70 + 5,), qt, 128, True)
        add(f"dq-{qt}-10blocks", f32(dq[:640]), (640,), qt, 64, True)
        add(f"dq-{qt}-100blocks", f32(dq[:6400]), (80, 80), qt, 64, True)

    # The tables bnb builds at run time.
    tables = {
        "nf4": blob.add(F.get_4bit_type("nf4", device="cpu")),
        "fp4": blob.add(F.get_4bit_type("fp4", device="cpu")),
        "dynamic": blob.add(F.create_dynamic_map().float()),
    }
    for qt in ("nf4", "fp4"):
        bounds, order = _get_4bit_quantize_bounds(qt, torch.device("cpu"))
        tables[f"{qt}Bounds"] = blob.add(bounds)
        tables[f"{qt}Order"] = [int(v) for v in order.tolist()]

    with open(os.path.join(outdir, "cases.bin"), "wb") as fh:
        for part in blob.parts:
            fh.write(part)
    with open(os.path.join(outdir, "cases.json"), "w") as fh:
        json.dump({"tables": tables, "cases": cases}, fh, separators=(",", ":"))

    # torch CPU float32 mean of deterministic vectors: v_i = float32(((i*2654435761) mod 2^32) / 2^32).
    means = []
    for n in (1, 2, 3, 5, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 255, 256,
              257, 1000, 1023, 1024, 1025, 4097, 10000, 32767, 32768, 40000, 131075, 262144):
        i = np.arange(n, dtype=np.uint64)
        v = (((i * np.uint64(2654435761)) % np.uint64(2**32)).astype(np.float64) / 2.0**32).astype(np.float32)
        m = torch.from_numpy(v).mean()
        means.append({"n": n, "mean": repr(m.item()), "bits": int(m.view(torch.int32).item()) & 0xFFFFFFFF})
    with open(os.path.join(outdir, "means.json"), "w") as fh:
        json.dump(means, fh, separators=(",", ":"))

    # Linear4bit layers saved with safetensors.
    from safetensors.torch import save_file

    def linear4bit(inp, out, bias, dtype, qt, dq, blocksize, seed):
        torch.manual_seed(seed)
        dense = torch.nn.Linear(inp, out, bias=bias, dtype=dtype)
        layer = bnb.nn.Linear4bit(inp, out, bias=bias, compute_dtype=dtype, compress_statistics=dq,
                                  quant_type=qt, device="meta")
        layer.weight = bnb.nn.Params4bit(data=dense.weight.data.clone(), requires_grad=False,
                                         quant_type=qt, compress_statistics=dq, blocksize=blocksize)
        if bias:
            layer.bias = torch.nn.Parameter(dense.bias.data.clone(), requires_grad=False)
        layer = layer.to("cpu")
        return layer, dense.weight.data.clone()

    layers = {
        "q_proj": linear4bit(96, 64, True, torch.bfloat16, "nf4", True, 64, 11),
        "v_proj": linear4bit(80, 48, False, torch.float32, "fp4", False, 64, 12),
        "o_proj": linear4bit(64, 40, True, torch.float16, "nf4", False, 128, 13),
    }
    model = torch.nn.ModuleDict({k: v[0] for k, v in layers.items()})
    sd = model.state_dict()
    tensors = {}
    for k, v in sd.items():
        t = v.detach()
        if type(t) is not torch.Tensor:
            t = t.as_subclass(torch.Tensor)
        tensors[k] = t.contiguous().clone()
    for k, (_, w) in layers.items():
        tensors[f"source.{k}"] = w.contiguous()
    save_file(tensors, os.path.join(outdir, "linear4bit.safetensors"),
              metadata={"made_by": "tools/reference/nf4_bnb.py"})
    layer_info = {k: {"blocksize": v[0].weight.quant_state.blocksize,
                      "keys": [key for key in sd.keys() if key.startswith(k + ".")]}
                  for k, v in layers.items()}

    import safetensors

    versions = {
        "script": "tools/reference/nf4_bnb.py",
        "bitsandbytes": bnb.__version__ + " @ 95f9af30 (.ref checkout, pure-PyTorch default backend, CPU)",
        "torch": torch.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_num_threads": torch.get_num_threads(),
        "TORCHDYNAMO_DISABLE": os.environ.get("TORCHDYNAMO_DISABLE"),
        "native_library_loaded": not isinstance(bnb.cextension.lib, bnb.cextension.ErrorHandlerMockBNBNativeLibrary),
        "linear4bit": layer_info,
    }
    with open(os.path.join(outdir, "versions.json"), "w") as fh:
        json.dump(versions, fh, indent=2)
    print(json.dumps(versions, indent=2))
    print("cases", len(cases), "bytes", blob.size)


def verify(checkpoint, outdir):
    from safetensors import safe_open
    from bitsandbytes.utils import unpack_tensor_to_dict

    os.makedirs(outdir, exist_ok=True)
    report = {"checkpoint": os.path.basename(checkpoint), "layers": {}}
    with safe_open(checkpoint, framework="pt") as fh:
        meta = fh.metadata() or {}
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    layers = json.loads(meta["layers"])
    ok_all = True
    for prefix, info in layers.items():
        p = prefix + ".weight."
        qs_dict = {k[len(prefix) + len(".weight."):]: v for k, v in tensors.items() if k.startswith(p)}
        qs = F.QuantState.from_dict(qs_dict=dict(qs_dict), device=torch.device("cpu"))
        packed = tensors[prefix + ".weight"]
        deq = F.dequantize_4bit(packed, qs)
        ts_deq = tensors["ts_dequant." + prefix]
        same_deq = deq.dtype == ts_deq.dtype and bool(
            torch.equal(deq.contiguous().view(-1).view(torch.uint8), ts_deq.contiguous().view(-1).view(torch.uint8))
        )
        # Re-quantize the same source with bnb; compare every tensor and the JSON blob.
        src = tensors["source." + prefix]
        bnb_packed, bnb_qs = F.quantize_4bit(src.reshape(info["shape"]), blocksize=info["blocksize"],
                                             compress_statistics=info["doubleQuant"],
                                             quant_type=info["quantType"])
        bnb_dict = bnb_qs.as_dict(packed=True)
        tensor_cmp = {"weight": bool(torch.equal(bnb_packed, packed))}
        for k, v in bnb_dict.items():
            ours = qs_dict.get(k)
            tensor_cmp[k] = ours is not None and ours.dtype == v.dtype and list(ours.shape) == list(v.shape) and bool(torch.equal(ours, v))
        blob_key = [k for k in bnb_dict if k.startswith("quant_state.")][0]
        entry = {
            "quantType": qs.quant_type,
            "blocksize": qs.blocksize,
            "dtype": str(qs.dtype),
            "shape": list(qs.shape),
            "nested": qs.nested,
            "offset": repr(qs.offset.item()) if qs.nested else None,
            "bnbOffset": repr(bnb_qs.offset.item()) if bnb_qs.nested else None,
            "jsonOurs": bytes(qs_dict[blob_key].tolist()).decode() if blob_key in qs_dict else None,
            "jsonBnb": bytes(bnb_dict[blob_key].tolist()).decode(),
            "dequantBitExact": same_deq,
            "tensorsEqualToBnbQuantize": tensor_cmp,
        }
        entry["ok"] = same_deq and all(tensor_cmp.values()) and entry["jsonOurs"] == entry["jsonBnb"]
        ok_all = ok_all and entry["ok"]
        report["layers"][prefix] = entry
    report["ok"] = ok_all
    report["torch"] = torch.__version__
    report["bitsandbytes"] = bnb.__version__
    with open(os.path.join(outdir, "bnb-reads-ts.json"), "w") as fh:
        json.dump(report, fh, indent=2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    elif sys.argv[1] == "verify":
        verify(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit("usage: nf4_bnb.py make OUTDIR | verify CHECKPOINT OUTDIR")
