"""Reference fixtures for @qlora/safetensors, made by the Python `safetensors` library.

Run on a machine with torch, numpy, safetensors and transformers:

    python3 tools/reference/safetensors_ref.py <out_dir>

Writes into <out_dir>:
  all-dtypes.safetensors   every dtype torch + safetensors can write (BF16, F8, unsigned, BOOL,
                           C64), scalars (shape []), empty tensors, metadata {"format": "pt"}
  mixed-order.safetensors  many tensors of mixed dtypes and awkward names (ordering on write)
  numpy.safetensors        written through safetensors.numpy.save (no metadata)
  multi-meta.safetensors   three metadata keys (the Rust writer's HashMap order is arbitrary)
  empty.safetensors        no tensors, no metadata
  conversions.safetensors  f32 edge cases and torch's f32 -> bf16 / f16 casts, every f16 bit
                           pattern and torch's f16 -> f32 decode, bf16 patterns -> f32
  sharded/                 a tiny Llama saved by transformers save_pretrained with a small
                           max_shard_size (model-0000k-of-0000n.safetensors + index json)
  manifest.json            per file: tensor dtype, shape, raw bytes (hex) and values, metadata in
                           header order, header length; for conversions: what each tensor holds
  versions.json            library versions
"""

import hashlib
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import safetensors
import safetensors.numpy
import safetensors.torch

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
rng = np.random.default_rng(0)


def header_of(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header_text = raw[8 : 8 + n].decode("utf-8")
    # object_pairs_hook keeps the order the writer used
    header = json.loads(header_text, object_pairs_hook=lambda pairs: pairs)
    return raw, n, header


def json_value(x):
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
    return x


def values_of(t):
    """Expected values computed by torch, independent of the file bytes."""
    if t.dtype in (torch.int64, torch.uint64, torch.uint32):
        return [str(v) for v in t.flatten().tolist()]
    if t.dtype == torch.bool:
        return [1 if v else 0 for v in t.flatten().tolist()]
    if t.dtype == torch.complex64:
        return [json_value(v) for v in torch.view_as_real(t).flatten().tolist()]
    if t.dtype.is_floating_point:
        # bf16, f16 and f8 values decoded to f32 by torch
        return [json_value(v) for v in t.float().flatten().tolist()]
    return t.flatten().tolist()


def describe(path, tensors, metadata_given):
    raw, n, header = header_of(path)
    entries = []
    metadata = None
    for key, value in header:
        if key == "__metadata__":
            metadata = [[k, v] for k, v in value]
            continue
        info = dict(value)
        begin, end = info["data_offsets"]
        t = tensors[key]
        entries.append(
            {
                "name": key,
                "dtype": info["dtype"],
                "shape": info["shape"],
                "data_offsets": [begin, end],
                "hex": raw[8 + n + begin : 8 + n + end].hex(),
                "values": values_of(t),
            }
        )
    return {
        "file": os.path.basename(path),
        "header_length": n,
        "file_length": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "metadata_in_header_order": metadata,
        "metadata_given": metadata_given,
        "tensors": entries,
    }


manifest = {"files": [], "written_dtypes": [], "skipped_dtypes": {}}

# ---- every dtype ----------------------------------------------------------------------------
all_dtypes = {
    "f64": torch.tensor([[1.5, -2.25, 1e300], [float("inf"), -0.0, 5e-324]], dtype=torch.float64),
    "f32": torch.tensor([1.0, -3.5, 3.4028234663852886e38, 1e-45, float("-inf")], dtype=torch.float32),
    "f16": torch.tensor([[1.0, -2.0], [65504.0, 6e-8]], dtype=torch.float16),
    "bf16": torch.tensor([1.0, -0.5, 3.0e38, 1e-39, 7.0], dtype=torch.bfloat16),
    "i64": torch.tensor([-(2**63), 2**63 - 1, 0, -1], dtype=torch.int64),
    "i32": torch.tensor([-(2**31), 2**31 - 1, 7], dtype=torch.int32),
    "i16": torch.tensor([-32768, 32767, 1], dtype=torch.int16),
    "i8": torch.tensor([-128, 127, 0, 5], dtype=torch.int8),
    "u8": torch.tensor([0, 255, 17], dtype=torch.uint8),
    "bool": torch.tensor([True, False, True], dtype=torch.bool),
    "scalar_f32": torch.tensor(3.25, dtype=torch.float32),
    "scalar_i64": torch.tensor(-42, dtype=torch.int64),
    "empty_f32": torch.zeros((0,), dtype=torch.float32),
    "empty_2d_bf16": torch.zeros((3, 0), dtype=torch.bfloat16),
    "c64": torch.tensor([1 + 2j, -3.5 - 0.25j], dtype=torch.complex64),
}
optional = {
    "u16": lambda: torch.tensor([0, 65535, 3], dtype=torch.uint16),
    "u32": lambda: torch.tensor([0, 2**32 - 1, 3], dtype=torch.uint32),
    "u64": lambda: torch.tensor([0, 2**63 + 5, 3], dtype=torch.uint64),
    "f8_e4m3": lambda: torch.tensor([0.5, -448.0, 1.75, 0.001953125, 300.0], dtype=torch.float32).to(torch.float8_e4m3fn),
    "f8_e5m2": lambda: torch.tensor([0.5, -57344.0, 1.75, 1.52587890625e-05, float("inf")], dtype=torch.float32).to(torch.float8_e5m2),
    "f8_e4m3fnuz": lambda: torch.tensor([0.5, -240.0, 1.75], dtype=torch.float32).to(torch.float8_e4m3fnuz),
    "f8_e5m2fnuz": lambda: torch.tensor([0.5, -57344.0, 1.75], dtype=torch.float32).to(torch.float8_e5m2fnuz),
    "f8_e8m0": lambda: torch.tensor([0.5, 2.0, 1024.0], dtype=torch.float32).to(torch.float8_e8m0fnu),
}
for name, make in optional.items():
    try:
        t = make()
        path = os.path.join(out, "probe.safetensors")
        safetensors.torch.save_file({name: t}, path)
        back = safetensors.torch.load_file(path)[name]
        assert back.view(torch.uint8).tolist() == t.view(torch.uint8).tolist()
        os.remove(path)
        all_dtypes[name] = t
    except Exception as e:  # noqa: BLE001 - record what this torch/safetensors cannot do
        manifest["skipped_dtypes"][name] = repr(e)[:200]

path = os.path.join(out, "all-dtypes.safetensors")
safetensors.torch.save_file(all_dtypes, path, metadata={"format": "pt"})
manifest["files"].append(describe(path, all_dtypes, [["format", "pt"]]))
manifest["written_dtypes"] = sorted({e["dtype"] for e in manifest["files"][0]["tensors"]})

# ---- many tensors of mixed dtypes, names that sort differently in UTF-16 and UTF-8 ------------
mixed = {}
kinds = [torch.float32, torch.bfloat16, torch.float16, torch.int64, torch.int8, torch.uint8,
         torch.bool, torch.float64, torch.int32, torch.int16]
names = [f"layers.{i}.w" for i in range(12)] + ["a", "B", "b", "Z", "_x", "é", "\ue000", "😀", "a.b", "a-b"]
for i, name in enumerate(names):
    dt = kinds[i % len(kinds)]
    shape = (int(rng.integers(0, 3)), int(rng.integers(1, 4))) if i % 3 else (int(rng.integers(1, 5)),)
    if dt == torch.bool:
        t = torch.rand(shape) > 0.5
    elif dt.is_floating_point:
        t = (torch.randn(shape) * 10).to(dt)
    else:
        info = torch.iinfo(dt)
        t = torch.randint(max(info.min, -1000), min(info.max, 1000) + 1, shape, dtype=dt)
    mixed[name] = t
path = os.path.join(out, "mixed-order.safetensors")
safetensors.torch.save_file(mixed, path, metadata={"note": 'quotes " and \\ and \n and é'})
manifest["files"].append(describe(path, mixed, [["note", 'quotes " and \\ and \n and é']]))

# ---- numpy entry point ----------------------------------------------------------------------
np_tensors = {
    "x": np.arange(6, dtype=np.float32).reshape(2, 3),
    "y": np.array([1, -2, 3], dtype=np.int16),
    "z": np.array(2.5, dtype=np.float64),
}
path = os.path.join(out, "numpy.safetensors")
with open(path, "wb") as f:
    f.write(safetensors.numpy.save(np_tensors))
manifest["files"].append(describe(path, {k: torch.from_numpy(v) for k, v in np_tensors.items()}, None))

# ---- several metadata keys ------------------------------------------------------------------
multi = {"w": torch.ones(2, 2)}
meta = {"format": "pt", "author": "qlora", "epoch": "3"}
path = os.path.join(out, "multi-meta.safetensors")
safetensors.torch.save_file(multi, path, metadata=meta)
manifest["files"].append(describe(path, multi, [[k, v] for k, v in meta.items()]))

# ---- no tensors -----------------------------------------------------------------------------
path = os.path.join(out, "empty.safetensors")
safetensors.torch.save_file({}, path)
manifest["files"].append(describe(path, {}, None))

# ---- conversions ------------------------------------------------------------------------------
specials = [0.0, -0.0, 1.0, -1.0, float("inf"), float("-inf"), float("nan"),
            65504.0, 65519.99, 65520.0, 65536.0, 1e10, -1e10,
            6.103515625e-05, 6.1e-05, 5.960464477539063e-08, 2.98023223876953125e-08,
            2.9802326e-08, 1e-8, 1e-40, 1.401298464324817e-45, 1.1754942e-38,
            3.4028234663852886e38, 3.3961775e38, 3.3895314e38, 1.0009765625, 1.00048828125,
            1.00146484375, 1.00390625, 1.001953125, 1.005859375, 0.1, 1 / 3]
rand_bits = rng.integers(0, 2**32, size=8192, dtype=np.uint64).astype(np.uint32)
# halfway and near-halfway cases for bf16 (low 16 bits around 0x8000) and f16 (low 13 bits)
base = rng.integers(0, 2**32, size=1024, dtype=np.uint64).astype(np.uint32)
half_bf16 = (base & np.uint32(0xFFFF0000)) | np.uint32(0x8000)
half_f16 = (base & np.uint32(0xFFFFE000)) | np.uint32(0x1000)
# f16 range: exponents around the f16 normal/subnormal range
small = (rng.random(4096) * 2 - 1) * np.exp2(rng.integers(-30, 17, size=4096)).astype(np.float32)
src = np.concatenate([
    np.array(specials, dtype=np.float32),
    rand_bits.view(np.float32),
    half_bf16.view(np.float32),
    half_f16.view(np.float32),
    (half_f16 + np.uint32(1)).view(np.float32),
    small.astype(np.float32),
])
src_t = torch.from_numpy(src.copy())
to_bf16 = src_t.to(torch.bfloat16)
to_f16 = src_t.to(torch.float16)
f16_bits = torch.from_numpy(np.arange(65536, dtype=np.uint16).view(np.int16).copy())
f16_patterns = f16_bits.view(torch.float16)
bf16_patterns = f16_bits[::16].clone().view(torch.bfloat16)
conv = {
    "src_f32": src_t,
    "to_bf16": to_bf16,
    "to_f16": to_f16,
    "f16_patterns": f16_patterns,
    "f16_patterns_to_f32": f16_patterns.float(),
    "bf16_patterns": bf16_patterns,
    "bf16_patterns_to_f32": bf16_patterns.float(),
}
# every 8-bit float pattern decoded by torch (as U8 patterns + F32 values)
byte_patterns = torch.arange(256, dtype=torch.int32).to(torch.uint8)
for label, attr in [("f8_e4m3", "float8_e4m3fn"), ("f8_e5m2", "float8_e5m2"),
                    ("f8_e4m3fnuz", "float8_e4m3fnuz"), ("f8_e5m2fnuz", "float8_e5m2fnuz"),
                    ("f8_e8m0", "float8_e8m0fnu")]:
    if hasattr(torch, attr):
        conv[f"{label}_patterns_to_f32"] = byte_patterns.view(getattr(torch, attr)).float()
conv["byte_patterns"] = byte_patterns
path = os.path.join(out, "conversions.safetensors")
safetensors.torch.save_file(conv, path)
conv_desc = {
    "file": "conversions.safetensors",
    "sha256": hashlib.sha256(open(path, "rb").read()).hexdigest(),
    "what": {
        "src_f32": "f32 inputs: specials, random bit patterns, bf16/f16 halfway cases, f16-range values",
        "to_bf16": "torch src_f32.to(torch.bfloat16)",
        "to_f16": "torch src_f32.to(torch.float16)",
        "f16_patterns": "every f16 bit pattern 0..65535",
        "f16_patterns_to_f32": "torch f16_patterns.float()",
        "bf16_patterns": "bf16 bit patterns 0, 16, 32, ... 65520",
        "bf16_patterns_to_f32": "torch bf16_patterns.float()",
        "byte_patterns": "bytes 0..255",
        "f8_*_patterns_to_f32": "torch byte_patterns.view(torch.float8_*).float()",
    },
    "nan_count_src": int(torch.isnan(src_t).sum()),
}
manifest["conversions"] = conv_desc

# ---- sharded checkpoint from transformers -----------------------------------------------------
try:
    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32,
                      tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    shard_dir = os.path.join(out, "sharded")
    model.save_pretrained(shard_dir, max_shard_size="8KB", safe_serialization=True)
    for f in os.listdir(shard_dir):
        if not (f.endswith(".safetensors") or f.endswith(".index.json")):
            os.remove(os.path.join(shard_dir, f))
    sd = model.state_dict()
    manifest["sharded"] = {
        "files": sorted(os.listdir(shard_dir)),
        "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype),
                        "sum_f32": float(v.float().sum()), "first": json_value(float(v.float().flatten()[0]))}
                    for k, v in sd.items()},
    }
    transformers_version = transformers.__version__
except Exception as e:  # noqa: BLE001
    manifest["sharded_error"] = repr(e)[:500]
    transformers_version = None

with open(os.path.join(out, "manifest.json"), "w") as f:
    json.dump(manifest, f, ensure_ascii=False, separators=(",", ":"))
with open(os.path.join(out, "versions.json"), "w") as f:
    json.dump({"safetensors": safetensors.__version__, "torch": torch.__version__,
               "numpy": np.__version__, "transformers": transformers_version,
               "script": "tools/reference/safetensors_ref.py"}, f, indent=1)
print("ok", json.dumps(manifest["skipped_dtypes"]), manifest["written_dtypes"])
print(sorted(os.listdir(out)))
