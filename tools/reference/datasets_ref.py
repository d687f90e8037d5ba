"""Reference fixtures for @qlora/datasets (run on the GPU host; needs pyarrow, tokenizers, transformers).

Inputs (carried, never committed): `.carry/datasets/tokenizer.json`, `tokenizer_config.json`,
`special_tokens_map.json` (TinyLlama, from shared/data/tokenizers/tinyllama) and
`alpaca_subset.json` (the records of shared/data/alpaca/alpaca_5000.json at INDICES).

Outputs under $OUT:
- `sft_tinyllama.json`: per record and template, the prompt/response strings rendered by Python
  `str.format` from the template text of the spec, the Hugging Face `tokenizers` ids of
  `prompt + response + eos_token` (the way Unsloth and Stanford Alpaca build the text), the
  prompt token count found from character offsets (tokens whose span ends at or before the prompt
  end), and Stanford Alpaca's own `len(tokenize(source))`.
- `chat_tinyllama.json`: `apply_chat_template` of transformers for a few conversations.
- `synthetic_gsm8k.parquet`, `synthetic_mmlu.parquet`: pyarrow-written parquet with several row
  groups, snappy, Hugging Face `datasets`-style schema metadata; strings are synthetic.
- `prng.json`: the documented xoshiro128** / splitmix32 / Fisher-Yates subset indices computed
  here independently of the TypeScript code.
- `versions.json`.
"""

import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import tokenizers
import transformers
from tokenizers import Tokenizer

OUT = os.environ.get("OUT", "out")
IN = ".carry/datasets"
os.makedirs(OUT, exist_ok=True)

# Indices into shared/data/alpaca/alpaca_5000.json (mix of with-input and without-input records).
INDICES = list(range(0, 16))

# Template text from shared/specs/lora-training.md §4.4 and §4.5.
STANFORD_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
STANFORD_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:"
)
UNSLOTH = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{}\n\n### Input:\n{}\n\n### Response:\n{}"
)

# Synthetic edge cases: a response starting with a letter right after "Response:" (Stanford has
# no newline there, so SentencePiece may merge across the boundary), leading spaces, non-ASCII.
SYNTHETIC = [
    {"instruction": "Say hi.", "input": "", "output": "Hi"},
    {"instruction": "Give a colon-led answer.", "input": "x", "output": ":)"},
    {"instruction": "Answer with a space first.", "input": "", "output": " spaced answer"},
    {"instruction": "Translate to French.", "input": "coffee", "output": "café ☕"},
    {"instruction": "Empty output test.", "input": "", "output": ""},
    {"instruction": "Newline answer", "input": "two\nlines", "output": "\nstarts with newline"},
]


def main() -> None:
    with open(os.path.join(IN, "alpaca_subset.json"), encoding="utf-8") as f:
        alpaca = json.load(f)
    tok = Tokenizer.from_file(os.path.join(IN, "tokenizer.json"))
    eos = "</s>"
    records = [("alpaca", i, r) for i, r in zip(INDICES, alpaca)] + [
        ("synthetic", i, r) for i, r in enumerate(SYNTHETIC)
    ]
    out = []
    for source, index, r in records:
        entry = {"source": source, "index": index}
        if source == "synthetic":
            entry["record"] = r
        for name in ("stanford", "unsloth"):
            if name == "stanford":
                tpl = STANFORD_INPUT if r["input"] != "" else STANFORD_NO_INPUT
                prompt = tpl.format_map(r)
            else:
                prompt = UNSLOTH.format(r["instruction"], r["input"], "")
            response = r["output"]
            text = prompt + response + eos
            enc = tok.encode(text)
            prompt_ids = tok.encode(prompt).ids
            # Offsets-based boundary: a token belongs to the prompt when its span ends at or before
            # the prompt end (BOS has span (0, 0)). A token spanning the boundary carries response
            # characters and so counts as response.
            plen = len(prompt)
            prompt_count = sum(1 for (_, e) in enc.offsets if e <= plen)
            # Make sure tokens counted as prompt form a prefix (they must, offsets are monotone).
            ends = [e for (_, e) in enc.offsets]
            assert all(e <= plen for e in ends[:prompt_count]), (source, index, name)
            entry[name] = {
                "prompt": prompt,
                "response": response,
                "inputIds": enc.ids,
                "promptTokenCount": prompt_count,
                "promptAloneIds": prompt_ids,
                "stanfordSourceLen": len(prompt_ids),
                "isPrefix": enc.ids[: len(prompt_ids)] == prompt_ids,
            }
        out.append(entry)
    with open(os.path.join(OUT, "sft_tinyllama.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, separators=(",", ":"))

    # Chat template through transformers (jinja2 sandbox).
    hf = transformers.AutoTokenizer.from_pretrained(IN)
    conversations = [
        [{"role": "user", "content": "Hello there"}],
        [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "4"},
            {"role": "user", "content": "And 3+3?"},
        ],
        [{"role": "user", "content": "Multi\nline\n\ncontent"}, {"role": "assistant", "content": "ok"}],
    ]
    chats = []
    for msgs in conversations:
        for agp in (False, True):
            chats.append(
                {
                    "messages": msgs,
                    "addGenerationPrompt": agp,
                    "text": hf.apply_chat_template(msgs, tokenize=False, add_generation_prompt=agp),
                }
            )
    with open(os.path.join(OUT, "chat_tinyllama.json"), "w", encoding="utf-8") as f:
        json.dump(chats, f, ensure_ascii=False, indent=1)

    # Parquet fixtures, synthetic text.
    gsm_q = [f"Synthetic question {i}: Sam has {i + 3} pens and buys {2 * i} more. How many?" for i in range(50)]
    gsm_a = [
        f"Sam starts with {i + 3}.\nHe buys {2 * i}, so {i + 3}+{2 * i}=<<{i + 3}+{2 * i}={3 * i + 3}>>{3 * i + 3}.\n#### {3 * i + 3}"
        for i in range(50)
    ]
    gsm = pa.table({"question": gsm_q, "answer": gsm_a})
    hf_meta = {
        b"huggingface": json.dumps(
            {"info": {"features": {"question": {"dtype": "string", "_type": "Value"}, "answer": {"dtype": "string", "_type": "Value"}}}}
        ).encode()
    }
    gsm = gsm.replace_schema_metadata(hf_meta)
    pq.write_table(gsm, os.path.join(OUT, "synthetic_gsm8k.parquet"), row_group_size=20, compression="snappy")

    subjects = ["synthetic_logic", "synthetic_algebra"]
    mmlu = pa.table(
        {
            "question": [f"Synthetic item {i}, with a comma and a \"quote\"?\nSecond line." for i in range(20)],
            "subject": [subjects[i % 2] for i in range(20)],
            "choices": pa.array([[f"opt {i}.{k}" for k in range(4)] for i in range(20)], type=pa.list_(pa.string())),
            "answer": pa.array([i % 4 for i in range(20)], type=pa.int64()),
        }
    )
    mmlu = mmlu.replace_schema_metadata(
        {
            b"huggingface": json.dumps(
                {
                    "info": {
                        "features": {
                            "question": {"dtype": "string", "_type": "Value"},
                            "subject": {"dtype": "string", "_type": "Value"},
                            "choices": {"feature": {"dtype": "string", "_type": "Value"}, "_type": "Sequence"},
                            "answer": {"names": ["A", "B", "C", "D"], "_type": "ClassLabel"},
                        }
                    }
                }
            ).encode()
        }
    )
    pq.write_table(mmlu, os.path.join(OUT, "synthetic_mmlu.parquet"), row_group_size=8, compression="snappy")

    # Expected content, read back by pyarrow, for the TS test to compare with hyparquet.
    expected = {
        "gsm8k": {"rows": pq.read_table(os.path.join(OUT, "synthetic_gsm8k.parquet")).to_pylist(),
                  "rowGroups": pq.ParquetFile(os.path.join(OUT, "synthetic_gsm8k.parquet")).num_row_groups},
        "mmlu": {"rows": pq.read_table(os.path.join(OUT, "synthetic_mmlu.parquet")).to_pylist(),
                 "rowGroups": pq.ParquetFile(os.path.join(OUT, "synthetic_mmlu.parquet")).num_row_groups},
    }

    # PRNG reference (independent Python implementation of the documented algorithm).
    M = 0xFFFFFFFF

    def rotl(x, k):
        return ((x << k) | (x >> (32 - k))) & M

    def make_rng(seed):
        s = seed & M
        state = []
        for _ in range(4):
            s = (s + 0x9E3779B9) & M
            z = s
            z = ((z ^ (z >> 16)) * 0x85EBCA6B) & M
            z = ((z ^ (z >> 13)) * 0xC2B2AE35) & M
            z = z ^ (z >> 16)
            state.append(z)
        if all(v == 0 for v in state):
            state[0] = 1

        def next_u32():
            s0, s1, s2, s3 = state
            result = (rotl((s1 * 5) & M, 7) * 9) & M
            t = (s1 << 9) & M
            s2 ^= s0
            s3 ^= s1
            s1 ^= s2
            s0 ^= s3
            s2 ^= t
            s3 = rotl(s3, 11)
            state[:] = [s0, s1, s2, s3]
            return result

        return next_u32

    def rand_below(nxt, n):
        limit = (1 << 32) - ((1 << 32) % n)
        while True:
            u = nxt()
            if u < limit:
                return u % n

    def subset(length, n, seed):
        nxt = make_rng(seed)
        idx = list(range(length))
        for i in range(n):
            j = i + rand_below(nxt, length - i)
            idx[i], idx[j] = idx[j], idx[i]
        return idx[:n]

    def first_u32(seed, k):
        nxt = make_rng(seed)
        return [nxt() for _ in range(k)]

    prng = {
        "u32": [{"seed": s, "values": first_u32(s, 8)} for s in (0, 1, 3407, 4294967295)],
        "subsets": [
            {"length": 5000, "n": 10, "seed": 3407, "indices": subset(5000, 10, 3407)},
            {"length": 7473, "n": 25, "seed": 42, "indices": subset(7473, 25, 42)},
            {"length": 10, "n": 10, "seed": 1, "indices": subset(10, 10, 1)},
        ],
    }
    with open(os.path.join(OUT, "prng.json"), "w") as f:
        json.dump(prng, f, separators=(",", ":"))
    with open(os.path.join(OUT, "parquet_expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, separators=(",", ":"))

    versions = {
        "python": sys.version.split()[0],
        "tokenizers": tokenizers.__version__,
        "transformers": transformers.__version__,
        "pyarrow": pa.__version__,
        "script": "tools/reference/datasets_ref.py",
    }
    with open(os.path.join(OUT, "versions.json"), "w") as f:
        json.dump(versions, f, indent=1)
    print(json.dumps(versions))
    print("records", len(out), "stanford non-prefix:", sum(1 for e in out if not e["stanford"]["isPrefix"]))


if __name__ == "__main__":
    main()
