"""PyTorch side of the GPU-host benchmark (run by tools/gpu/run-on-gpu.sh).

Makes a Llama-3.2-1B-shaped random LlamaForCausalLM with transformers, saves it in bf16 (as Meta
ships it) with save_pretrained, times forward passes of B x T tokens in strict fp32 (TF32 off) and
in bf16 (median of several after warm-up, torch.cuda.synchronize around each), and writes the
fp32 last-position logits of the first rows of the benchmark ids for the Node side to compare.

  python3 tools/gpu/torch_bench.py --model-dir /tmp/llama1b --json $OUT/torch.json --ref /tmp/llama1b-ref.bin
  python3 tools/gpu/torch_bench.py --load-rss /tmp/llama1b   # peak host RSS of from_pretrained (f32, CPU)
  ... --no-forward --train   # skip the forward timings; PyTorch + PEFT LoRA training references

The training reference (--train): the saved folder reloaded in bf16 and in strict fp32 (TF32 off),
PEFT LoRA r 16, alpha 16, dropout 0 on all seven projections (adapter weights float32, PEFT's
default autocast), torch.optim.AdamW (lr 2e-4, weight decay 0.01), clip_grad_norm_ 1.0, batch 8 x
seq 512 of the benchmark ids with labels = ids, gradient checkpointing (non-reentrant) on and off;
one warm-up step then the median of --train-steps, torch.cuda.synchronize around each;
torch.cuda.max_memory_allocated over the timed steps.
"""

import argparse
import gc
import inspect
import json
import os
import resource
import statistics
import sys
import time

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

# Llama 3.2 1B (meta-llama/Llama-3.2-1B config.json).
LLAMA3_ROPE = {
    "rope_type": "llama3",
    "factor": 32.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}


def llama_1b_config() -> LlamaConfig:
    kwargs = dict(
        hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
        num_key_value_heads=8, head_dim=64, vocab_size=128256, max_position_embeddings=131072,
        rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=128000, eos_token_id=128001,
        attention_bias=False, mlp_bias=False, hidden_act="silu",
    )
    if "rope_parameters" in inspect.signature(LlamaConfig.__init__).parameters:
        kwargs["rope_parameters"] = {**LLAMA3_ROPE, "rope_theta": 500000.0}
    else:
        kwargs["rope_theta"] = 500000.0
        kwargs["rope_scaling"] = LLAMA3_ROPE
    return LlamaConfig(**kwargs)


def bench_ids(batch: int, seq: int, vocab: int) -> torch.Tensor:
    """The ids tools/gpu/gpu-bench.ts uses too."""
    rows = [[(b * 7919 + t * 104729 + 12345) % vocab for t in range(seq)] for b in range(batch)]
    return torch.tensor(rows, dtype=torch.long)


def time_forward(model, ids, logits_to_keep: int, warmup: int, iters: int) -> dict:
    def once() -> float:
        torch.cuda.synchronize()
        start = time.perf_counter()
        out = model(input_ids=ids, logits_to_keep=logits_to_keep, use_cache=False)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        del out
        return seconds

    for _ in range(warmup):
        once()
    samples = sorted(once() for _ in range(iters))
    median = statistics.median(samples)
    return {"samples": samples, "medianSeconds": median, "tokensPerSecond": ids.numel() / median}


LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def train_reference(model_dir: str, dtype, checkpointing: bool, ids, steps: int) -> dict:
    """PyTorch + PEFT LoRA steps on the saved folder; tokens/s and peak CUDA memory."""
    from peft import LoraConfig, get_peft_model

    torch.cuda.empty_cache()
    started = time.time() * 1000
    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=dtype).cuda()
    model.config.use_cache = False
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=16, lora_dropout=0.0, bias="none",
                                             target_modules=LORA_TARGETS, task_type="CAUSAL_LM"))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=2e-4, weight_decay=0.01)
    entry = {
        "dtype": str(dtype).replace("torch.", ""),
        "checkpointing": checkpointing,
        "trainable": sum(p.numel() for p in params),
        "adapterDtype": str(params[0].dtype).replace("torch.", ""),
        "allocatedBeforeMiB": torch.cuda.memory_allocated() / 2**20,
        "startedAtMs": started,
    }
    torch.cuda.reset_peak_memory_stats()
    samples, losses, norms = [], [], []
    for step in range(steps + 1):
        torch.cuda.synchronize()
        start = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        losses.append(loss.item())
        norms.append(norm.item())
        if step == 0:
            entry["firstStepSeconds"] = seconds
        else:
            samples.append(seconds)
    median = statistics.median(samples)
    entry.update({
        "samples": samples, "losses": losses, "gradNorms": norms, "medianSeconds": median,
        "tokensPerSecond": ids.numel() / median,
        "maxAllocatedMiB": torch.cuda.max_memory_allocated() / 2**20,
        "maxReservedMiB": torch.cuda.max_memory_reserved() / 2**20,
        "endedAtMs": time.time() * 1000,
    })
    del model, optimizer, params, loss
    torch.cuda.empty_cache()
    return entry


def bench(args) -> None:
    results = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": sys.version.split()[0],
        "gpu": torch.cuda.get_device_name(0),
        "batch": args.batch,
        "seq": args.seq,
    }

    def save():
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)

    if args.matmuls:
        results["matmulReference"] = matmul_reference(args.matmul_rows)
        save()
        for row in results["matmulReference"]["matmuls"]:
            print(f"[torch] cuBLAS fp32 {row['name']}: {row['tflops']:.1f} TFLOP/s", flush=True)
        print(f"[torch] copy {results['matmulReference']['copyGBps']:.0f} GB/s", flush=True)

    if args.int8:
        results["int8Reference"] = int8_reference(args.matmul_rows)
        save()
        for row in results["int8Reference"]["matmuls"]:
            print(f"[torch] torch._int_mm {row['name']}: {row.get('tops', 0):.1f} TOPS {row.get('error', '')}", flush=True)

    config = llama_1b_config()
    torch.manual_seed(0)
    start = time.perf_counter()
    with torch.device("cuda"):
        model = LlamaForCausalLM(config)
    # Round the weights to bf16 once (as Meta ships them); the fp32 runs and the Node side then
    # read the same numbers from the saved file.
    model = model.to(torch.bfloat16)
    model.save_pretrained(args.model_dir, safe_serialization=True)
    results["saveSeconds"] = time.perf_counter() - start
    results["parameters"] = sum(p.numel() for p in model.parameters())
    results["files"] = sorted(os.listdir(args.model_dir))
    results["attnImplementation"] = model.config._attn_implementation
    save()
    print(f"[torch] saved {results['parameters'] / 1e9:.3f} B parameters in bf16 to {args.model_dir} "
          f"({results['files']}) in {results['saveSeconds']:.1f} s", flush=True)

    ids = bench_ids(args.batch, args.seq, config.vocab_size).cuda()
    # Reload the saved folder in float32 rather than calling model.float(): model.to(bfloat16)
    # also rounded the rotary inv_freq buffer to bf16, and .float() does not undo that (it moved
    # the last-position logits by 4e-2 relative in the first run). from_pretrained recomputes it.
    del model
    torch.cuda.empty_cache()
    model = LlamaForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32).cuda()
    rotary = getattr(model.model, "rotary_emb", None)
    results["invFreqDtype"] = str(getattr(rotary, "inv_freq", torch.empty(0)).dtype)
    model.eval()
    with torch.inference_mode():
        # strict fp32: no TF32 anywhere
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
        ref = model(input_ids=ids[: args.ref_rows], logits_to_keep=1, use_cache=False).logits
        ref.float().cpu().numpy().astype("<f4").tofile(args.ref)
        print(f"[torch] wrote fp32 last-position logits of {args.ref_rows} rows to {args.ref}", flush=True)
        if args.forward:
            for name, keep in (("LastOnly", 1), ("Full", 0)):
                results[f"fp32{name}"] = time_forward(model, ids, keep, args.warmup, args.iters)
                save()
                print(f"[torch] fp32 strict, {name}: {results[f'fp32{name}']['tokensPerSecond']:.0f} tokens/s", flush=True)
            # TF32 (PyTorch's reduced-precision fp32 matmuls: 10-bit significands, as f16's)
            torch.backends.cuda.matmul.allow_tf32 = True
            for name, keep in (("LastOnly", 1), ("Full", 0)):
                results[f"tf32{name}"] = time_forward(model, ids, keep, args.warmup, args.iters)
                save()
                print(f"[torch] tf32, {name}: {results[f'tf32{name}']['tokensPerSecond']:.0f} tokens/s", flush=True)
            torch.backends.cuda.matmul.allow_tf32 = False
            # bf16, then fp16 (from the bf16 weights, which the checkpoint holds exactly): speed,
            # and the last-position logits against the fp32 reference (max |Δ| / max |ref|, as
            # the Node side reports), to set the f16 tensor-core path's accuracy in context.
            for half in (torch.bfloat16, torch.float16):
                label = "bf16" if half == torch.bfloat16 else "fp16"
                model = model.to(half)
                got = model(input_ids=ids[: args.ref_rows], logits_to_keep=1, use_cache=False).logits.float()
                delta = (got - ref.float()).abs().max() / ref.float().abs().max()
                agree = (got.argmax(-1) == ref.argmax(-1)).float().sum().item()
                results[f"{label}LastLogits"] = {"relError": delta.item(), "argmaxAgree": agree, "rows": args.ref_rows}
                for name, keep in (("LastOnly", 1), ("Full", 0)):
                    results[f"{label}{name}"] = time_forward(model, ids, keep, args.warmup, args.iters)
                    save()
                    print(f"[torch] {label}, {name}: {results[f'{label}{name}']['tokensPerSecond']:.0f} tokens/s", flush=True)
    results["cudaMaxAllocatedMiB"] = torch.cuda.max_memory_allocated() / 2**20
    save()
    if not args.train:
        return
    import peft

    del model
    torch.cuda.empty_cache()
    results["peft"] = peft.__version__
    train_ids = bench_ids(args.train_batch, args.train_seq, config.vocab_size).cuda()
    results["train"] = {"batch": args.train_batch, "seq": args.train_seq}
    # Checkpointing on first (the Node side's first stage too), bf16 before strict fp32.
    for checkpointing in (True, False):
        for dtype in (torch.bfloat16, torch.float32):
            key = f"{'bf16' if dtype == torch.bfloat16 else 'fp32'}_ckpt_{'on' if checkpointing else 'off'}"
            try:
                results["train"][key] = train_reference(args.model_dir, dtype, checkpointing, train_ids, args.train_steps)
            except Exception as error:  # an OOM or a PEFT change: record it, keep going
                results["train"][key] = {"error": repr(error)}
            gc.collect()
            torch.cuda.empty_cache()
            save()
            entry = results["train"][key]
            print(f"[torch] PEFT LoRA {key}: {entry.get('tokensPerSecond', 0):.0f} tokens/s, "
                  f"max allocated {entry.get('maxAllocatedMiB', 0):.0f} MiB, losses {entry.get('losses')} "
                  f"{entry.get('error', '')}", flush=True)


# The matmuls of one training step at 4096 tokens, as tools/gpu/gpu-bench.ts --stages kernels
# times them: (name, K, N, layout); 'nk' multiplies by the transpose of an [N, K] weight.
MATMUL_SHAPES = [
    ("q/o proj fwd", 2048, 2048, "nk"),
    ("k/v proj fwd", 2048, 512, "nk"),
    ("gate/up fwd", 2048, 8192, "nk"),
    ("down fwd", 8192, 2048, "nk"),
    ("gate/up dx", 8192, 2048, "kn"),
    ("down dx", 2048, 8192, "kn"),
    ("lm_head fwd", 2048, 128256, "nk"),
    ("lm_head dx", 128256, 2048, "kn"),
]


def cuda_seconds(fn, min_seconds: float = 0.25) -> float:
    """Median seconds per call over 5 batches of calls (CUDA events), after 2 warm-up calls."""
    for _ in range(2):
        fn()
    torch.cuda.synchronize()
    reps, samples = 1, []
    while len(samples) < 5:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        torch.cuda.synchronize()
        seconds = start.elapsed_time(end) / 1000
        if seconds < min_seconds / 5 and reps < 256:
            reps *= 2
            continue
        samples.append(seconds / reps)
    samples.sort()
    return samples[2]


def matmul_reference(rows: int) -> dict:
    """cuBLAS strict fp32 (TF32 off) on the kernel benchmark's shapes, and a 16 M-float copy."""
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    n = 8192 * 2048
    x = torch.rand(n, device="cuda")
    y = torch.empty_like(x)
    copy = cuda_seconds(lambda: y.copy_(x))
    out = {"rows": rows, "copyGBps": 8 * n / copy / 1e9, "matmuls": []}
    del x, y
    for name, k, n_out, layout in MATMUL_SHAPES:
        a = torch.rand(rows, k, device="cuda") * 2 - 1
        b = (torch.rand(n_out, k, device="cuda") if layout == "nk" else torch.rand(k, n_out, device="cuda")) * 0.1 - 0.05
        fn = (lambda: a @ b.t()) if layout == "nk" else (lambda: a @ b)
        seconds = cuda_seconds(fn)
        out["matmuls"].append({"name": name, "m": rows, "k": k, "n": n_out, "layout": layout,
                               "tflops": 2 * rows * k * n_out / seconds / 1e12})
        del a, b
        torch.cuda.empty_cache()
    torch.backends.cuda.matmul.allow_tf32 = previous
    return out


# The forward shapes of the W8A8 study (tools/gpu/gpu-bench.ts --stages int8-kernels): (name, K, N).
INT8_SHAPES = [
    ("q/o proj", 2048, 2048),
    ("k/v proj", 2048, 512),
    ("gate/up", 2048, 8192),
    ("down", 8192, 2048),
    ("lm_head", 2048, 128256),
]


def int8_reference(rows: int) -> dict:
    """torch._int_mm (cuBLASLt int8 x int8 -> int32 on the tensor cores) on the W8A8 shapes."""
    out = {"rows": rows, "matmuls": []}
    for name, k, n_out in INT8_SHAPES:
        a = torch.randint(-127, 128, (rows, k), dtype=torch.int8, device="cuda")
        w = torch.randint(-127, 128, (n_out, k), dtype=torch.int8, device="cuda")
        entry = {"name": name, "m": rows, "k": k, "n": n_out}
        try:
            seconds = cuda_seconds(lambda: torch._int_mm(a, w.t()))
            entry["tops"] = 2 * rows * k * n_out / seconds / 1e12
        except Exception as error:  # noqa: BLE001 - recorded, the other shapes still run
            entry["error"] = str(error)
        out["matmuls"].append(entry)
        del a, w
        torch.cuda.empty_cache()
    return out


def load_rss(model_dir: str) -> None:
    """Peak host RSS of transformers loading the same folder in float32 on the CPU."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peakRssMiB": peak, "rssBeforeLoadMiB": before, "seconds": seconds,
                      "parameters": sum(p.numel() for p in model.parameters())}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", default="/tmp/llama1b")
    parser.add_argument("--json", default="torch.json")
    parser.add_argument("--ref", default="/tmp/llama1b-ref.bin")
    parser.add_argument("--ref-rows", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--load-rss")
    parser.add_argument("--no-forward", dest="forward", action="store_false")
    parser.add_argument("--train", action="store_true")
    parser.add_argument("--matmuls", action="store_true")
    parser.add_argument("--int8", action="store_true")
    parser.add_argument("--matmul-rows", type=int, default=4096)
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--train-seq", type=int, default=512)
    parser.add_argument("--train-steps", type=int, default=5)
    args = parser.parse_args()
    if args.load_rss:
        load_rss(args.load_rss)
    else:
        bench(args)


if __name__ == "__main__":
    main()
