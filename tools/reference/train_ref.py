"""Reference training run for @qlora/trainer's `train()`: PyTorch + PEFT, CPU, float32.

Run on the GPU host (the GPU is not used; CPU torch gives the reproducible float32 reference):

  PYTHONUNBUFFERED=1 OUT=/tmp/out python3 tools/reference/train_ref.py

Part 1 (always): the tiny random Llama of test-fixtures/trainer/llama3-gqa-tied with a PEFT
LoRA (r 4, alpha 8, dropout 0, all seven projections). A and B are set from a seeded numpy
stream (B nonzero, so A gets a gradient from step 1; PEFT's default B = 0 would give A a zero
gradient at step 1) and saved as initial_adapter/. Eight fixed token sequences with -100 labels
on a prompt part, right-padded with id 0, train for 20 optimizer steps in dataset order (no
shuffle): batch 2 x accumulation 2; per window the loss is sum(cross-entropy) / (target tokens of
the whole window), as transformers' ForCausalLMLoss with num_items_in_batch (the HF Trainer
default today); clip_grad_norm_(1.0); torch.optim.AdamW(foreach=False, lr 2e-3, wd 0.01);
get_scheduler("linear", warmup 3, total 20). Per-step losses, grad norms, learning rates and the
final adapter (final_adapter/) go to $OUT/train-fixtures.tar (extract into test-fixtures/trainer/).

Part 2 (when .carry/train/ exists): loads the stories260K HF folder our convertLlama2c wrote and
the adapter our train() saved (.carry/train/stories260K, .carry/train/adapter) with
PeftModel.from_pretrained, and computes the mean token loss of the text in
.carry/train/text.json, with and without the adapter, for comparison with ours ($OUT/stories.json).
"""

import io
import json
import math
import os
import platform
import shutil
import tarfile

import numpy as np
import torch
import torch.nn.functional as F
import transformers
import peft
import safetensors
from transformers import LlamaForCausalLM, get_scheduler
from peft import LoraConfig, PeftModel, get_peft_model

OUT = os.environ.get("OUT", "/tmp/out")
WORK = "/tmp/train_ref_work"
SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
CONFIG = {
    "r": 4,
    "lora_alpha": 8,
    "lr": 2e-3,
    "weight_decay": 0.01,
    "betas": [0.9, 0.999],
    "eps": 1e-8,
    "warmup_steps": 3,
    "max_steps": 20,
    "batch_size": 2,
    "gradient_accumulation_steps": 2,
    "max_grad_norm": 1.0,
    "pad_token_id": 0,
    "schedule": "linear",
}


def versions():
    return {
        "script": "tools/reference/train_ref.py",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
    }


def make_sequences(vocab):
    rng = np.random.RandomState(1234)
    out = []
    for i in range(8):
        length = int(rng.randint(6, 21))
        ids = [1] + [int(x) for x in rng.randint(3, vocab, size=length - 1)]
        prompt = int(rng.randint(1, length - 2))
        labels = [-100] * prompt + ids[prompt:]
        out.append({"input_ids": ids, "labels": labels})
    return out


def collate(seqs, pad):
    width = max(len(s["input_ids"]) for s in seqs)
    ids = [s["input_ids"] + [pad] * (width - len(s["input_ids"])) for s in seqs]
    labels = [s["labels"] + [-100] * (width - len(s["labels"])) for s in seqs]
    mask = [[1] * len(s["input_ids"]) + [0] * (width - len(s["input_ids"])) for s in seqs]
    return torch.tensor(ids), torch.tensor(labels), torch.tensor(mask)


def part1():
    torch.manual_seed(0)
    src = "test-fixtures/trainer/llama3-gqa-tied"
    model = LlamaForCausalLM.from_pretrained(src, dtype=torch.float32, attn_implementation="eager")
    cfg = LoraConfig(r=CONFIG["r"], lora_alpha=CONFIG["lora_alpha"], lora_dropout=0.0, target_modules=SEVEN)
    model = get_peft_model(model, cfg)
    rng = np.random.RandomState(7)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_A" in name:
                p.copy_(torch.from_numpy(rng.uniform(-0.2, 0.2, size=tuple(p.shape)).astype(np.float32)))
            elif "lora_B" in name:
                p.copy_(torch.from_numpy(rng.normal(0, 0.05, size=tuple(p.shape)).astype(np.float32)))
    root = os.path.join(WORK, "train")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    model.save_pretrained(os.path.join(root, "initial_adapter"))
    model.train()
    params = [p for _, p in model.named_parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=CONFIG["lr"], betas=tuple(CONFIG["betas"]), eps=CONFIG["eps"],
                            weight_decay=CONFIG["weight_decay"], foreach=False)
    sched = get_scheduler("linear", opt, num_warmup_steps=CONFIG["warmup_steps"],
                          num_training_steps=CONFIG["max_steps"])
    seqs = make_sequences(model.config.vocab_size)
    bs, ga = CONFIG["batch_size"], CONFIG["gradient_accumulation_steps"]
    micro = [seqs[i:i + bs] for i in range(0, len(seqs), bs)]
    windows = [micro[i:i + ga] for i in range(0, len(micro), ga)]
    losses, norms, lrs = [], [], []
    for step in range(CONFIG["max_steps"]):
        window = windows[step % len(windows)]
        n_items = sum(sum(1 for l in s["labels"][1:] if l != -100) for mb in window for s in mb)
        lrs.append(opt.param_groups[0]["lr"])
        step_loss = 0.0
        for mb in window:
            ids, labels, mask = collate(mb, CONFIG["pad_token_id"])
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
            vocab = logits.shape[-1]
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, vocab), labels[:, 1:].reshape(-1),
                                   ignore_index=-100, reduction="sum") / n_items
            loss.backward()
            step_loss += loss.item()
        norm = torch.nn.utils.clip_grad_norm_(params, CONFIG["max_grad_norm"])
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(step_loss)
        norms.append(float(norm))
        print(f"step {step + 1} loss {step_loss:.6f} norm {float(norm):.6f}")
    model.save_pretrained(os.path.join(root, "final_adapter"))
    ref = {"config": CONFIG, "sequences": seqs, "losses": losses, "grad_norms": norms, "lrs": lrs,
           "base_model": src}
    with open(os.path.join(root, "reference.json"), "w") as f:
        json.dump(ref, f)
    with open(os.path.join(root, "versions.json"), "w") as f:
        json.dump(versions(), f, indent=2)
    tar_path = os.path.join(OUT, "train-fixtures.tar")
    with tarfile.open(tar_path, "w") as tar:
        tar.add(root, arcname="train")


def part2():
    carry = ".carry/train"
    if not os.path.isdir(carry):
        print("no .carry/train: part 2 skipped")
        return
    text = json.load(open(os.path.join(carry, "text.json")))
    base = LlamaForCausalLM.from_pretrained(os.path.join(carry, "stories260K"), dtype=torch.float32)
    base.eval()

    def mean_loss(m):
        total, count = 0.0, 0
        with torch.no_grad():
            for s in text["sequences"]:
                ids = torch.tensor([s["input_ids"]])
                labels = torch.tensor([s["labels"]])
                logits = m(input_ids=ids).logits.float()
                total += F.cross_entropy(logits[0, :-1], labels[0, 1:], ignore_index=-100,
                                         reduction="sum").item()
                count += int((labels[0, 1:] != -100).sum())
        return total / count

    base_loss = mean_loss(base)
    tuned = PeftModel.from_pretrained(base, os.path.join(carry, "adapter"))
    tuned.eval()
    tuned_loss = mean_loss(tuned)
    out = {"peft_base_loss": base_loss, "peft_tuned_loss": tuned_loss,
           "ts_first_step_loss": text.get("first_step_loss"), "ts_tuned_loss": text.get("tuned_loss"),
           "versions": versions()}
    print(json.dumps(out))
    with open(os.path.join(OUT, "stories.json"), "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    part1()
    try:
        part2()
    except Exception:  # part 1's fixtures are already written; report and fail visibly
        import traceback
        traceback.print_exc()
        with open(os.path.join(OUT, "stories.json"), "w") as f:
            json.dump({"error": traceback.format_exc()}, f)
