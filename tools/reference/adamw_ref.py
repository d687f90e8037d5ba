"""Reference fixtures for @qlora/trainer's optimizers, schedules and gradient clipping.

  make:  TORCHDYNAMO_DISABLE=1 PYTHONPATH=.ref python3 tools/reference/adamw_ref.py OUTDIR

Writes into OUTDIR:
  optim.bin + optim.json  concatenated little-endian arrays and their index (name → offset,
                          dtype, count, shape) plus the cases below;
  schedules.json          lr per optimizer step from transformers.get_scheduler;
  versions.json           library versions.

Cases (all CPU, float32):
  adamw/*      torch.optim.AdamW(foreach=False): one and three steps from the same inputs, with
               several lr / weight decay / betas / eps and one amsgrad=True case;
  adamw8bit/*  bitsandbytes.optim.AdamW8bit (default + CPU pure-PyTorch backend, no native
               library): blockwise 8-bit state (uint8 codes + float32 absmax per 256 values) of a
               4420-element parameter and the 32-bit state of a 100-element one (< min_8bit_size);
  qmap/*       bitsandbytes.functional.create_dynamic_map(signed=True/False);
  quant/*      torch.ops.bitsandbytes.quantize_blockwise (default backend) of a test vector;
  clip/*       torch.nn.utils.clip_grad_norm_(foreach=False) total norm and clipped grads.

torch.compile is disabled (TORCHDYNAMO_DISABLE=1): bnb's default dequantize wraps an eager
function in torch.compile; the eager function is the same arithmetic.
"""

import json
import os
import platform
import sys

import numpy as np
import torch

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)


class Blob:
    def __init__(self):
        self.parts = []
        self.size = 0
        self.index = {}

    def add(self, name, t):
        t = t.detach().cpu().contiguous()
        if t.dtype == torch.float32:
            arr, dtype = t.numpy(), "F32"
        elif t.dtype == torch.uint8:
            arr, dtype = t.numpy(), "U8"
        else:
            raise ValueError(t.dtype)
        raw = arr.tobytes()
        # keep every array 4-byte aligned so the reader can view it in place
        pad = (-self.size) % 4
        if pad:
            self.parts.append(b"\0" * pad)
            self.size += pad
        self.index[name] = {"offset": self.size, "dtype": dtype, "count": int(arr.size), "shape": list(t.shape)}
        self.parts.append(raw)
        self.size += len(raw)

    def write(self, path):
        with open(path, "wb") as f:
            for p in self.parts:
                f.write(p)


blob = Blob()
cases = {}
gen = torch.Generator().manual_seed(20261128)


def grad_like(shape, zeros=0):
    g = torch.randn(shape, generator=gen)
    # magnitudes spread over 1e-4 … 10 so that m, v cover many exponents
    scale = 10.0 ** (torch.rand(shape, generator=gen) * 5 - 4)
    g = (g * scale).float()
    if zeros:
        g.view(-1)[:zeros] = 0.0
    return g


# ---------------------------------------------------------------- torch AdamW (foreach=False)
shapes = {"a": (7, 5), "b": (300,)}
p0 = {k: torch.randn(s, generator=gen).float() for k, s in shapes.items()}
grads = [{k: grad_like(s, zeros=3 if step == 1 else 0) for k, s in shapes.items()} for step in range(3)]
for k in shapes:
    blob.add(f"adamw/p0/{k}", p0[k])
    for s in range(3):
        blob.add(f"adamw/g{s + 1}/{k}", grads[s][k])

adamw_cases = [
    dict(name="lr1e-3_wd1e-2", lr=1e-3, weight_decay=1e-2, betas=(0.9, 0.999), eps=1e-8, amsgrad=False),
    dict(name="lr2e-4_wd1e-3", lr=2e-4, weight_decay=1e-3, betas=(0.9, 0.999), eps=1e-8, amsgrad=False),
    dict(name="lr1e-1_wd0", lr=0.1, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8, amsgrad=False),
    dict(name="lr5e-2_wd1e-1_b08_099_eps1e-6", lr=5e-2, weight_decay=0.1, betas=(0.8, 0.99), eps=1e-6, amsgrad=False),
    dict(name="lr1e-3_wd1e-2_amsgrad", lr=1e-3, weight_decay=1e-2, betas=(0.9, 0.999), eps=1e-8, amsgrad=True),
]
cases["adamw"] = []
for c in adamw_cases:
    params = {k: p0[k].clone().requires_grad_(True) for k in shapes}
    opt = torch.optim.AdamW(
        list(params.values()),
        lr=c["lr"],
        betas=c["betas"],
        eps=c["eps"],
        weight_decay=c["weight_decay"],
        amsgrad=c["amsgrad"],
        foreach=False,
    )
    for s in range(3):
        for k in shapes:
            params[k].grad = grads[s][k].clone()
        opt.step()
        if s == 0:
            for k in shapes:
                blob.add(f"adamw/{c['name']}/p1/{k}", params[k])
    for k in shapes:
        st = opt.state[params[k]]
        blob.add(f"adamw/{c['name']}/p3/{k}", params[k])
        blob.add(f"adamw/{c['name']}/m3/{k}", st["exp_avg"])
        blob.add(f"adamw/{c['name']}/v3/{k}", st["exp_avg_sq"])
        if c["amsgrad"]:
            blob.add(f"adamw/{c['name']}/vmax3/{k}", st["max_exp_avg_sq"])
    cases["adamw"].append({**c, "betas": list(c["betas"])})

# ---------------------------------------------------------------- clip_grad_norm_
clip_grads = {k: grad_like(s) for k, s in shapes.items()}
for k in shapes:
    blob.add(f"clip/g/{k}", clip_grads[k])
cases["clip"] = []
for max_norm in [1.0, 0.5, 1e6]:
    ps = {k: torch.zeros(s, requires_grad=True) for k, s in shapes.items()}
    for k in shapes:
        ps[k].grad = clip_grads[k].clone()
    total = torch.nn.utils.clip_grad_norm_(list(ps.values()), max_norm, foreach=False)
    tag = f"clip/max{max_norm:g}"
    for k in shapes:
        blob.add(f"{tag}/g/{k}", ps[k].grad)
    cases["clip"].append({"max_norm": max_norm, "total_norm": float(total), "tag": tag})

# ---------------------------------------------------------------- bitsandbytes 8-bit AdamW
bnb_info = {}
try:
    import bitsandbytes as bnb
    import bitsandbytes.functional as F

    dyn = F.create_dynamic_map(signed=True)
    udyn = F.create_dynamic_map(signed=False)
    blob.add("qmap/signed", dyn)
    blob.add("qmap/unsigned", udyn)

    qa = torch.randn(1000, generator=gen) * (10.0 ** (torch.rand(1000, generator=gen) * 4 - 3))
    qa[256:512] *= 1e-5
    qa[600:610] = 0.0
    blob.add("quant/x", qa)
    q, am = torch.ops.bitsandbytes.quantize_blockwise(qa, dyn, 256)
    blob.add("quant/signed/codes", q)
    blob.add("quant/signed/absmax", am)
    qu, amu = torch.ops.bitsandbytes.quantize_blockwise(qa * qa, udyn, 256)
    blob.add("quant/unsigned/codes", qu)
    blob.add("quant/unsigned/absmax", amu)

    big_shape, small_shape = (17, 260), (10, 10)  # 4420 = 17 full blocks + 68; 100 < 4096
    runs = [
        dict(name="bnb_defaults", lr=1e-3, weight_decay=1e-2, steps=5, record=[1, 2, 5]),
        dict(name="unsloth", lr=2e-4, weight_decay=1e-3, steps=3, record=[3]),
    ]
    bp0 = {"big": torch.randn(big_shape, generator=gen).float(), "small": torch.randn(small_shape, generator=gen).float()}
    bgrads = []
    for s in range(5):
        gs = {}
        for k, shp in (("big", big_shape), ("small", small_shape)):
            g = torch.randn(shp, generator=gen)
            flat = g.view(-1)
            if k == "big":
                # one scale per block of 256, 1e-6 … 10, and an all-zero block at step 1
                for b in range(0, flat.numel(), 256):
                    flat[b : b + 256] *= 10.0 ** (((b // 256) % 8) - 6)
                if s == 0:
                    flat[512:768] = 0.0
            gs[k] = g.float()
        bgrads.append(gs)
    for k in bp0:
        blob.add(f"adamw8bit/p0/{k}", bp0[k])
        for s in range(5):
            blob.add(f"adamw8bit/g{s + 1}/{k}", bgrads[s][k])
    cases["adamw8bit"] = []
    for r in runs:
        params = {k: bp0[k].clone().requires_grad_(True) for k in bp0}
        opt = bnb.optim.AdamW8bit(list(params.values()), lr=r["lr"], weight_decay=r["weight_decay"])
        for s in range(r["steps"]):
            for k in params:
                params[k].grad = bgrads[s][k].clone()
            opt.step()
            if s + 1 in r["record"]:
                tag = f"adamw8bit/{r['name']}/step{s + 1}"
                st = opt.state[params["big"]]
                blob.add(f"{tag}/p/big", params["big"])
                blob.add(f"{tag}/state1/big", st["state1"])
                blob.add(f"{tag}/absmax1/big", st["absmax1"])
                blob.add(f"{tag}/state2/big", st["state2"])
                blob.add(f"{tag}/absmax2/big", st["absmax2"])
                ss = opt.state[params["small"]]
                blob.add(f"{tag}/p/small", params["small"])
                blob.add(f"{tag}/state1/small", ss["state1"])
                blob.add(f"{tag}/state2/small", ss["state2"])
        cases["adamw8bit"].append(r)
    bnb_info = {"bitsandbytes": getattr(bnb, "__version__", "?"), "bnb_ok": True}
except Exception as e:  # keep the torch/transformers fixtures even if bnb cannot run here
    import traceback

    traceback.print_exc()
    bnb_info = {"bnb_ok": False, "bnb_error": repr(e)}

blob.write(os.path.join(OUT, "optim.bin"))
with open(os.path.join(OUT, "optim.json"), "w") as f:
    json.dump({"arrays": blob.index, "cases": cases}, f, separators=(",", ":"))

# ---------------------------------------------------------------- transformers schedules
import transformers  # noqa: E402
from transformers import get_scheduler  # noqa: E402

sched = []
for name in ["constant", "constant_with_warmup", "linear", "cosine"]:
    for lr, warmup, total in [(2e-4, 5, 60), (1e-3, 10, 100), (3e-4, 0, 25), (5e-5, 7, 7)]:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.AdamW([p], lr=lr)
        kwargs = {}
        if name != "constant":
            kwargs["num_warmup_steps"] = warmup
        if name in ("linear", "cosine"):
            kwargs["num_training_steps"] = total
        s = get_scheduler(name, opt, **kwargs)
        lrs = []
        # lrs[i] = the lr the i-th optimizer step (0-based) uses, as the Trainer applies it
        for _ in range(total + 3):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            s.step()
        sched.append({"name": name, "lr": lr, "warmup": warmup, "total": total, "lrs": [repr(x) for x in lrs]})
with open(os.path.join(OUT, "schedules.json"), "w") as f:
    json.dump(sched, f, separators=(",", ":"))

with open(os.path.join(OUT, "versions.json"), "w") as f:
    json.dump(
        {
            "script": "tools/reference/adamw_ref.py",
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "numpy": np.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            **bnb_info,
        },
        f,
        indent=2,
    )
print("ok", bnb_info, blob.size)
