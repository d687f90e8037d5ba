"""Reference fixtures for `qlora quantize` (@qlora/cli), made by bitsandbytes and transformers.

  PYTHONPATH=.ref TORCHDYNAMO_DISABLE=1 python3 tools/reference/cli_quantize.py OUTDIR

Takes the tiny Llama checkpoint test-fixtures/trainer/llama3-gqa-tied (float32) and, for every
2-D `*.{q,k,v,o,gate,up,down}_proj.weight`, builds a bitsandbytes `Linear4bit` exactly as
transformers' bnb quantizer does (Params4bit moved to the device), then saves the whole
state_dict (4-bit tensors + everything else unchanged) with safetensors:

- expected-nf4-dq64.safetensors: nf4, double quant, blocksize 64, from the float32 weights.
- bf16-model.safetensors: the same checkpoint cast to bfloat16 (input of the second case).
- expected-fp4-bf16-128.safetensors: fp4, no double quant, blocksize 128, from the bf16 weights.
- quantization-config.json: `BitsAndBytesConfig(...).to_dict()` for both cases, and the
  config.json text `LlamaConfig.save_pretrained` writes with that quantization_config.
- versions.json.

bitsandbytes is the .ref checkout (pure-PyTorch default backend, CPU); its version is reported to
transformers through importlib.metadata so BitsAndBytesConfig accepts it.
"""

import importlib.metadata as md
import json
import os
import platform
import re
import sys
import tempfile

import torch

import bitsandbytes as bnb

_real_version = md.version


def _version(name):
    if name == "bitsandbytes":
        return bnb.__version__.split(".dev")[0]
    return _real_version(name)


md.version = _version

import safetensors  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import BitsAndBytesConfig, LlamaConfig  # noqa: E402

SRC = "test-fixtures/trainer/llama3-gqa-tied"
PROJ = re.compile(r"\.(q|k|v|o|gate|up|down)_proj\.weight$")


def quantize_state_dict(tensors, quant_type, dq, blocksize):
    out = {}
    for name, w in tensors.items():
        if not (PROJ.search(name) and w.dim() == 2):
            out[name] = w.contiguous().clone()
            continue
        out_f, in_f = w.shape
        layer = bnb.nn.Linear4bit(in_f, out_f, bias=False, compute_dtype=w.dtype,
                                  compress_statistics=dq, quant_type=quant_type, device="meta")
        layer.weight = bnb.nn.Params4bit(data=w.clone(), requires_grad=False, quant_type=quant_type,
                                         compress_statistics=dq, blocksize=blocksize)
        layer = layer.to("cpu")
        prefix = name[: -len("weight")]
        for k, v in layer.state_dict().items():
            t = v.detach()
            if type(t) is not torch.Tensor:
                t = t.as_subclass(torch.Tensor)
            out[prefix + k] = t.contiguous().clone()
    return out


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    f32 = load_file(os.path.join(SRC, "model.safetensors"))
    meta = {"made_by": "tools/reference/cli_quantize.py"}
    save_file(quantize_state_dict(f32, "nf4", True, 64),
              os.path.join(outdir, "expected-nf4-dq64.safetensors"), metadata=meta)
    bf16 = {k: v.to(torch.bfloat16) for k, v in f32.items()}
    save_file(bf16, os.path.join(outdir, "bf16-model.safetensors"), metadata={"format": "pt"})
    save_file(quantize_state_dict(bf16, "fp4", False, 128),
              os.path.join(outdir, "expected-fp4-bf16-128.safetensors"), metadata=meta)

    configs = {}
    for label, kwargs in {
        "nf4-dq-bf16": dict(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                            bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16),
        "fp4-float32": dict(load_in_4bit=True, bnb_4bit_quant_type="fp4",
                            bnb_4bit_use_double_quant=False, bnb_4bit_compute_dtype=torch.float32),
    }.items():
        q = BitsAndBytesConfig(**kwargs)
        cfg = LlamaConfig.from_pretrained(SRC)
        cfg.quantization_config = q
        with tempfile.TemporaryDirectory() as tmp:
            cfg.save_pretrained(tmp)
            with open(os.path.join(tmp, "config.json")) as fh:
                saved = fh.read()
        configs[label] = {"to_dict": q.to_dict(), "config_json": saved}
    with open(os.path.join(outdir, "quantization-config.json"), "w") as fh:
        json.dump(configs, fh, indent=1)

    versions = {
        "script": "tools/reference/cli_quantize.py",
        "bitsandbytes": bnb.__version__ + " @ 95f9af30 (.ref checkout, pure-PyTorch default backend, CPU)",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "safetensors": safetensors.__version__,
        "python": platform.python_version(),
        "TORCHDYNAMO_DISABLE": os.environ.get("TORCHDYNAMO_DISABLE"),
    }
    with open(os.path.join(outdir, "versions.json"), "w") as fh:
        json.dump(versions, fh, indent=2)
    print(json.dumps(versions, indent=2))
    print(configs["nf4-dq-bf16"]["config_json"][:3000])


if __name__ == "__main__":
    main(sys.argv[1])
