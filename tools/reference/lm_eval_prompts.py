"""Golden prompts, requests, filters and scores for @qlora/bench-{hellaswag,gsm8k,mmlu}, made by
lm-evaluation-harness's own code (not a re-implementation).

It imports lm_eval v0.4.12 from a source checkout (default `.ref/lm-evaluation-harness`, or
$LM_EVAL_SRC; the checkout is never committed), stubs the heavy imports the code paths used here do
not need (datasets, tqdm, sacrebleu, dill), and runs `ConfigurableTask` from the real task YAMLs on
the real data in ../shared/data: `fewshot_context` with the task's sampler seeded 1234,
`construct_requests`, the filter ensembles, `process_results`, the aggregation and stderr functions,
`aggregate_subtask_metrics` + `pooled_sample_stderr`, and the samples-file serialisation of
`evaluator.py` / `evaluation_tracker.py`. The model is a deterministic fake whose answers are a fixed
function of the request strings; @qlora/bench-core's `createDeterministicLanguageModel` implements
the same function.

Run (local CPython 3.11, numpy, jinja2, pyyaml):
    python3 tools/reference/lm_eval_prompts.py
Writes test-fixtures/bench/{hellaswag,gsm8k,mmlu}.json and versions.json.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import importlib.util
import json
import os
import platform
import sys
import types

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "..", "shared", "data")
OUT = os.path.join(ROOT, "test-fixtures", "bench")
LM_EVAL_SRC = os.environ.get("LM_EVAL_SRC", os.path.join(ROOT, ".ref", "lm-evaluation-harness"))
EOS_TEXT = "<|end_of_text|>"


# --- import lm_eval from source without installing it -------------------------------------------
class _Stub(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {"__init__": lambda self, *a, **k: None})


def _bootstrap_lm_eval():
    pkg = types.ModuleType("lm_eval")
    pkg.__path__ = [os.path.join(LM_EVAL_SRC, "lm_eval")]
    pkg.__version__ = "0.4.12"
    sys.modules["lm_eval"] = pkg
    for name in ["datasets", "tqdm", "sacrebleu", "dill"]:
        stub = _Stub(name)
        stub.__path__ = []
        sys.modules[name] = stub
    sys.modules["tqdm"].tqdm = lambda it=None, *a, **k: it


def _load_file_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_bootstrap_lm_eval()
from lm_eval import utils as lm_utils  # noqa: E402
from lm_eval.api import metrics as lm_metrics  # noqa: E402
from lm_eval.api.instance import Instance  # noqa: E402
from lm_eval.api.task import ConfigurableTask  # noqa: E402

yaml_loader = _load_file_module(
    "lm_eval_yaml_loader", os.path.join(LM_EVAL_SRC, "lm_eval", "tasks", "_yaml_loader.py")
)
TASKS = os.path.join(LM_EVAL_SRC, "lm_eval", "tasks")


class ListDataset(list):
    """The two things ConfigurableTask asks of a datasets.Dataset: `features` and `map`."""

    @property
    def features(self):
        return {k: None for k in self[0]} if self else {}

    def map(self, fn):
        return ListDataset([{**doc, **fn(doc)} for doc in self])


class LocalTask(ConfigurableTask):
    def __init__(self, config, splits):
        self._local_splits = splits
        super().__init__(config=config)

    def download(self, *args, **kwargs):
        self.dataset = {k: ListDataset(v) for k, v in self._local_splits.items()}


def load_task_yaml(*parts):
    cfg = yaml_loader.load_yaml(os.path.join(TASKS, *parts))
    cfg.pop("tag", None)
    return cfg


# --- the deterministic fake model (same function as createDeterministicLanguageModel) --------------
def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fake_loglikelihood(context: str, continuation: str):
    # lm-eval's TemplateLM._encode_pair moves trailing context whitespace to the continuation.
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    h = sha256(context + "\x00" + continuation)
    u32 = int(h[:8], 16)
    byte4 = int(h[8:10], 16)
    return (-(u32 % 100000) / 4096 - 0.5 * len(continuation), (byte4 & 1) == 1)


def gsm8k_fake_generation(context: str, answers: dict) -> str:
    u = int(sha256(context)[:8], 16)
    variant, n = u % 7, (u >> 8) % 1000
    start = context.rfind("Question: ") + len("Question: ")
    question = context[start : context.rfind("\nAnswer:")]
    ans = answers.get(question, "0")
    return [
        f" Let me think.\n#### {ans}\n\nQuestion: What is 2+2?\nAnswer: 4",
        f" The answer is {ans}.",
        f" So the total is ${ans}.00 dollars.",
        " I do not know.",
        f" #### {n}",
        f" {ans}</s>Question: junk",
        f" First 12 apples, then {ans} pears, and 3 left.",
    ][variant]


def cut_at_stop(text: str, until) -> str:
    # lm-eval's HFLM.generate_until: split on each stop string in turn and keep the head.
    for term in until:
        if len(term) > 0:
            text = text.split(term)[0]
    return text


# --- running a task the way evaluator.evaluate does ---------------------------------------------
# Task runs recorded for the combined results file (the main run of each task).
EVAL_RESULTS_ACC = {}

def run_task(task: LocalTask, num_fewshot: int, answers=None, record=False):
    task.set_fewshot_seed(1234)
    docs = list(task.eval_docs)
    per_doc = []
    for doc_id, doc in enumerate(docs):
        ctx = task.fewshot_context(doc, num_fewshot)
        reqs = task.construct_requests(doc, ctx, metadata=(task.config.task, doc_id, 1))
        reqs = reqs if isinstance(reqs, list) else [reqs]
        for inst in reqs:
            if inst.request_type == "loglikelihood":
                inst.resps.append(fake_loglikelihood(*inst.args))
            else:
                context, gen_kwargs = inst.args
                until = list(gen_kwargs["until"]) + [EOS_TEXT]
                inst.resps.append(cut_at_stop(gsm8k_fake_generation(context, answers), until))
        per_doc.append((doc_id, doc, ctx, reqs))
    for ensemble in task._filters:
        ensemble.apply([inst for _, _, _, reqs in per_doc for inst in reqs])

    samples, raw_metrics = [], {}
    for ensemble in task._filters:
        key = ensemble.name
        for doc_id, doc, _ctx, reqs in per_doc:
            metrics = task.process_results(doc, [r.filtered_resps[key] for r in reqs])
            target = task.doc_to_target(doc)
            example = {
                "doc_id": doc_id,
                "doc": doc,
                "target": target,
                "arguments": [r.args for r in reqs],
                "resps": [r.resps for r in reqs],
                "filtered_resps": [r.filtered_resps[key] for r in reqs],
                "filter": key,
                "metrics": list(metrics.keys()),
                "doc_hash": lm_utils.hash_string(
                    json.dumps(reqs[0].doc, indent=2, default=lm_utils.handle_non_serializable, ensure_ascii=False)
                ),
                "prompt_hash": lm_utils.hash_string(reqs[0].arguments[0]),
                "target_hash": lm_utils.hash_string(str(target)),
            }
            example.update(metrics)
            samples.append(example)
            for metric, value in metrics.items():
                raw_metrics.setdefault((metric, key), []).append(value)

    agg = {}
    for (metric, key), items in raw_metrics.items():
        agg_fn = task.aggregation()[metric]
        agg[f"{metric},{key}"] = agg_fn(items)
        stderr_fn = lm_metrics.stderr_for_metric(metric=agg_fn, bootstrap_iters=100000)
        agg[f"{metric}_stderr,{key}"] = stderr_fn(items) if (stderr_fn and len(items) > 1) else "N/A"
    task_hash = sha256("".join(s["doc_hash"] + s["prompt_hash"] + s["target_hash"] for s in samples))
    if record:
        EVAL_RESULTS_ACC[task.config.task] = {"task": task, "raw_metrics": raw_metrics, "logged_samples": samples}
    return per_doc, samples, raw_metrics, agg, task_hash


def sample_line(sample) -> str:
    """evaluation_tracker.save_results_samples, one line."""
    sample = dict(sample)
    arguments = {}
    for i, arg in enumerate(sample["arguments"]):
        arguments[f"gen_args_{i}"] = {f"arg_{j}": tmp for j, tmp in enumerate(arg)}
    sample["resps"] = lm_utils.sanitize_list(sample["resps"])
    sample["filtered_resps"] = lm_utils.sanitize_list(sample["filtered_resps"])
    sample["arguments"] = arguments
    sample["target"] = str(sample["target"])
    return json.dumps(sample, default=lm_utils.handle_non_serializable, ensure_ascii=False)


def samples_file_sha(samples) -> str:
    """sha256 of the whole samples_<task>.jsonl text (every line + "\\n")."""
    return sha256("".join(sample_line(s) + "\n" for s in samples))


def request_digest(ctx_and_conts) -> str:
    return sha256("\x00".join(ctx_and_conts))


def bits(values) -> str:
    return "".join("1" if v == 1.0 else "0" for v in values)


def reprs(agg) -> dict:
    return {k: (repr(float(v)) if not isinstance(v, str) else v) for k, v in agg.items()}


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# --- hellaswag -----------------------------------------------------------------------------------
def make_hellaswag():
    raw = read_jsonl(os.path.join(DATA, "hellaswag", "hellaswag_val_raw_subset1000.jsonl"))
    cfg = load_task_yaml("hellaswag", "hellaswag.yaml")
    task = LocalTask(cfg, {"validation": raw, "train": raw})
    per_doc, samples, raw_metrics, agg, task_hash = run_task(task, 0, record=True)
    digests = [request_digest([reqs[0].args[0]] + [r.args[1] for r in reqs]) for _, _, _, reqs in per_doc]
    examples = [{"doc": doc, "context": ctx, "continuations": [r.args[1] for r in reqs]} for _, doc, ctx, reqs in per_doc[:3]]

    # k-shot: few-shot pool = docs 0..499 (as "train"), evaluated docs 500..519, 3 shots.
    kcfg = dict(load_task_yaml("hellaswag", "hellaswag.yaml"))
    ktask = LocalTask(kcfg, {"validation": raw[500:520], "train": raw[:500]})
    kper_doc, _, _, _, _ = run_task(ktask, 3)
    # k-shot where the pool holds the evaluated docs: lm-eval draws k+1 and drops the eval doc.
    scfg = dict(load_task_yaml("hellaswag", "hellaswag.yaml"))
    stask = LocalTask(scfg, {"validation": raw[:30], "train": raw[:30]})
    sper_doc, _, _, _, _ = run_task(stask, 10)
    kshot_self = {
        "numFewshot": 10,
        "range": [0, 30],
        "requestSha256": [request_digest([reqs[0].args[0]] + [r.args[1] for r in reqs]) for _, _, _, reqs in sper_doc],
    }
    kshot = {
        "numFewshot": 3,
        "trainRange": [0, 500],
        "evalRange": [500, 520],
        "requestSha256": [request_digest([reqs[0].args[0]] + [r.args[1] for r in reqs]) for _, _, _, reqs in kper_doc],
        "exampleContext": kper_doc[0][2],
    }
    return {
        "source": "hellaswag/hellaswag_val_raw_subset1000.jsonl",
        "count": len(per_doc),
        "requestSha256": digests,
        "examples": examples,
        "acc": bits(raw_metrics[("acc", "none")]),
        "accNorm": bits(raw_metrics[("acc_norm", "none")]),
        "results": reprs(agg),
        "taskHash": task_hash,
        "sampleLines": [sample_line(s) for s in samples[:3]],
        "kshot": kshot,
        "kshotSelf": kshot_self,
        "samplesFileSha256": samples_file_sha(samples),
    }


# --- gsm8k ---------------------------------------------------------------------------------------
HARD_OUTPUTS = [
    " The total is $1,234.50.",
    " #### -3",
    " The answer is 7.",
    " 12 apples and 5 pears make 17 fruits, minus 2 is 15",
    " I do not know",
    "",
    " #### 1,234\n#### 99",
    " so $18.00",
    " -.5 and .",
    " 42.\n",
    " #### 5.\n\nQuestion:",
    " $$ , 3",
]


def make_gsm8k():
    test = read_jsonl(os.path.join(DATA, "gsm8k", "test.jsonl"))
    train = read_jsonl(os.path.join(DATA, "gsm8k", "train.jsonl"))
    cfg = load_task_yaml("gsm8k", "gsm8k.yaml")
    task = LocalTask(cfg, {"test": test, "train": train})
    answers = {d["question"]: d["answer"].split("#### ")[-1] for d in test}
    per_doc, samples, raw_metrics, agg, task_hash = run_task(task, 5, answers, record=True)
    n = len(per_doc)
    strict = [reqs[0].filtered_resps["strict-match"] for _, _, _, reqs in per_doc]
    flexible = [reqs[0].filtered_resps["flexible-extract"] for _, _, _, reqs in per_doc]

    # Filters and exact_match on hard strings, through the task's own ensembles and metric.
    hard = []
    gold = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 1,234.50"
    metric_kwargs = task._metric_fn_kwargs["exact_match"]
    for text in HARD_OUTPUTS:
        inst = Instance("generate_until", {"question": "q", "answer": gold}, ("ctx", {}), 0, ("gsm8k", 0, 1))
        inst.resps.append(text)
        row = {"text": text}
        for ensemble in task._filters:
            ensemble.apply([inst])
            filtered = inst.filtered_resps[ensemble.name]
            em = lm_metrics.exact_match_hf_evaluate(predictions=[filtered], references=[gold], **metric_kwargs)["exact_match"]
            row[ensemble.name] = [filtered, float(em)]
        hard.append(row)

    return {
        "source": "gsm8k/test.jsonl + gsm8k/train.jsonl",
        "count": n,
        "eosText": EOS_TEXT,
        "contextSha256": [sha256(ctx) for _, _, ctx, _ in per_doc],
        "examples": {str(i): per_doc[i][2] for i in (0, 1, n - 1)},
        "generationKwargs": per_doc[0][3][0].args[1],
        "strict": strict,
        "flexible": flexible,
        "emStrict": bits(raw_metrics[("exact_match", "strict-match")]),
        "emFlexible": bits(raw_metrics[("exact_match", "flexible-extract")]),
        "results": reprs(agg),
        "taskHash": task_hash,
        "sampleLines": [sample_line(samples[0]), sample_line(samples[n])],
        "samplesFileSha256": samples_file_sha(samples),
        "hardOutputs": hard,
        "exactMatchGold": gold,
    }


# --- mmlu ----------------------------------------------------------------------------------------
CS_SUBJECTS = ["college_computer_science", "high_school_computer_science", "computer_security", "machine_learning"]


def read_mmlu_csv(subject, split):
    path = os.path.join(DATA, "mmlu", split, f"{subject}_{split}.csv")
    with open(path, newline="", encoding="utf-8") as f:
        return [
            {"question": row[0], "subject": subject, "choices": row[1:5], "answer": "ABCD".index(row[5])}
            for row in csv.reader(f)
        ]


def make_mmlu():
    out = {"subjects": {}}
    results, sizes = {}, {}
    for subject in CS_SUBJECTS:
        test, dev = read_mmlu_csv(subject, "test"), read_mmlu_csv(subject, "dev")
        cfg = load_task_yaml("mmlu", "default", f"mmlu_{subject}.yaml")
        task = LocalTask(cfg, {"test": test, "dev": dev})
        kper_doc, _, _, _, _ = run_task(LocalTask(dict(load_task_yaml("mmlu", "default", f"mmlu_{subject}.yaml")), {"test": test, "dev": dev}), 5)
        per_doc, samples, raw_metrics, agg, task_hash = run_task(task, 0, record=True)
        out["subjects"][subject] = {
            "count": len(per_doc),
            "requestSha256": [request_digest([reqs[0].args[0]] + [r.args[1] for r in reqs]) for _, _, _, reqs in per_doc],
            "requestSha256FiveShot": [request_digest([reqs[0].args[0]] + [r.args[1] for r in reqs]) for _, _, _, reqs in kper_doc],
            "exampleContext": per_doc[0][2],
            "exampleContextFiveShot": kper_doc[0][2],
            "acc": bits(raw_metrics[("acc", "none")]),
            "results": reprs(agg),
            "taskHash": task_hash,
            "sampleLines": [sample_line(samples[0])],
            "samplesFileSha256": samples_file_sha(samples),
        }
        results[subject] = agg
        sizes[subject] = len(per_doc)
    values = [results[s]["acc,none"] for s in CS_SUBJECTS]
    stderrs = [results[s]["acc_stderr,none"] for s in CS_SUBJECTS]
    n = [sizes[s] for s in CS_SUBJECTS]
    out["group"] = {
        "acc,none": repr(float(lm_metrics.aggregate_subtask_metrics(values, n, True))),
        "acc_stderr,none": repr(float(lm_metrics.pooled_sample_stderr(stderrs, n))),
        "sample_len": sum(n),
    }
    return out


def make_results():
    """lm-eval's own results assembly (evaluator_utils._process_results + _to_eval_results),
    serialised like EvaluationTracker (indent=2, ensure_ascii=False), for three runs: hellaswag
    (0-shot, 1000 docs), gsm8k (5-shot), and the four CS subjects under a `mmlu_cs` group with
    `weight_by_size`. `configs` is emptied: it holds lm-eval's full dump_config (process_docs source
    text and all defaults), which the port does not reproduce."""
    from lm_eval.api.group import Group
    from lm_eval.config.group import AggMetricConfig
    from lm_eval.evaluator_utils import _process_results

    def results_text(names, groups):
        acc = {name: EVAL_RESULTS_ACC[name] for name in names}
        for group in groups.values():
            for name in names:
                group.add(acc[name]["task"])
        res = _process_results(acc, groups, 100000)._to_eval_results()
        res["configs"] = {}
        return json.dumps(res, indent=2, default=lm_utils.handle_non_serializable, ensure_ascii=False)

    mmlu_names = [f"mmlu_{s}" for s in CS_SUBJECTS]
    group = Group("mmlu_cs", aggregate_metric_list=[AggMetricConfig(metric="acc", weight_by_size=True)])
    return {
        "hellaswag": results_text(["hellaswag"], {}),
        "gsm8k": results_text(["gsm8k"], {}),
        "mmlu": results_text(mmlu_names, {"mmlu_cs": group}),
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, make in [("hellaswag", make_hellaswag), ("gsm8k", make_gsm8k), ("mmlu", make_mmlu), ("results", make_results)]:
        data = make()
        path = os.path.join(OUT, f"{name}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        print(f"wrote {path} ({os.path.getsize(path)} bytes)", file=sys.stderr)
    import jinja2
    import numpy
    import yaml

    with open(os.path.join(OUT, "versions.json"), "w") as f:
        json.dump(
            {
                "lm_eval": "0.4.12 (source tag v0.4.12, imported from a checkout, not installed)",
                "python": platform.python_version(),
                "numpy": numpy.__version__,
                "jinja2": jinja2.__version__,
                "pyyaml": yaml.__version__,
                "script": "tools/reference/lm_eval_prompts.py",
            },
            f,
            indent=2,
        )
        f.write("\n")


if __name__ == "__main__":
    main()
