"""Reference fixtures for @qlora/trainer: tiny random Llamas run through transformers.

Run on the GPU host (CPU is fine, float32 everywhere):

    OUT=/tmp/out python3 tools/reference/llama_logits.py [tinyllama_tokenizer_dir] [stories260K_dir]

Writes $OUT/trainer-fixtures.tar holding, per case, the save_pretrained() model dir
(config.json, model.safetensors, generation_config.json) plus reference.json and logits.bin
(float32, little endian; offsets in reference.json are in floats). Also versions.json.
"""

import inspect
import io
import json
import math
import os
import struct
import sys
import tarfile

import numpy as np
import torch
import transformers
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

OUT = os.environ.get("OUT", "/tmp/out")
TOK_DIR = sys.argv[1] if len(sys.argv) > 1 else None
STORIES_DIR = sys.argv[2] if len(sys.argv) > 2 else None
WORK = os.path.join(OUT, "work")
os.makedirs(WORK, exist_ok=True)
torch.set_grad_enabled(False)

LLAMA3_SMALL = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 64,
}

CASES = [
    dict(
        name="llama3-gqa-tied",
        vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        rope_theta=10000.0, rope_scaling=LLAMA3_SMALL, tie_word_embeddings=True,
        lengths=[1, 7, 150], max_length=64,
    ),
    dict(
        name="mqa-untied",
        vocab_size=320, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=1, head_dim=None,
        rope_theta=10000.0, rope_scaling=None, tie_word_embeddings=False,
        lengths=[1, 33, 150], max_length=256,
    ),
    dict(
        name="mha-headdim-llama3",
        vocab_size=200, hidden_size=32, intermediate_size=80, num_hidden_layers=3,
        num_attention_heads=2, num_key_value_heads=2, head_dim=24,
        rope_theta=500000.0,
        rope_scaling={**LLAMA3_SMALL, "factor": 32.0, "original_max_position_embeddings": 32},
        tie_word_embeddings=False,
        lengths=[2, 150], max_length=256,
    ),
]
if TOK_DIR:
    CASES.append(dict(
        name="tinyllama-tok",
        vocab_size=32000, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, head_dim=None,
        rope_theta=10000.0, rope_scaling=None, tie_word_embeddings=True,
        lengths=[], max_length=2048,
    ))


def make_config(case):
    kwargs = dict(
        vocab_size=case["vocab_size"], hidden_size=case["hidden_size"],
        intermediate_size=case["intermediate_size"], num_hidden_layers=case["num_hidden_layers"],
        num_attention_heads=case["num_attention_heads"],
        num_key_value_heads=case["num_key_value_heads"], max_position_embeddings=256,
        rms_norm_eps=1e-5, tie_word_embeddings=case["tie_word_embeddings"],
        bos_token_id=1, eos_token_id=2, pad_token_id=None,
    )
    if case["name"] == "tinyllama-tok":
        kwargs["max_position_embeddings"] = 2048
    if case["head_dim"] is not None:
        kwargs["head_dim"] = case["head_dim"]
    params = inspect.signature(LlamaConfig.__init__).parameters
    if "rope_parameters" in params:
        rp = {"rope_type": "default", "rope_theta": case["rope_theta"]}
        if case["rope_scaling"]:
            rp = {**case["rope_scaling"], "rope_theta": case["rope_theta"]}
        kwargs["rope_parameters"] = rp
    else:
        kwargs["rope_theta"] = case["rope_theta"]
        kwargs["rope_scaling"] = case["rope_scaling"]
    return LlamaConfig(**kwargs)


def randomize(model, seed):
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if p.ndim == 1:  # RMSNorm weights: not ones, so a missing weight multiply shows
            p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=gen))
        else:
            fan_in = p.shape[1]
            std = 1.0 if "embed_tokens" in name else 2.0 / math.sqrt(fan_in)
            p.copy_(std * torch.randn(p.shape, generator=gen))


class Floats:
    def __init__(self):
        self.chunks = []
        self.n = 0

    def add(self, arr):
        arr = np.ascontiguousarray(arr, dtype="<f4").reshape(-1)
        off = self.n
        self.chunks.append(arr)
        self.n += arr.size
        return off

    def bytes(self):
        return b"".join(c.tobytes() for c in self.chunks) if self.chunks else b""


def loglikelihood(model, ctx, cont, max_length):
    """lm-eval HFLM._loglikelihood_tokens for one request, float32."""
    whole = (ctx + cont)[-(max_length + 1):][:-1]
    logits = model(torch.tensor([whole])).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)[-len(cont):]
    target = torch.tensor(cont)
    ll = float(logp.gather(1, target[:, None]).sum())
    greedy = bool((logp.argmax(-1) == target).all())
    return ll, greedy, len(whole)


def min_margin(scores):
    margins = []
    for s in scores:
        top = torch.topk(s.float(), 2, dim=-1).values
        margins.append(float((top[:, 0] - top[:, 1]).min()))
    return min(margins)


def run_case(case, seed):
    config = make_config(case)
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    randomize(model, seed)
    if case["tie_word_embeddings"] and not torch.equal(model.lm_head.weight,
                                                       model.model.embed_tokens.weight):
        print("WARNING: lm_head not tied; copying")
        model.lm_head.weight = model.model.embed_tokens.weight
    out_dir = os.path.join(WORK, case["name"])
    model.save_pretrained(out_dir, safe_serialization=True)
    inv = getattr(model.model.rotary_emb, "inv_freq", None)
    inv_freq = [] if inv is None else inv.float().numpy().tolist()
    gen = torch.Generator().manual_seed(seed + 1)
    V = case["vocab_size"]
    floats = Floats()
    ref = {"case": case["name"], "inv_freq": inv_freq, "max_length": case["max_length"]}

    # 1. Logits of single sequences.
    ref["sequences"] = []
    for n in case["lengths"]:
        ids = torch.randint(3, V, (1, n), generator=gen)
        logits = model(ids).logits[0].float().numpy()
        ref["sequences"].append({
            "input_ids": ids[0].tolist(), "logits_offset": floats.add(logits),
            "shape": list(logits.shape),
        })

    if case["lengths"]:
        # 2. A left-padded batch with position ids as generate() derives them.
        lens = [5, 12, 9]
        T = max(lens)
        ids = torch.zeros((3, T), dtype=torch.long)
        mask = torch.zeros((3, T), dtype=torch.long)
        for b, n in enumerate(lens):
            ids[b, T - n:] = torch.randint(3, V, (n,), generator=gen)
            mask[b, T - n:] = 1
        pos = mask.cumsum(-1) - 1
        pos.masked_fill_(mask == 0, 1)
        logits = model(ids, attention_mask=mask, position_ids=pos).logits.float().numpy()
        ref["left_padded_batch"] = {
            "input_ids": ids.tolist(), "attention_mask": mask.tolist(),
            "position_ids": pos.tolist(), "logits_offset": floats.add(logits),
            "shape": list(logits.shape),
        }

        # 3. Greedy generation, single and left-padded batch.
        ref["greedy"] = []
        for n, new in [(1, 24), (6, 40)]:
            prompt = torch.randint(3, V, (1, n), generator=gen)
            out = model.generate(prompt, attention_mask=torch.ones_like(prompt),
                                 max_new_tokens=new, do_sample=False, pad_token_id=0,
                                 output_scores=True, return_dict_in_generate=True)
            ref["greedy"].append({
                "prompt": prompt[0].tolist(), "max_new_tokens": new,
                "tokens": out.sequences[0, n:].tolist(), "min_top2_margin": min_margin(out.scores),
            })
        out = model.generate(ids, attention_mask=mask, max_new_tokens=16, do_sample=False,
                             pad_token_id=0, output_scores=True, return_dict_in_generate=True)
        ref["batched_greedy"] = {
            "input_ids": ids.tolist(), "attention_mask": mask.tolist(), "max_new_tokens": 16,
            "tokens": out.sequences[:, T:].tolist(), "min_top2_margin": min_margin(out.scores),
        }

        # 4. Loglikelihoods of id pairs, lm-eval style (last pair is left-truncated).
        ref["loglikelihoods"] = []
        for ctx_len, cont_len in [(1, 1), (5, 3), (20, 1), (10, 12), (70, 4)]:
            ctx = torch.randint(3, V, (ctx_len,), generator=gen).tolist()
            cont = torch.randint(3, V, (cont_len,), generator=gen).tolist()
            ll, greedy, n = loglikelihood(model, ctx, cont, case["max_length"])
            ref["loglikelihoods"].append({"context": ctx, "continuation": cont,
                                          "logprob": ll, "is_greedy": greedy, "input_len": n})
        # One pair whose continuation is the model's own greedy choice (is_greedy true).
        ctx = torch.randint(3, V, (4,), generator=gen).tolist()
        g = model.generate(torch.tensor([ctx]), max_new_tokens=3, do_sample=False,
                           pad_token_id=0)[0, 4:].tolist()
        ll, greedy, n = loglikelihood(model, ctx, g, case["max_length"])
        ref["loglikelihoods"].append({"context": ctx, "continuation": g, "logprob": ll,
                                      "is_greedy": greedy, "input_len": n})

    if case["name"] == "tinyllama-tok":
        ref.update(text_references(model, out_dir))
    return out_dir, ref, floats


def text_references(model, out_dir):
    import shutil

    import tokenizers

    tok_dir = os.path.join(WORK, "_tok")
    os.makedirs(tok_dir, exist_ok=True)
    for f in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]:
        shutil.copy(os.path.join(TOK_DIR, f), os.path.join(tok_dir, f))
    tok = AutoTokenizer.from_pretrained(tok_dir)
    raw = tokenizers.Tokenizer.from_file(os.path.join(tok_dir, "tokenizer.json"))
    texts = ["Hello world! 12345 café", " leading space", "Once upon a time", "a\n\nb  c",
             "</s> after eos", "naïve ☕ 日本"]
    tokenizer_cases = []
    for t in texts:
        tokenizer_cases.append({
            "text": t, "auto_ids": tok(t).input_ids, "tokenizers_ids": raw.encode(t).ids,
            "auto_no_special": tok(t, add_special_tokens=False).input_ids,
            "decoded_skip": tok.decode(tok(t).input_ids, skip_special_tokens=True),
        })

    pairs = [("The quick brown fox", " jumps over the lazy dog"),
             ("Question: What is 2+2?\nAnswer:", " 4"),
             ("The cat sat on the ", "mat"),
             ("Hello", " world"),
             ("naïve café ", "☕ 日本")]
    lls = []
    for context, continuation in pairs:
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces > 0:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        whole = tok(context + continuation).input_ids
        ctx_ids = tok(context).input_ids
        cont_ids = whole[len(ctx_ids):]
        ll, greedy, n = loglikelihood(model, ctx_ids, cont_ids, 2048)
        lls.append({"context": pairs[len(lls)][0], "continuation": pairs[len(lls)][1],
                    "context_ids": ctx_ids, "continuation_ids": cont_ids,
                    "logprob": ll, "is_greedy": greedy})

    gens = []
    for context, until, max_gen in [("Once upon a time", ["\n\n", "."], 12),
                                    ("Hello world", ["zzz"], 8)]:
        ids = tok(context).input_ids
        out = model.generate(torch.tensor([ids]), max_new_tokens=max_gen, do_sample=False,
                             pad_token_id=2, eos_token_id=2)[0, len(ids):].tolist()
        text = tok.decode(out, skip_special_tokens=True)
        stops = list(until) + [tok.decode([2])]
        cut = text
        for s in stops:
            if s:
                cut = cut.split(s)[0]
        gens.append({"context": context, "until": until, "max_gen_toks": max_gen,
                     "tokens": out, "text": text, "result": cut})
    return {"tokenizer_cases": tokenizer_cases, "text_loglikelihoods": lls,
            "generate_until": gens, "tokenizer_class": type(tok).__name__}


def stories_reference():
    """Independent llama2.c → HF conversion of stories260K (transformers' permute), greedy from BOS."""
    path = os.path.join(STORIES_DIR, "stories260K.bin")
    data = open(path, "rb").read()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack("<7i", data[:28])
    w = np.frombuffer(data, dtype="<f4", offset=28)
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        a = w[off:off + n].reshape(shape)
        off += n
        return torch.tensor(a.copy())

    hd = dim // n_heads
    kv_dim = n_kv * hd
    emb = take(vocab, dim)
    rms_att = take(n_layers, dim)
    wq = take(n_layers, dim, dim)
    wk = take(n_layers, kv_dim, dim)
    wv = take(n_layers, kv_dim, dim)
    wo = take(n_layers, dim, dim)
    rms_ffn = take(n_layers, dim)
    w1 = take(n_layers, hidden, dim)
    w2 = take(n_layers, dim, hidden)
    w3 = take(n_layers, hidden, dim)
    rms_final = take(dim)

    def permute(t, heads, d1, d2):  # convert_llama_weights_to_hf.py
        return t.view(heads, d1 // heads // 2, 2, d2).transpose(1, 2).reshape(d1, d2)

    config = LlamaConfig(vocab_size=vocab, hidden_size=dim, intermediate_size=hidden,
                         num_hidden_layers=n_layers, num_attention_heads=n_heads,
                         num_key_value_heads=n_kv, max_position_embeddings=seq_len,
                         rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=1,
                         eos_token_id=2)
    model = LlamaForCausalLM(config).eval()
    sd = {"model.embed_tokens.weight": emb, "model.norm.weight": rms_final}
    for i in range(n_layers):
        p = f"model.layers.{i}."
        sd[p + "input_layernorm.weight"] = rms_att[i]
        sd[p + "post_attention_layernorm.weight"] = rms_ffn[i]
        sd[p + "self_attn.q_proj.weight"] = permute(wq[i], n_heads, dim, dim)
        sd[p + "self_attn.k_proj.weight"] = permute(wk[i], n_kv, kv_dim, dim)
        sd[p + "self_attn.v_proj.weight"] = wv[i]
        sd[p + "self_attn.o_proj.weight"] = wo[i]
        sd[p + "mlp.gate_proj.weight"] = w1[i]
        sd[p + "mlp.down_proj.weight"] = w2[i]
        sd[p + "mlp.up_proj.weight"] = w3[i]
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert all("lm_head" in m for m in missing), missing
    try:
        model.tie_weights()
    except Exception as e:  # noqa: BLE001
        print("tie_weights:", e)
    assert torch.equal(model.lm_head.weight, emb)
    out = model.generate(torch.tensor([[1]]), max_new_tokens=200, do_sample=False,
                         eos_token_id=None, pad_token_id=0)
    return {"greedy_from_bos": out[0, 1:].tolist()}


def main():
    import safetensors
    import tokenizers

    tar_path = os.path.join(OUT, "trainer-fixtures.tar")
    with tarfile.open(tar_path, "w") as tar:
        for i, case in enumerate(CASES):
            out_dir, ref, floats = run_case(case, 1000 + i)
            print(case["name"], "config.json:", open(os.path.join(out_dir, "config.json")).read())
            with open(os.path.join(out_dir, "reference.json"), "w") as f:
                json.dump(ref, f, separators=(",", ":"))
            if floats.n:
                with open(os.path.join(out_dir, "logits.bin"), "wb") as f:
                    f.write(floats.bytes())
            for fname in sorted(os.listdir(out_dir)):
                tar.add(os.path.join(out_dir, fname), arcname=f"{case['name']}/{fname}")
            if case["name"] == "tinyllama-tok":
                print("tokenizer:", json.dumps(ref["tokenizer_cases"], ensure_ascii=False)[:3000])
        if STORIES_DIR:
            stories = stories_reference()
            print("stories260K greedy:", stories["greedy_from_bos"][:40])
            data = json.dumps(stories).encode()
            info = tarfile.TarInfo("stories260K-greedy.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        versions = {
            "python": sys.version.split()[0], "torch": torch.__version__,
            "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
            "safetensors": safetensors.__version__, "numpy": np.__version__,
            "script": "tools/reference/llama_logits.py",
        }
        data = json.dumps(versions, indent=2).encode()
        info = tarfile.TarInfo("versions.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    print("wrote", tar_path, os.path.getsize(tar_path))


if __name__ == "__main__":
    main()
