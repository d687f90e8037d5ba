"""PyTorch scoring of the exact HellaSwag requests the Node side scored (same token ids), timed.

  python3 tools/gpu/torch_hellaswag.py --model-dir /tmp/llama1b --pairs pairs.json --json out.json

lm-eval HFLM batching: requests sorted by total length (longest first), input
(ctx + cont)[-(max_length + 1):][:-1], right padding, log-softmax over the vocabulary at the
continuation positions, sum of the target log-probabilities. Like the Node side, only the
continuation positions go through lm_head. --sample K times every K-th batch only (the time of
the full set is extrapolated from them; stated in the JSON); strict fp32 (TF32 off) and bf16.
"""

import argparse
import json
import time

import torch
from transformers import LlamaForCausalLM


def batches(pairs, batch_size, max_length):
    order = sorted(range(len(pairs)), key=lambda i: -(len(pairs[i][0]) + len(pairs[i][1])))
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        inputs, conts = [], []
        for i in chunk:
            whole = list(pairs[i][0]) + list(pairs[i][1])
            inputs.append(whole[-(max_length + 1):][:-1])
            conts.append(pairs[i][1])
        yield chunk, inputs, conts


@torch.inference_mode()
def score(model, pairs, batch_size, sample, max_length):
    device = next(model.parameters()).device
    total_batches = (len(pairs) + batch_size - 1) // batch_size
    timed, tokens_timed, tokens_all, seconds = 0, 0, 0, 0.0
    logprobs = {}
    for b, (chunk, inputs, conts) in enumerate(batches(pairs, batch_size, max_length)):
        tokens = sum(len(x) for x in inputs)
        tokens_all += tokens
        if b % sample != 0:
            continue
        width = max(len(x) for x in inputs)
        ids = torch.tensor([x + [0] * (width - len(x)) for x in inputs], device=device)
        rows, cols, targets = [], [], []
        for r, (x, c) in enumerate(zip(inputs, conts)):
            for j, t in enumerate(c):
                rows.append(r)
                cols.append(len(x) - len(c) + j)
                targets.append(t)
        torch.cuda.synchronize()
        start = time.perf_counter()
        hidden = model.model(input_ids=ids, use_cache=False).last_hidden_state
        picked = hidden[torch.tensor(rows, device=device), torch.tensor(cols, device=device)]
        logits = model.lm_head(picked).float()
        lp = torch.log_softmax(logits, dim=-1)
        values = lp[torch.arange(len(targets), device=device), torch.tensor(targets, device=device)].cpu()
        seconds += time.perf_counter() - start
        timed += 1
        tokens_timed += tokens
        at = 0
        for r, i in enumerate(chunk):
            n = len(conts[r])
            logprobs[i] = float(values[at:at + n].sum())
            at += n
    return {
        "batches": total_batches,
        "timedBatches": timed,
        "timedTokens": tokens_timed,
        "tokens": tokens_all,
        "timedSeconds": seconds,
        "tokensPerSecond": tokens_timed / seconds,
        "extrapolatedSeconds": seconds * tokens_all / tokens_timed,
    }, logprobs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", default="/tmp/llama1b")
    parser.add_argument("--pairs", required=True)
    parser.add_argument("--json", required=True)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--sample", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=2048)
    args = parser.parse_args()
    with open(args.pairs) as f:
        pairs = json.load(f)
    out = {"requests": len(pairs), "batch": args.batch, "sample": args.sample, "torch": torch.__version__}
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    model = LlamaForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32).cuda().eval()
    score(model, pairs[: args.batch * 2], args.batch, 1, args.max_length)  # warm-up
    out["fp32"], fp32 = score(model, pairs, args.batch, args.sample, args.max_length)
    print(f"[torch] hellaswag fp32 strict: {out['fp32']['tokensPerSecond']:.0f} tokens/s, "
          f"full set ≈ {out['fp32']['extrapolatedSeconds']:.0f} s", flush=True)
    model = model.to(torch.bfloat16)
    score(model, pairs[: args.batch * 2], args.batch, 1, args.max_length)
    out["bf16"], _ = score(model, pairs, args.batch, args.sample, args.max_length)
    print(f"[torch] hellaswag bf16: {out['bf16']['tokensPerSecond']:.0f} tokens/s, "
          f"full set ≈ {out['bf16']['extrapolatedSeconds']:.0f} s", flush=True)
    # The Node side's log-probabilities of the same requests (third field of each pair).
    diffs = [abs(pairs[i][2] - v) / max(1.0, abs(v)) for i, v in fp32.items() if len(pairs[i]) > 2]
    worst = sorted(((abs(pairs[i][2] - v) / max(1.0, abs(v)), i) for i, v in fp32.items() if len(pairs[i]) > 2),
                   reverse=True)[:8]
    out["nodeVsTorchFp32"] = {"compared": len(diffs), "maxRelDiff": max(diffs) if diffs else None,
                              "meanRelDiff": sum(diffs) / len(diffs) if diffs else None,
                              "worst": [{"index": i, "node": pairs[i][2], "torch": fp32[i], "context": len(pairs[i][0]),
                                         "continuation": len(pairs[i][1])} for _, i in worst]}
    print(f"[torch] Node vs PyTorch fp32 log-probabilities: {out['nodeVsTorchFp32']}", flush=True)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
