"""Prints the GPU-host benchmark as markdown tables (BENCHMARKS.md style).

  python3 tools/gpu/table.py DIR     # DIR holds torch.json, node.json, and optionally
                                     # torch-load.json and smi.csv (epoch ms, MiB used)
Works on partial results: a stage that did not run prints as a missing row.
"""

import json
import os
import sys

FORWARD_ANCHORS = {"fp32": 18.6e3, "bf16": 156e3}  # tokens/s, PyTorch forward on this host (issue 6)
# Issue 8: PyTorch + PEFT LoRA training, Llama-3.2-1B shape, seq 512 x batch 8, r 16, all linear.
TRAIN_ANCHORS = {"bf16": 37.7e3, "fp32": 8.0e3}
TRAIN_ANCHOR_BF16_GB = 20.4
PARITY_BOUND = 1e-4
GIB = 1024.0  # MiB per GiB


def read(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def read_smi(path):
    samples = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) == 2 and parts[0].isdigit() and parts[1].strip().isdigit():
                    samples.append((int(parts[0]), int(parts[1])))
    except OSError:
        pass
    return samples


def fmt(x, digits=3):
    if x is None:
        return "–"
    if isinstance(x, str):
        return x
    if abs(x) >= 1000:
        return f"{x:.0f}"
    return f"{x:.{digits}g}"


def ratio(a, b):
    return a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None


def smi_peak(samples, entry):
    """Largest nvidia-smi memory.used (MiB) inside an entry's [startedAtMs, endedAtMs], minus the idle baseline."""
    if not samples or "startedAtMs" not in entry:
        return None
    baseline = min(used for _, used in samples)
    end = entry.get("endedAtMs", float("inf")) + 500
    inside = [used for t, used in samples if entry["startedAtMs"] <= t <= end]
    return (max(inside) - baseline) if inside else None


def f16_tables(node):
    """f16 tensor cores: the product's accuracy against float64 and its speed against our f32 kernel."""
    kernels = node.get("f16Kernels")
    out = []
    if kernels:
        out += [f"f16 tensor cores: product at {kernels.get('rows')} rows (error / Σ|x·w| against float64, 32 × 256 outputs):", "",
                "| product | f16 TFLOP/s | with packing x | our f32 tiled | speed-up | f16 error worst / mean | f32 tiled error worst / mean |",
                "|---|---|---|---|---|---|---|"]
        for r in kernels.get("shapes", []):
            if "error" in r:
                out.append(f"| {r['name']} | error: {r['error'][:160]} | | | | | |")
                continue
            e16, e32 = r.get("f16ErrorOverAbsSum", {}), r.get("f32ErrorOverAbsSum", {})
            out.append(f"| {r['name']}, K {r['k']}, N {r['n']} | {fmt(r.get('f16Tflops'))} | {fmt(r.get('f16WithPackTflops'))} | "
                       f"{fmt(r.get('f32Tflops'))} | {fmt(r.get('speedupOverF32'))} | {fmt(e16.get('worst'))} / {fmt(e16.get('mean'))} | "
                       f"{fmt(e32.get('worst'))} / {fmt(e32.get('mean'))} |")
        out.append("")
    for key, entry in node.items():
        if key.startswith("f16Accuracy_"):
            out.append(f"- {key}: " + ", ".join(f"{k} {fmt(v) if isinstance(v, float) else v}" for k, v in entry.items()
                                                if k not in ("converted", "dir")))
    return out + ([""] if out else [])


def kernel_tables(node, torch):
    out = []
    for key, label in (("kernels", ""), ("kernels_nr", ", Dawn toggle disable_robustness")):
        if node.get(key):
            out += kernel_table(node[key], torch, label)
    return out


def kernel_table(kernels, torch, label):
    cublas = {r["name"]: r["tflops"] for r in torch.get("matmulReference", {}).get("matmuls", [])}
    out = [f"WGSL kernels at {kernels.get('rows')} rows{label}, TFLOP/s (cuBLAS strict fp32 from the same command when run):", "",
           "| product | tfjs matMul | tiled WGSL | cuBLAS fp32 | tiled / tfjs | tiled / cuBLAS | NF4 dequant + tfjs | NF4 fused | fused / unfused |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in kernels.get("matmuls", []):
        if "error" in r:
            out.append(f"| {r['name']} | error: {r['error'][:120]} | | | | | | | |")
            continue
        ref = cublas.get(r["name"])
        out.append(f"| {r['name']}, K {r['k']}, N {r['n']} | {fmt(r.get('genericTflops'))} | {fmt(r.get('tiledTflops'))} | "
                   f"{fmt(ref)} | {fmt(r.get('speedup'))} | {fmt(ratio(r.get('tiledTflops'), ref))} | "
                   f"{fmt(r.get('nf4UnfusedTflops'))} | {fmt(r.get('nf4FusedTflops'))} | {fmt(r.get('nf4Speedup'))} |")
    bw = kernels.get("bandwidth")
    if bw:
        out += ["", f"NF4 dequantize {fmt(bw['dequantGBps'])} GB/s vs WGSL copy {fmt(bw['copyGBps'])} GB/s: "
                f"{fmt(bw['dequantOverCopy'])} (target ≥ 0.70)"]
    return out + [""]


def w8a8_tables(node, torch):
    """The W8A8 study: the int8 product against our f32 kernel and cuBLASLt int8, then accuracy."""
    out = []
    kernels = node.get("int8Kernels")
    if kernels:
        imm = {r["name"]: r.get("tops") for r in torch.get("int8Reference", {}).get("matmuls", [])}
        out += [f"W8A8: int8 subgroup-matrix product at {kernels.get('rows')} rows (exactness against the integer reference):", "",
                "| product | int8 TOPS | with activation quantization | f32 tiled TFLOP/s | torch._int_mm TOPS | int8 / f32 | ours / cuBLASLt | mismatches |",
                "|---|---|---|---|---|---|---|---|"]
        for r in kernels.get("shapes", []):
            if "error" in r:
                out.append(f"| {r['name']} | error: {r['error'][:120]} | | | | | | |")
                continue
            ref = imm.get(r["name"])
            out.append(f"| {r['name']}, K {r['k']}, N {r['n']} | {fmt(r.get('int8Tops'))} | {fmt(r.get('int8WithQuantizeTops'))} | "
                       f"{fmt(r.get('f32Tflops'))} | {fmt(ref)} | {fmt(ratio(r.get('int8WithQuantizeTops'), r.get('f32Tflops')))} | "
                       f"{fmt(ratio(r.get('int8Tops'), ref))} | {r.get('productMismatches')}/{r.get('checked')} products, "
                       f"{r.get('codeMismatches')}/{r.get('codesChecked')} codes |")
        out.append("")
    accuracy = [(k, v) for k, v in node.items() if k.startswith("w8a8Accuracy_")]
    if accuracy:
        out += ["| W8A8 accuracy | text | log-prob rel. error | top-1 agreement | mean KL | perplexity f32 → W8A8 |",
                "|---|---|---|---|---|---|"]
        for key, e in accuracy:
            if "error" in e:
                out.append(f"| {key[13:]} | error: {e['error'][:120]} | | | | |")
                continue
            out.append(f"| {key[13:]} ({e.get('arithmetic', 'tensor-cores')}) | {e.get('text')}, {e.get('tokens')} tokens | "
                       f"{fmt(e.get('logProbRelError'))} | {fmt(e.get('top1Agreement'))} | {fmt(e.get('meanKlF32ToW8a8'))} | "
                       f"{fmt(e.get('perplexityF32'))} → {fmt(e.get('perplexityW8a8'))} |")
        out.append("")
    return out


def hellaswag_table(node, base):
    """HellaSwag runs, each next to the PyTorch file its stage wrote (the same ids)."""
    rows = []
    for key, label, ref_file in (("hellaswag", "WGSL kernels", "torch-hellaswag.json"),
                                 ("hellaswag_generic", "tfjs generic", "torch-hellaswag.json"),
                                 ("hellaswag_w8a8", "W8A8", "torch-hs-w8a8.json"),
                                 ("hellaswag_f16", "f16 tensor cores", "torch-hs-f16.json")):
        entry = node.get(key)
        if not entry:
            continue
        ref = read(os.path.join(base, ref_file))
        if "seconds" in entry:
            value = f"{fmt(entry['seconds'])} s, {fmt(entry['tokensPerSecond'])} tokens/s"
        else:
            progress = entry.get("progress", {})
            value = f"not finished: {progress.get('done')} of {progress.get('total')} requests in {fmt(progress.get('seconds'))} s"
        fp32 = ref.get("fp32", {}).get("tokensPerSecond")
        bf16 = ref.get("bf16", {}).get("tokensPerSecond")
        rows.append(f"| HellaSwag, {entry.get('docs')} docs, {label}, batch {entry.get('batchSize')} | {value} | "
                    f"{fmt(fp32)} / {fmt(bf16)} | {fmt(ratio(entry.get('tokensPerSecond'), fp32))} / {fmt(ratio(entry.get('tokensPerSecond'), bf16))} | "
                    f"{fmt(ref.get('nodeVsTorchFp32', {}).get('meanRelDiff'))} (max {fmt(ref.get('nodeVsTorchFp32', {}).get('maxRelDiff'))}) |")
    if not rows:
        return []
    out = ["| evaluation | webgpu | PyTorch fp32 strict / bf16 tokens/s (same ids) | ratio | mean relative Δ log-prob vs PyTorch fp32 |",
           "|---|---|---|---|---|", *rows, ""]
    for key in ("hellaswag", "hellaswag_generic", "hellaswag_w8a8", "hellaswag_f16"):
        batch = node.get(key, {}).get("batchProfile")
        if not batch:
            continue
        if "error" in batch:
            out += [f"- {key}: batch profile failed: {batch['error'][:160]}", ""]
            continue
        gpu = batch.get("gpu", {})
        out += [f"One loglikelihood batch of {key} ({batch.get('rows')} rows × width {batch.get('width')}, "
                f"{batch.get('tokens')} tokens, {batch.get('logitRows')} logit rows): recording {fmt(batch.get('recordMs'))} ms, "
                f"recording + readback {fmt(batch.get('totalMs'))} ms; GPU kernels {fmt(gpu.get('kernelMs'))} ms over "
                f"{gpu.get('dispatches')} dispatches:", "", "| program | GPU ms | dispatches |", "|---|---|---|"]
        out += [f"| {item['label']} | {fmt(item['ms'])} | {item['count']} |" for item in gpu.get("byClass", [])[:12]]
        out.append("")
    return out


def main() -> None:
    base = sys.argv[1] if len(sys.argv) > 1 else "."
    torch = read(os.path.join(base, "torch.json"))
    node = read(os.path.join(base, "node.json"))
    load_ref = read(os.path.join(base, "torch-load.json"))
    smi = read_smi(os.path.join(base, "smi.csv"))
    backend = node.get("backend", "webgpu")
    out = []

    # --- logits and forward (issue 6) ---------------------------------------------------------
    rows = []

    def row(name, value, unit, ref_name=None, ref_value=None, target="–", note=""):
        r = ratio(value, ref_value)
        ref = f"{ref_name}: {fmt(ref_value)}" if ref_name and ref_value is not None else "–"
        val = f"{fmt(value)} {unit}".strip() if isinstance(value, (int, float)) else (value or "not run")
        rows.append(f"| {name} | {val} | {ref} | {fmt(r)} | {target} | {note} |")

    for case in node.get("parity", []):
        worst = max(case.get("maxRelError", float("nan")), case.get("leftPaddedBatchRelError", 0))
        row(f"{backend} parity, {case['case']}", worst if "maxRelError" in case else case.get("error", "failed"), "",
            target=f"≤ 1e-4 {'✓' if case.get('pass') else '✗'}",
            note=f"vs transformers fixtures; greedy identical: {case.get('greedyIdentical')}")
    for key, label in (("parityAtScale", ""), ("parityAtScale_w8a8", ", W8A8"), ("parityAtScale_f16", ", f16 tensor cores")):
        scale = node.get(key)
        if scale:
            row(f"{backend}{label}: 1B last-position logits vs PyTorch fp32 strict ({scale.get('rows')} rows)",
                scale.get("relError", scale.get("error")), "", "same ids, same bf16 weights", None,
                note=f"max abs Δ / max abs ref; argmax agree {scale.get('argmaxAgree')}/{scale.get('rows')}")
    for prec in ("bf16", "fp16"):
        entry = torch.get(f"{prec}LastLogits")
        if entry:
            row(f"PyTorch {prec}: 1B last-position logits vs PyTorch fp32 strict ({entry.get('rows')} rows)",
                entry.get("relError"), "", note=f"argmax agree {entry.get('argmaxAgree')}/{entry.get('rows')}")
    load = node.get("load")
    if load:
        ref_peak = load_ref.get("peakRssMiB")
        row(f"{backend}: dense loadModel of the 1B bf16 checkpoint, peak host RSS", load["sampledPeakRssMiB"], "MiB",
            "transformers from_pretrained f32 on CPU" if ref_peak else None, ref_peak,
            note=f"load {load['seconds']:.1f} s")
    for key, tkey, label in (("forwardFull", "Full", "all logits"), ("forwardLastOnly", "LastOnly", "last-position logits"),
                             ("forwardFull_nr", "Full", "all logits, disable_robustness"),
                             ("forwardFull_f16", "Full", "all logits, f16 tensor cores"),
                             ("forwardLastOnly_f16", "LastOnly", "last-position logits, f16 tensor cores"),
                             ("forwardLastOnly_nr", "LastOnly", "last-position logits, disable_robustness")):
        entry = node.get(key)
        if not entry:
            continue
        for prec in ("fp32", "tf32", "bf16", "fp16"):
            if torch.get(f"{prec}{tkey}") is None and prec in ("tf32", "fp16"):
                continue
            row(f"{backend}: forward {torch.get('seq')} × {torch.get('batch')}, {label}",
                entry.get("tokensPerSecond", entry.get("error")), "tokens/s",
                f"PyTorch {prec} same run", torch.get(f"{prec}{tkey}", {}).get("tokensPerSecond"))
    if rows:
        out.append("| benchmark | value | reference (same run) | ratio | target | note |")
        out.append("|---|---|---|---|---|---|")
        out.extend(rows)
        out.append("")

    # --- training (issue 8) --------------------------------------------------------------------
    ttrain = torch.get("train", {})
    trows = []
    for key, label in (("train_ckpt_on", "checkpointing on"), ("train_ckpt_off", "checkpointing off"),
                       ("train_ckpt_on_nr", "checkpointing on, disable_robustness"),
                       ("train_ckpt_on_f16base", "checkpointing on, base products on the f16 tensor cores"),
                       ("train_nf4forced_ckpt_on", "checkpointing on, NF4 forced (values wrong: cost only)")):
        entry = node.get(key)
        if not entry:
            continue
        ckpt = "on" if entry.get("checkpointing") else "off"
        tps = entry.get("tokensPerSecond")
        mem = entry.get("memory", entry.get("memoryAtError", {}))
        value = f"{fmt(tps)} tokens/s" if tps else ("error: " + entry["error"].splitlines()[0][:160] if "error" in entry else "not finished")
        bf16 = ttrain.get(f"bf16_ckpt_{ckpt}", {}).get("tokensPerSecond")
        fp32 = ttrain.get(f"fp32_ckpt_{ckpt}", {}).get("tokensPerSecond")
        smi_mib = smi_peak(smi, entry)
        trows.append(
            f"| {backend} {entry.get('base', '?')} base, {label} | {value} | "
            f"{fmt(ratio(tps, fp32))} / {fmt(ratio(tps, bf16))} | {fmt(ratio(tps, TRAIN_ANCHORS['fp32']))} / {fmt(ratio(tps, TRAIN_ANCHORS['bf16']))} | "
            f"{fmt(mem.get('peakNumBytesMiB', 0) / GIB)} GiB | {fmt(mem.get('peakGpuBytesInUseMiB', 0) / GIB)} GiB | "
            f"{fmt(smi_mib / GIB) if smi_mib is not None else '–'} GiB | "
            f"median of {len(entry.get('samples', []))} ({fmt(entry.get('medianSeconds'))} s/step), warm-up {fmt(entry.get('firstStepSeconds'))} s; "
            f"losses {[round(x, 5) for x in entry.get('losses', [])]}; {entry.get('fallback', '')} |")
    for key in ("bf16_ckpt_on", "fp32_ckpt_on", "bf16_ckpt_off", "fp32_ckpt_off"):
        entry = ttrain.get(key)
        if not entry:
            continue
        prec, ckpt = key.split("_ckpt_")
        tps = entry.get("tokensPerSecond")
        value = f"{fmt(tps)} tokens/s" if tps else "error: " + entry.get("error", "?")[:160]
        anchor = ratio(tps, TRAIN_ANCHORS[prec])
        smi_mib = smi_peak(smi, entry)
        mem_note = f"; bf16 memory anchor {TRAIN_ANCHOR_BF16_GB} GB: {fmt(ratio(entry.get('maxAllocatedMiB', 0) * 2**20 / 1e9, TRAIN_ANCHOR_BF16_GB))}" if prec == "bf16" else ""
        trows.append(
            f"| PyTorch + PEFT {'bf16' if prec == 'bf16' else 'fp32 strict (TF32 off)'}, checkpointing {ckpt} | {value} | – | "
            f"{fmt(anchor) + ' (' + prec + ')' if anchor else '–'} | max_memory_allocated {fmt(entry.get('maxAllocatedMiB', 0) / GIB)} GiB | "
            f"max_memory_reserved {fmt(entry.get('maxReservedMiB', 0) / GIB)} GiB | {fmt(smi_mib / GIB) if smi_mib is not None else '–'} GiB | "
            f"median of {len(entry.get('samples', []))} ({fmt(entry.get('medianSeconds'))} s/step); losses {[round(x, 5) for x in entry.get('losses', [])]}{mem_note} |")
    if trows:
        b, t = ttrain.get("batch", 8), ttrain.get("seq", 512)
        out.append(f"Training, seq {t} × batch {b}, LoRA r 16 alpha 16 on all seven projections, AdamW, clip 1.0:")
        out.append("")
        out.append("| run | throughput | ratio to PyTorch fp32 / bf16 (same run) | ratio to anchors fp32 8.0k / bf16 37.7k | peak tf.memory().numBytes | peak GPU buffers in use | nvidia-smi peak − idle | note |")
        out.append("|---|---|---|---|---|---|---|---|")
        out.extend(trows)
        out.append("")
    checks = []
    for key in ("train_ckpt_on", "train_ckpt_off", "train_nf4forced_ckpt_on"):
        entry = node.get(key, {})
        if "nf4Check" in entry:
            checks.append(f"- {key}: NF4 dequantization on {backend} vs `@qlora/nf4` (random 2048×2048, blocksize 64, double quant): {entry['nf4Check']}"
                          + (f"; loaded {entry['nf4CheckLoaded']}" if "nf4CheckLoaded" in entry else ""))
        if entry.get("deferredSyncReadsPerStep") is not None:
            checks.append(f"- {key}: synchronous reads deferred per step: {entry['deferredSyncReadsPerStep']}")
    node_loss = (node.get("train_ckpt_on", {}).get("losses") or [None])[0]
    torch_loss = (ttrain.get("fp32_ckpt_on", {}).get("losses") or [None])[0]
    if node.get("train_ckpt_on", {}).get("base") == "dense f32" and node_loss is not None and torch_loss:
        checks.append(f"- step-1 loss (base model, B = 0): {backend} dense f32 {node_loss:.7f} vs PyTorch fp32 strict {torch_loss:.7f} "
                      f"(relative difference {abs(node_loss - torch_loss) / abs(torch_loss):.2e})")
    if checks:
        out.extend(checks)
        out.append("")
    # --- issue 10: kernels, training with the kernels off, train(), the profile, HellaSwag ----------
    out.extend(kernel_tables(node, torch))
    out.extend(f16_tables(node))
    extra = []
    for key, label in (("train_ckpt_on_generic", "bench loop, tfjs generic kernels"),
                       ("trainApi_ckpt_on", "train() (qlora train's path), WGSL kernels"),
                       ("trainApi_ckpt_on_nr", "train(), WGSL kernels, disable_robustness"),
                       ("trainApi_ckpt_on_f16base", "train(), base products on the f16 tensor cores")):
        entry = node.get(key)
        if entry:
            tps = entry.get("tokensPerSecond")
            fp32 = ttrain.get("fp32_ckpt_on", {}).get("tokensPerSecond")
            extra.append(f"| {backend} nf4 base, checkpointing on, {label} | {fmt(tps)} tokens/s | "
                         f"{fmt(ratio(tps, fp32))} (PyTorch fp32 strict same run) | {fmt(ratio(tps, TRAIN_ANCHORS['fp32']))} | "
                         f"{entry.get('error', '').splitlines()[0][:160] if entry.get('error') else ''} |")
    if extra:
        out.append("| run | throughput | ratio | ratio to the 8.0k anchor | note |")
        out.append("|---|---|---|---|---|")
        out.extend(extra)
        out.append("")
    for train_key in ("train_ckpt_on", "train_ckpt_on_f16base"):
        profile = node.get(train_key, {}).get("profile")
        if not (profile and "byClass" in profile):
            continue
        out.append(f"GPU time of one training step ({train_key}, timestamp queries): {fmt(profile.get('kernelMs'))} ms of kernels "
                   f"in a {fmt(node[train_key].get('medianSeconds', 0) * 1000)} ms step; by program:")
        out.append("")
        out.append("| program | GPU ms | dispatches |")
        out.append("|---|---|---|")
        for item in profile["byClass"][:10]:
            out.append(f"| {item['label']} | {fmt(item['ms'])} | {item['count']} |")
        out.append("")
        optimizer = node.get(train_key, {}).get("optimizerProfile")
        if optimizer and "byClass" in optimizer:
            count = sum(item["count"] for item in optimizer["byClass"])
            out.append(f"The optimizer step after it: {fmt(optimizer.get('kernelMs'))} ms of kernels over {count} "
                       f"dispatches, {fmt(optimizer.get('wallMs'))} ms wall (timed, one submit per dispatch).")
            out.append("")
    out.extend(w8a8_tables(node, torch))
    out.extend(hellaswag_table(node, base))
    adapter = node.get("adapter", {})
    out.append(f"{backend} adapter: {adapter}; torch {torch.get('torch')}, transformers {torch.get('transformers')}, "
               f"PEFT {torch.get('peft')}, GPU {torch.get('gpu')}, attention {torch.get('attnImplementation')}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
