"""Realistic lm-evaluation-harness 0.4.x results files for @qlora/metrics' tests.

    python3 tools/reference/lm_eval_results.py test-fixtures/metrics

Follows, step by step, what lm-eval (EleutherAI/lm-evaluation-harness v0.4.12, read at
4e7e0d47) does after scoring: per-(metric, filter) `mean` of the per-sample values, `mean_stderr`
(sample std with n-1 over sqrt(n)) or "N/A" when bootstrap_iters <= 0 or n <= 1; groups aggregate
their leaf tasks with the size-weighted mean and the pooled sample stderr; the results dict is
assembled in lm-eval's key order and written with json.dumps(indent=2, ensure_ascii=False) and a
non-serialisable fallback. Per-sample outcomes are synthetic (seeded), sized like the real tasks
and chosen so the base/fine-tuned numbers round to the paper's Table 2. This is our own code, not
a copy of lm-eval's; it only needs Python's stdlib and numpy.
"""

import hashlib
import json
import math
import platform
import random
import sys

import numpy as np

LM_EVAL_COMMIT = "4e7e0d47f33bc71070c1d38394bafbb52b117163"

MMLU = {
    "mmlu_stem": {
        "abstract_algebra": 100, "anatomy": 135, "astronomy": 152, "college_biology": 144,
        "college_chemistry": 100, "college_computer_science": 100, "college_mathematics": 100,
        "college_physics": 102, "computer_security": 100, "conceptual_physics": 235,
        "electrical_engineering": 145, "elementary_mathematics": 378, "high_school_biology": 310,
        "high_school_chemistry": 203, "high_school_computer_science": 100,
        "high_school_mathematics": 270, "high_school_physics": 151, "high_school_statistics": 216,
        "machine_learning": 112,
    },
    "mmlu_other": {
        "business_ethics": 100, "clinical_knowledge": 265, "college_medicine": 173, "global_facts": 100,
        "human_aging": 223, "management": 103, "marketing": 234, "medical_genetics": 100,
        "miscellaneous": 783, "nutrition": 306, "professional_accounting": 282,
        "professional_medicine": 272, "virology": 166,
    },
    "mmlu_social_sciences": {
        "econometrics": 114, "high_school_geography": 198, "high_school_government_and_politics": 193,
        "high_school_macroeconomics": 390, "high_school_microeconomics": 238,
        "high_school_psychology": 545, "human_sexuality": 131, "professional_psychology": 612,
        "public_relations": 110, "security_studies": 245, "sociology": 201, "us_foreign_policy": 100,
    },
    "mmlu_humanities": {
        "formal_logic": 126, "high_school_european_history": 165, "high_school_us_history": 204,
        "high_school_world_history": 237, "international_law": 121, "jurisprudence": 108,
        "logical_fallacies": 163, "moral_disputes": 346, "moral_scenarios": 895, "philosophy": 311,
        "prehistory": 324, "professional_law": 1534, "world_religions": 171,
    },
}

HELLASWAG_PROCESS_DOCS = (
    "def process_docs(dataset: datasets.Dataset) -> datasets.Dataset:\n"
    "    def _process_doc(doc):\n"
    '        ctx = doc["ctx_a"] + " " + doc["ctx_b"].capitalize()\n'
    "        out_doc = {\n"
    '            "query": preprocess(doc["activity_label"] + ": " + ctx),\n'
    '            "choices": [preprocess(ending) for ending in doc["endings"]],\n'
    '            "gold": int(doc["label"]),\n'
    "        }\n"
    "        return out_doc\n\n"
    "    return dataset.map(_process_doc)\n"
)


def handle_non_serializable(o):
    if isinstance(o, (np.int64, np.int32)):
        return int(o)
    if isinstance(o, set):
        return list(o)
    return str(o)


def outcomes(n, k, seed):
    """n 0/1 outcomes with exactly k ones, in a seeded order."""
    xs = [1.0] * k + [0.0] * (n - k)
    random.Random(seed).shuffle(xs)
    return xs


# --- lm-eval's aggregation (api/metrics.py), written out again here ------------------------------
def mean(arr):
    return sum(arr) / len(arr)


def sample_stddev(arr):
    mu = mean(arr)
    return math.sqrt(sum([(x - mu) ** 2 for x in arr]) / (len(arr) - 1))


def mean_stderr(arr):
    return sample_stddev(arr) / math.sqrt(len(arr))


def pooled_sample_stderr(stderrs, sizes):
    pooled = sum([(size - 1) * se**2 * size for size, se in zip(sizes, stderrs)]) / (sum(sizes) - len(sizes))
    return np.sqrt(pooled / sum(sizes))


def aggregate_subtask_metrics(metrics, sizes):
    return sum([m * s for m, s in zip(metrics, sizes)]) / sum(sizes)


def task_entry(name, alias, raw, bootstrap_iters):
    """raw: {(metric, filter): [values]} in first-seen order -> lm-eval's results entry."""
    agg = {}
    sample_len = 0
    for (metric, filt), items in raw.items():
        agg[f"{metric},{filt}"] = mean(items)
        sample_len = len(items)
        if bootstrap_iters > 0 and len(items) > 1:
            agg[f"{metric}_stderr,{filt}"] = mean_stderr(items)
        else:
            agg[f"{metric}_stderr,{filt}"] = "N/A"
    return {"name": name, "alias": alias, "sample_len": sample_len, **agg}


def group_entry(name, leaves, metrics):
    out = {"alias": name, "name": name}
    out["sample_len"] = sum(metrics[t]["sample_len"] for t in leaves)
    values = [metrics[t]["acc,none"] for t in leaves]
    stderrs = [metrics[t]["acc_stderr,none"] for t in leaves]
    sizes = [metrics[t]["sample_len"] for t in leaves]
    out["acc,none"] = aggregate_subtask_metrics(values, sizes)
    out["acc_stderr,none"] = "N/A" if "N/A" in stderrs else pooled_sample_stderr(stderrs, sizes)
    out["sample_count"] = {"acc,none": sum(sizes)}
    return out


# --- configs as lm-eval's dump_config writes them (None values omitted) --------------------------
def gsm8k_config(model_args):
    return {
        "task": "gsm8k", "tag": ["math_word_problems"], "dataset_path": "openai/gsm8k",
        "dataset_name": "main", "training_split": "train", "test_split": "test", "fewshot_split": "train",
        "doc_to_text": "Question: {{question}}\nAnswer:", "doc_to_target": "{{answer}}",
        "unsafe_code": False, "description": "", "target_delimiter": " ", "fewshot_delimiter": "\n\n",
        "fewshot_config": {"sampler": "default", "split": "train", "samples": None},
        "num_fewshot": 5,
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True,
                         "ignore_case": True, "ignore_punctuation": False,
                         "regexes_to_ignore": [",", "\\$", "(?s).*#### ", "\\.$"]}],
        "output_type": "generate_until",
        "generation_kwargs": {"until": ["Question:", "</s>", "<|im_end|>"], "do_sample": False, "temperature": 0.0},
        "repeats": 1,
        "filter_list": [
            {"name": "strict-match", "filter": [{"function": "regex", "regex_pattern": "#### (\\-?[0-9\\.\\,]+)"},
                                                 {"function": "take_first"}]},
            {"name": "flexible-extract", "filter": [{"function": "regex", "group_select": -1,
                                                     "regex_pattern": "(-?[$0-9.,]{2,})|(-?[0-9]+)"},
                                                    {"function": "take_first"}]},
        ],
        "should_decontaminate": False, "metadata": {"version": 3.0, **model_args},
    }


def hellaswag_config(model_args):
    return {
        "task": "hellaswag", "tag": ["multiple_choice"], "dataset_path": "Rowan/hellaswag",
        "training_split": "train", "validation_split": "validation",
        "process_docs": HELLASWAG_PROCESS_DOCS, "doc_to_text": "{{query}}", "doc_to_target": "{{label}}",
        "unsafe_code": False, "doc_to_choice": "choices", "description": "", "target_delimiter": " ",
        "fewshot_delimiter": "\n\n",
        "fewshot_config": {"sampler": "default", "split": None,
                           "process_docs": "<function process_docs at 0x7f3a9c2b1e40>"},
        "num_fewshot": 0,
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                        {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}],
        "output_type": "multiple_choice", "repeats": 1, "should_decontaminate": False,
        "metadata": {"version": 1.0, **model_args},
    }


def mmlu_config(subject, model_args):
    cfg = {
        "task": f"mmlu_{subject}", "task_alias": subject, "tag": f"{'mmlu_stem' if subject in MMLU['mmlu_stem'] else 'mmlu_other'}_tasks",
        "dataset_path": "cais/mmlu", "dataset_name": subject, "test_split": "test", "fewshot_split": "dev",
        "doc_to_text": "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:",
        "doc_to_target": "answer", "unsafe_code": False, "doc_to_choice": ["A", "B", "C", "D"],
        "description": f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n",
        "target_delimiter": " ", "fewshot_delimiter": "\n\n",
        "fewshot_config": {"sampler": "first_n"}, "num_fewshot": 0,
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        "output_type": "multiple_choice", "repeats": 1, "should_decontaminate": False,
        "metadata": {"version": 1.0, **model_args},
    }
    return cfg


def build(model, label, counts, bootstrap_iters, start_date, eval_seconds, seed):
    model_args = {"pretrained": model, "dtype": "bfloat16"}
    metrics = {}
    configs = {}
    versions = {}
    n_shot = {}
    hib = {}
    n_samples = {}
    samples = {}

    def add(name, alias, raw, config, version):
        metrics[name] = task_entry(name, alias, raw, bootstrap_iters)
        configs[name] = config
        versions[name] = version
        n_shot[name] = config.get("num_fewshot", 0)
        hib[name] = {m: True for (m, _f) in raw}
        n = metrics[name]["sample_len"]
        n_samples[name] = {"original": n, "effective": n}

    g = counts["gsm8k"]
    strict = outcomes(1319, g["strict"], seed + 1)
    flex = outcomes(1319, g["flex"], seed + 2)
    gsm_raw = {("exact_match", "strict-match"): [np.float64(x) for x in strict],
               ("exact_match", "flexible-extract"): [np.float64(x) for x in flex]}
    add("gsm8k", "gsm8k", gsm_raw, gsm8k_config(model_args), 3.0)
    samples["gsm8k"] = {"strict-match": strict, "flexible-extract": flex}

    h = counts["hellaswag"]
    acc = outcomes(10042, h["acc"], seed + 3)
    acc_norm = outcomes(10042, h["acc_norm"], seed + 4)
    add("hellaswag", "hellaswag", {("acc", "none"): acc, ("acc_norm", "none"): acc_norm},
        hellaswag_config(model_args), 1.0)
    samples["hellaswag"] = {"acc": acc, "acc_norm": acc_norm}

    rng = random.Random(seed + 5)
    subjects = sorted((s, grp) for grp, subs in MMLU.items() for s in subs)
    for subject, grp in subjects:
        n = MMLU[grp][subject]
        k = counts["mmlu"].get(subject, int(round(n * (counts["mmlu_rate"] + rng.uniform(-0.08, 0.08)))))
        xs = outcomes(n, k, seed + 100 + len(subject) * 7 + n)
        add(f"mmlu_{subject}", subject, {("acc", "none"): xs}, mmlu_config(subject, model_args), 1.0)
        if subject == "college_computer_science":
            samples["mmlu_college_computer_science"] = {"acc": xs}

    groups = {}
    for grp, subs in MMLU.items():
        groups[grp] = [f"mmlu_{s}" for s in subs]
    groups["mmlu"] = list(MMLU.keys())
    # bottom-up: subgroups before the root, as lm-eval's post-order traversal
    for grp in MMLU:
        metrics[grp] = group_entry(grp, groups[grp], metrics)
        versions[grp] = "2"
    all_leaves = [t for grp in MMLU for t in groups[grp]]
    metrics["mmlu"] = group_entry("mmlu", all_leaves, metrics)
    versions["mmlu"] = "2"
    for grp in list(MMLU) + ["mmlu"]:
        n_shot[grp] = 0
        hib[grp] = {"acc": True}

    group_subtasks = {"mmlu": groups["mmlu"], **{grp: groups[grp] for grp in MMLU}}
    results = {
        "results": metrics,
        "groups": {g: metrics[g] for g in ["mmlu", *MMLU]},
        "group_subtasks": group_subtasks,
        "configs": dict(sorted(configs.items())),
        "versions": dict(sorted(versions.items())),
        "n-shot": dict(sorted(n_shot.items())),
        "higher_is_better": dict(sorted(hib.items())),
        "n-samples": n_samples,
        "config": {
            "model": "hf", "model_args": model_args, "model_num_parameters": 1235814400,
            "model_dtype": "torch.bfloat16", "model_revision": "main",
            "model_sha": "4e20de362430cd3b72f300e6b0f18e50e7166e08", "batch_size": "8", "batch_sizes": [],
            "device": "cuda:0", "use_cache": None, "limit": None, "bootstrap_iters": bootstrap_iters,
            "gen_kwargs": {}, "random_seed": 0, "numpy_seed": 1234, "torch_seed": 1234, "fewshot_seed": 1234,
        },
        "git_hash": None,
        "date": start_date,
        "pretty_env_info": "PyTorch version: 2.11.0+cu130\nIs debug build: False\nOS: Ubuntu 24.04.2 LTS (x86_64)\nGPU 0: Tesla T4 — 15 GB",
        "transformers_version": "5.17.0",
        "lm_eval_version": "0.4.12",
        "upper_git_hash": None,
        "tokenizer_pad_token": ["<|end_of_text|>", "128001"],
        "tokenizer_eos_token": ["<|end_of_text|>", "128001"],
        "tokenizer_bos_token": ["<|begin_of_text|>", "128000"],
        "eot_token_id": 128001,
        "max_length": 131072,
    }
    return results, samples, label, eval_seconds


def sha(s):
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


def sample_lines():
    """A few samples JSONL rows shaped like lm-eval's (evaluator.py + save_results_samples)."""
    rows = []
    hs_doc = {"ind": 24, "activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.",
              "ctx_b": "he", "ctx": "A man is sitting on a roof. he", "split": "val", "split_type": "indomain",
              "label": "3", "endings": ["is using wrap to wrap a pair of skis.", "is ripping level tiles off.",
                                        "is holding a rubik's cube.", "starts pulling up roofing on a roof."],
              "source_id": "activitynet~v_-JhWjGDPHMY",
              "query": "Roof shingle removal: A man is sitting on a roof. He",
              "choices": ["is using wrap to wrap a pair of skis.", "is ripping level tiles off.",
                          "is holding a rubik's cube.", "starts pulling up roofing on a roof."], "gold": 3}
    ctx = hs_doc["query"]
    lls = [(-35.125, False), (-21.5, False), (-27.75, False), (-14.0625, False)]
    rows.append({
        "doc_id": 0, "doc": hs_doc, "target": 3,
        "arguments": [(ctx, " " + c) for c in hs_doc["choices"]],
        "resps": [[ll] for ll in lls], "filtered_resps": lls, "filter": "none",
        "metrics": ["acc", "acc_norm"], "acc": 1.0, "acc_norm": 1.0,
    })
    q = "Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg. How much in dollars does she make every day at the farmers' market?"
    ans = "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>$18 every day at the farmer’s market.\n#### 18"
    gen = {"until": ["Question:", "</s>", "<|im_end|>"], "do_sample": False, "temperature": 0.0}
    context = "Question: " + q + "\nAnswer:"
    for filt, filtered, em in [("strict-match", "[invalid]", 0.0), ("flexible-extract", "18", 1.0)]:
        rows.append({
            "doc_id": 0, "doc": {"question": q, "answer": ans}, "target": ans,
            "arguments": [(context, gen)], "resps": [[" She makes 9 * 2 = $18 a day. The answer is 18."]],
            "filtered_resps": [filtered], "filter": filt, "metrics": ["exact_match"],
            "exact_match": np.float64(em),
        })
    out = []
    for r in rows:
        # evaluator.py adds the hashes before the metric values; save_results_samples then
        # stringifies resps, turns arguments into gen_args_i/arg_j and str()s the target.
        metric_names = r["metrics"]
        sample = {k: r[k] for k in ["doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "filter", "metrics"]}
        sample["doc_hash"] = sha(json.dumps(r["doc"], indent=2, default=handle_non_serializable, ensure_ascii=False))
        sample["prompt_hash"] = sha(r["arguments"][0][0])
        sample["target_hash"] = sha(str(r["target"]))
        for m in metric_names:
            sample[m] = r[m]
        arguments = {}
        for i, arg in enumerate(sample["arguments"]):
            arguments[f"gen_args_{i}"] = {f"arg_{j}": tmp for j, tmp in enumerate(arg)}
        sample["resps"] = sanitize(sample["resps"])
        sample["filtered_resps"] = sanitize(sample["filtered_resps"])
        sample["arguments"] = arguments
        sample["target"] = str(sample["target"])
        out.append(json.dumps(sample, default=handle_non_serializable, ensure_ascii=False) + "\n")
    return "".join(out)


def sanitize(sub):
    if isinstance(sub, list):
        return [sanitize(x) for x in sub]
    if isinstance(sub, tuple):
        return tuple(sanitize(x) for x in sub)
    return str(sub)


def bootstrap_reference():
    """lm-eval's bootstrap_stderr, single-process path: chunks of min(1000, iters) draws, chunk i
    drawn with random.Random(i).choices, result = sample_stddev of all draws."""

    def median(arr):
        return sorted(arr)[len(arr) // 2]

    def boot(f, xs, iters):
        res = []
        chunk = min(1000, iters)
        for i in range(iters // chunk):
            rnd = random.Random(i)
            for _ in range(chunk):
                res.append(f(rnd.choices(xs, k=len(xs))))
        return sample_stddev(res)

    xs = [0.5 * math.sin(i * 1.7) + (i % 7) / 10 for i in range(57)]
    bits = outcomes(100, 47, 4242)
    return {
        "xs": xs, "bits": "".join("1" if b else "0" for b in bits),
        "cases": [
            {"f": "mean", "data": "bits", "iters": 2000, "stderr": boot(mean, bits, 2000)},
            {"f": "mean", "data": "xs", "iters": 2500, "stderr": boot(mean, xs, 2500)},
            {"f": "median", "data": "xs", "iters": 1000, "stderr": boot(median, xs, 1000)},
            {"f": "mean", "data": "xs", "iters": 300, "stderr": boot(mean, xs, 300)},
        ],
    }


def main(out_dir):
    base = build("meta-llama/Llama-3.2-1B", "base",
                 {"gsm8k": {"strict": 442, "flex": 442}, "hellaswag": {"acc": 4542, "acc_norm": 6103},
                  "mmlu": {"college_computer_science": 47}, "mmlu_rate": 0.31},
                 100000, 1777023202.3612823, "3030.0412931442261", 11)
    ft = build("outputs/llama-3.2-1b-alpaca-2k-merged", "ft",
               {"gsm8k": {"strict": 41, "flex": 49}, "hellaswag": {"acc": 4580, "acc_norm": 6146},
                "mmlu": {"college_computer_science": 34}, "mmlu_rate": 0.29},
               100000, 1777031577.0481532, "2911.779832839966", 12)
    na = build("TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T", "tinyllama",
               {"gsm8k": {"strict": 29, "flex": 37}, "hellaswag": {"acc": 4603, "acc_norm": 5951},
                "mmlu": {"college_computer_science": 27}, "mmlu_rate": 0.25},
               0, 1777040001.5, "2710.25", 13)
    outcomes_out = {}
    for (results, samples, label, seconds), fname in [
        (base, "results-base.json"), (ft, "results-ft.json"), (na, "results-bootstrap0.json"),
    ]:
        model_name = results["config"]["model_args"]["pretrained"]
        results["task_hashes"] = {}
        results.update({
            "model_source": "hf", "model_name": model_name,
            "model_name_sanitized": model_name.replace("/", "__"),
            "system_instruction": None, "system_instruction_sha": None, "fewshot_as_multiturn": None,
            "chat_template": None, "chat_template_sha": None, "total_evaluation_time_seconds": seconds,
        })
        dumped = json.dumps(results, indent=2, default=handle_non_serializable, ensure_ascii=False)
        with open(f"{out_dir}/{fname}", "w", encoding="utf-8") as f:
            f.write(dumped)
        if label in ("base", "ft"):
            outcomes_out[label] = {
                "gsm8k/exact_match,flexible-extract": samples["gsm8k"]["flexible-extract"],
                "gsm8k/exact_match,strict-match": samples["gsm8k"]["strict-match"],
                "hellaswag/acc,none": samples["hellaswag"]["acc"],
                "hellaswag/acc_norm,none": samples["hellaswag"]["acc_norm"],
                "mmlu_college_computer_science/acc,none": samples["mmlu_college_computer_science"]["acc"],
            }
    compact = {label: {k: "".join("1" if x else "0" for x in v) for k, v in d.items()} for label, d in outcomes_out.items()}
    with open(f"{out_dir}/outcomes.json", "w", encoding="utf-8") as f:
        json.dump(compact, f, indent=1)
    with open(f"{out_dir}/samples-lines.jsonl", "w", encoding="utf-8") as f:
        f.write(sample_lines())
    with open(f"{out_dir}/bootstrap.json", "w", encoding="utf-8") as f:
        json.dump(bootstrap_reference(), f)
    versions = {
        "lm_eval_results": {
            "script": "tools/reference/lm_eval_results.py", "python": platform.python_version(),
            "numpy": np.__version__,
            "follows": f"EleutherAI/lm-evaluation-harness@{LM_EVAL_COMMIT} (v0.4.12+48)",
        },
    }
    try:  # fold in what metrics_scipy.py recorded on the GPU host
        with open(f"{out_dir}/versions-scipy.json", encoding="utf-8") as f:
            versions["metrics_scipy"] = json.load(f)
    except FileNotFoundError:
        pass
    with open(f"{out_dir}/versions.json", "w", encoding="utf-8") as f:
        json.dump(versions, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
