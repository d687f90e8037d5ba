"""Reference fixtures for @qlora/lora, made by PEFT, transformers and bitsandbytes themselves.

Run on the GPU host (CPU, float32 everywhere), with the bitsandbytes checkout on the path:

  make:   TORCHDYNAMO_DISABLE=1 PYTHONPATH=.ref OUT=/tmp/out python3 tools/reference/peft_ref.py make
          Writes $OUT/lora-fixtures.tar holding:
          - layer.safetensors + layer.json: a PEFT LoRA `Linear` (plain and rsLoRA, B set randomly),
            its input x, output y and the merged weight of merge_and_unload().
          - tiny/: a tiny random LlamaForCausalLM (save_pretrained, safetensors).
          - adapter-plain/, adapter-rslora/: PEFT adapters (save_pretrained(safe_serialization=True))
            with random nonzero A and B; rslora uses a regex string for target_modules.
          - tiny-bnb/model.safetensors: the projections quantized by bitsandbytes (nf4, blocksize 64,
            double quant, default backend) in the transformers/bitsandbytes checkpoint layout
            (QuantState.as_dict(packed=True)), plus the dense rest.
          - logits.safetensors + model.json: logits on fixed ids of the base, both PEFT models, the
            merged model, and the model whose projections are bnb-dequantized; PEFT's trainable
            parameter counts.
          - versions.json.
  verify: ... peft_ref.py verify
          Loads the adapter our saveAdapter wrote (test-fixtures/lora/ts-adapter) with
          PeftModel.from_pretrained over test-fixtures/lora/tiny and records its logits; reads the
          bitsandbytes checkpoint our quantizedStateDict wrote (test-fixtures/lora/ts-nf4) with
          QuantState.from_dict + dequantize_4bit and compares with bitsandbytes' own quantization.
          Writes $OUT/ts-verify.safetensors + $OUT/ts-verify.json.
"""

import io
import json
import math
import os
import platform
import re
import sys
import tarfile

import numpy as np
import torch
import transformers
import peft
import safetensors
from safetensors.torch import save_file, load_file
from transformers import LlamaConfig, LlamaForCausalLM
from peft import LoraConfig, PeftModel, get_peft_model

OUT = os.environ.get("OUT", "/tmp/out")
WORK = "/tmp/peft_ref_work"
torch.set_grad_enabled(False)
SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
RSLORA_REGEX = r"model\.layers\.\d+\.(self_attn\.(q_proj|v_proj)|mlp\.down_proj)"
IDS = [[1, 17, 42, 99, 3, 64, 120, 7, 55, 88, 31, 2], [5, 9, 77, 101, 4, 13, 66, 90, 23, 47, 110, 8]]


def versions():
    out = {
        "script": "tools/reference/peft_ref.py",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
    }
    try:
        import bitsandbytes as bnb
        out["bitsandbytes"] = f"{bnb.__version__} (.ref checkout, pure-PyTorch default backend, CPU)"
    except Exception as e:  # noqa: BLE001
        out["bitsandbytes"] = f"unavailable: {e}"
    out["TORCHDYNAMO_DISABLE"] = os.environ.get("TORCHDYNAMO_DISABLE")
    return out


def tiny_config():
    kwargs = dict(
        vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=64,
        rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
        pad_token_id=None,
    )
    import inspect
    if "rope_parameters" in inspect.signature(LlamaConfig.__init__).parameters:
        kwargs["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0}
    else:
        kwargs["rope_theta"] = 10000.0
    config = LlamaConfig(**kwargs)
    config._attn_implementation = "eager"
    return config


def randomize(model, seed):
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if p.ndim == 1:
            p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=gen))
        else:
            std = 1.0 if "embed_tokens" in name else 2.0 / math.sqrt(p.shape[1])
            p.copy_(std * torch.randn(p.shape, generator=gen))


def randomize_lora(model, seed):
    """Nonzero B (and a fresh A) so the adapter changes the output."""
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if "lora_A" in name:
            p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))
        elif "lora_B" in name:
            p.copy_(0.5 * torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))


def logits_of(model):
    return model(torch.tensor(IDS)).logits.float().contiguous()


def layer_cases(work):
    class Holder(torch.nn.Module):
        def __init__(self, inf, outf):
            super().__init__()
            self.proj = torch.nn.Linear(inf, outf, bias=False)

        def forward(self, x):
            return self.proj(x)

    tensors, meta = {}, {}
    gen = torch.Generator().manual_seed(11)
    for name, r, alpha, rs in [("plain", 4, 8, False), ("rslora", 8, 12, True)]:
        inf, outf = 24, 20
        base = Holder(inf, outf)
        base.proj.weight.copy_(torch.randn(outf, inf, generator=gen) / math.sqrt(inf))
        w = base.proj.weight.detach().clone()
        pm = get_peft_model(base, LoraConfig(r=r, lora_alpha=alpha, target_modules=["proj"], use_rslora=rs))
        layer = pm.base_model.model.proj
        a = layer.lora_A["default"].weight
        b = layer.lora_B["default"].weight
        kaiming_bound_seen = float(a.abs().max())
        b_was_zero = bool((b == 0).all())
        b.copy_(torch.randn(b.shape, generator=gen) * 0.3)
        x = torch.randn(3, 5, inf, generator=gen)
        pm.eval()
        y = pm(x)
        merged = pm.merge_and_unload()
        tensors.update({
            f"{name}.x": x.contiguous(), f"{name}.weight": w.contiguous(),
            f"{name}.lora_A": a.detach().clone().contiguous(), f"{name}.lora_B": b.detach().clone().contiguous(),
            f"{name}.y": y.contiguous(), f"{name}.merged": merged.proj.weight.detach().clone().contiguous(),
        })
        meta[name] = {
            "r": r, "lora_alpha": alpha, "use_rslora": rs, "scaling": layer.scaling["default"],
            "in": inf, "out": outf, "max_abs_A_at_init": kaiming_bound_seen,
            "kaiming_bound": 1 / math.sqrt(inf), "B_zero_at_init": b_was_zero,
        }
    save_file(tensors, os.path.join(work, "layer.safetensors"))
    with open(os.path.join(work, "layer.json"), "w") as f:
        json.dump(meta, f, indent=1)


def bnb_checkpoint(model, work):
    import bitsandbytes.functional as F
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    out, deq_model = {}, {}
    for k, v in sd.items():
        if re.search(r"\.(q|k|v|o|gate|up|down)_proj\.weight$", k):
            packed, qs = F.quantize_4bit(v, blocksize=64, compress_statistics=True, quant_type="nf4")
            out[k] = packed.contiguous()
            for sk, sv in qs.as_dict(packed=True).items():
                out[f"{k}.{sk}"] = sv.detach().clone().contiguous()
            deq_model[k] = F.dequantize_4bit(packed, qs).contiguous()
        else:
            out[k] = v
            deq_model[k] = v
    return out, deq_model


def make():
    os.makedirs(WORK, exist_ok=True)
    layer_cases(WORK)

    config = tiny_config()
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    randomize(model, 1234)
    model.save_pretrained(os.path.join(WORK, "tiny"), safe_serialization=True)
    logits = {"base": logits_of(model)}
    info = {"ids": IDS, "rslora_regex": RSLORA_REGEX}

    # bitsandbytes NF4 checkpoint of the projections and the dequantized-weight reference logits.
    bnb_sd, deq_sd = bnb_checkpoint(model, WORK)
    os.makedirs(os.path.join(WORK, "tiny-bnb"), exist_ok=True)
    save_file(bnb_sd, os.path.join(WORK, "tiny-bnb", "model.safetensors"), metadata={"format": "pt"})
    deq_model = LlamaForCausalLM(config).eval()
    deq_model.load_state_dict(deq_sd)
    logits["nf4_dequantized"] = logits_of(deq_model)

    for name, cfg, seed in [
        ("plain", LoraConfig(r=4, lora_alpha=8, target_modules=SEVEN, lora_dropout=0.0, task_type="CAUSAL_LM"), 7),
        ("rslora", LoraConfig(r=8, lora_alpha=16, target_modules=RSLORA_REGEX, use_rslora=True,
                              lora_dropout=0.1, task_type="CAUSAL_LM"), 8),
    ]:
        base = LlamaForCausalLM.from_pretrained(os.path.join(WORK, "tiny"), attn_implementation="eager").eval()
        pm = get_peft_model(base, cfg)
        trainable, total = pm.get_nb_trainable_parameters()
        info[f"{name}_trainable"] = {"trainable": trainable, "all": total}
        randomize_lora(pm, seed)
        pm.eval()
        logits[name] = logits_of(pm)
        pm.save_pretrained(os.path.join(WORK, f"adapter-{name}"), safe_serialization=True)
        if name == "plain":
            merged = pm.merge_and_unload()
            logits["plain_merged"] = logits_of(merged)
            # PEFT on an NF4-dequantized base with the same adapter (merge into dequantized weights).
            deq_base = LlamaForCausalLM(config).eval()
            deq_base.load_state_dict(deq_sd)
            deq_pm = PeftModel.from_pretrained(deq_base, os.path.join(WORK, "adapter-plain")).eval()
            logits["plain_on_nf4_dequantized"] = logits_of(deq_pm)
    # A default-initialised adapter (B = 0) for the stock config file.
    pm = get_peft_model(LlamaForCausalLM(config), LoraConfig(r=16, lora_alpha=16, target_modules=SEVEN, task_type="CAUSAL_LM"))
    pm.save_pretrained(os.path.join(WORK, "adapter-default"), safe_serialization=True)
    os.remove(os.path.join(WORK, "adapter-default", "adapter_model.safetensors"))
    info["default_trainable"] = dict(zip(["trainable", "all"], pm.get_nb_trainable_parameters()))

    save_file({k: v for k, v in logits.items()}, os.path.join(WORK, "logits.safetensors"))
    with open(os.path.join(WORK, "model.json"), "w") as f:
        json.dump(info, f, indent=1)
    with open(os.path.join(WORK, "versions.json"), "w") as f:
        json.dump(versions(), f, indent=2)
    with tarfile.open(os.path.join(OUT, "lora-fixtures.tar"), "w") as tar:
        tar.add(WORK, arcname="lora")
    for root, _, files in os.walk(WORK):
        for fn in files:
            p = os.path.join(root, fn)
            print(os.path.relpath(p, WORK), os.path.getsize(p))
    print(json.dumps(info))


def verify():
    import bitsandbytes.functional as F
    fx = "test-fixtures/lora"
    out_t, out_j = {}, {"versions": versions()}
    base = LlamaForCausalLM.from_pretrained(os.path.join(fx, "tiny"), attn_implementation="eager").eval()
    pm = PeftModel.from_pretrained(base, os.path.join(fx, "ts-adapter")).eval()
    out_t["ts_adapter_logits"] = logits_of(pm)
    out_j["ts_adapter_config_loaded"] = {k: (sorted(v) if isinstance(v, set) else v)
                                         for k, v in pm.peft_config["default"].to_dict().items()
                                         if isinstance(v, (int, float, str, bool, list, set, type(None)))}

    # Our bitsandbytes-format checkpoint, read by bitsandbytes.
    ts = load_file(os.path.join(fx, "ts-nf4", "model.safetensors"))
    dense = load_file(os.path.join(fx, "tiny", "model.safetensors"))
    report = {}
    deq_sd = {}
    for k, v in dense.items():
        if not re.search(r"\.(q|k|v|o|gate|up|down)_proj\.weight$", k):
            deq_sd[k] = ts[k]
            continue
        qs_dict = {kk[len(k) + 1:]: vv for kk, vv in ts.items() if kk.startswith(k + ".")}
        qs = F.QuantState.from_dict(qs_dict=qs_dict, device=torch.device("cpu"))
        deq = F.dequantize_4bit(ts[k], qs)
        deq_sd[k] = deq
        bp, bqs = F.quantize_4bit(v, blocksize=64, compress_statistics=True, quant_type="nf4")
        bdeq = F.dequantize_4bit(bp, bqs)
        bd = bqs.as_dict(packed=True)
        report[k] = {
            "packed_equal": bool(torch.equal(bp, ts[k])),
            "state_equal": {kk: bool(torch.equal(vv, qs_dict[kk])) if kk in qs_dict else None for kk, vv in bd.items()},
            "dequant_max_abs_diff_vs_bnb": float((deq - bdeq).abs().max()),
        }
    config = tiny_config()
    m = LlamaForCausalLM(config).eval()
    m.load_state_dict(deq_sd)
    out_t["ts_nf4_logits"] = logits_of(m)
    out_j["ts_nf4"] = report
    save_file(out_t, os.path.join(OUT, "ts-verify.safetensors"))
    with open(os.path.join(OUT, "ts-verify.json"), "w") as f:
        json.dump(out_j, f, indent=1)
    print(json.dumps(out_j)[:4000])


if __name__ == "__main__":
    {"make": make, "verify": verify}[sys.argv[1]]()
