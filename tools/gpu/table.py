"""Prints the GPU-host benchmark as one markdown table (BENCHMARKS.md style).

  python3 tools/gpu/table.py DIR     # DIR holds torch.json, node.json and torch-load.json
Works on partial results: a stage that did not run prints as a missing row.
"""

import json
import os
import sys

ANCHORS = {"fp32": 18.6e3, "bf16": 156e3}  # tokens/s, PyTorch on this host (issue 6)
PARITY_BOUND = 1e-4


def read(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def fmt(x, digits=3):
    if x is None:
        return "–"
    if isinstance(x, str):
        return x
    if abs(x) >= 1000:
        return f"{x:.0f}"
    return f"{x:.{digits}g}"


def main() -> None:
    base = sys.argv[1] if len(sys.argv) > 1 else "."
    torch = read(os.path.join(base, "torch.json"))
    node = read(os.path.join(base, "node.json"))
    load_ref = read(os.path.join(base, "torch-load.json"))
    backend = node.get("backend", "webgpu")
    rows = []

    def row(name, value, unit, ref_name=None, ref_value=None, target="–", note=""):
        ratio = value / ref_value if isinstance(value, (int, float)) and ref_value else None
        ref = f"{ref_name}: {fmt(ref_value)}" if ref_name and ref_value is not None else "–"
        val = f"{fmt(value)} {unit}" if isinstance(value, (int, float)) else (value or "not run")
        rows.append(f"| {name} | {val} | {ref} | {fmt(ratio)} | {target} | {note} |")

    for case in node.get("parity", []):
        worst = max(case.get("maxRelError", float("nan")), case.get("leftPaddedBatchRelError", 0))
        ok = case.get("pass")
        row(f"{backend} parity, {case['case']} (max abs Δ / max abs ref, T={','.join(map(str, case.get('sequenceLengths', [])))} + left-padded batch)",
            worst if "maxRelError" in case else case.get("error", "failed"), "",
            target=f"≤ 1e-4 {'✓' if ok else '✗'}",
            note=f"vs transformers fixtures; greedy identical: {case.get('greedyIdentical')}")
    load = node.get("load")
    if load:
        ref_peak = load_ref.get("peakRssMiB")
        row(f"{backend}: loadModel of the 1B bf16 checkpoint ({load['parameters'] / 1e9:.3f} B params → f32), peak host RSS",
            load["sampledPeakRssMiB"], "MiB", "transformers from_pretrained f32 on CPU" if ref_peak else None, ref_peak,
            note=f"lower is better; load {load['seconds']:.1f} s (transformers {fmt(load_ref.get('seconds'))} s); "
                 f"RSS before {load['rssBeforeMiB']:.0f} MiB; VmHWM after load {load['vmHwmAfterMiB']:.0f} MiB")
    scale = node.get("parityAtScale")
    if scale:
        row(f"{backend}: 1B last-position logits vs PyTorch fp32 strict ({scale.get('rows')} rows)",
            scale.get("relError", scale.get("error")), "", note=f"max abs Δ / max abs ref; argmax agree {scale.get('argmaxAgree')}/{scale.get('rows')}")
    b, t = torch.get("batch", 32), torch.get("seq", 128)
    for key, tkey, label in (("forwardFull", "Full", "all logits"), ("forwardLastOnly", "LastOnly", "last-position logits")):
        entry = node.get(key, {})
        value = entry.get("tokensPerSecond", entry.get("error"))
        note = f"median of {len(entry.get('samples', []))}, first call {fmt(entry.get('firstSeconds'))} s" if "samples" in entry else ""
        for prec in ("fp32", "bf16"):
            ref = torch.get(f"{prec}{tkey}", {}).get("tokensPerSecond")
            row(f"{backend}: forward {t} × {b} tokens, {label}", value, "tokens/s",
                f"PyTorch {'fp32 strict' if prec == 'fp32' else 'bf16'} same run", ref, note=note)
        for prec in ("fp32", "bf16"):
            ref = torch.get(f"{prec}{tkey}", {}).get("tokensPerSecond")
            if ref is not None:
                row(f"PyTorch {'fp32 strict (TF32 off)' if prec == 'fp32' else 'bf16'}: forward {t} × {b}, {label}",
                    ref, "tokens/s", f"issue-6 anchor {prec}", ANCHORS[prec])
    print("| benchmark | throughput | reference (same run) | ratio | target | note |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    adapter = node.get("adapter", {})
    print(f"\n{backend} adapter: {adapter}; torch {torch.get('torch')}, transformers {torch.get('transformers')}, "
          f"GPU {torch.get('gpu')}, attention {torch.get('attnImplementation')}")


if __name__ == "__main__":
    main()
