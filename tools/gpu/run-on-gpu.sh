#!/usr/bin/env bash
# Device-side runner of the GPU-host benchmark (issue 6 / issue 10). Run in the repo root on the
# GPU host, after `node tools/gpu/build.mjs` here, carrying ['.gpu', '.carry/gpu']:
#   bash tools/gpu/run-on-gpu.sh
# PyTorch makes a Llama-3.2-1B-shaped random model (bf16 save_pretrained) and times its forward
# (fp32 strict, bf16); the Node bundle checks webgpu parity on the transformers fixtures, loads the
# same checkpoint (peak host RSS), compares logits with PyTorch fp32 and times the forward.
# Writes $OUT/{torch.json,node.json,torch-load.json,table.md,log.txt}; prints one markdown table.
# Stages get what is left of DEADLINE_S (default 330 s), so the table prints inside a 360 s call.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-bench-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
DEADLINE_S=${DEADLINE_S:-330}
MODEL=${MODEL:-/tmp/llama1b}
BACKEND=${BACKEND:-webgpu}
left() { # seconds left for a stage: min(want, deadline - elapsed - reserve), at least 5
  local l=$((DEADLINE_S - SECONDS - ${2:-15}))
  [ "$l" -gt "$1" ] && l=$1
  [ "$l" -lt 5 ] && l=5
  echo "$l"
}
{
  source .gpu/gpu-env.sh
  dawn=.carry/gpu/node_modules/webgpu/dist/linux-x64
  [ -f $dawn/dawn.node ] || xz -dc $dawn/dawn.node.xz >$dawn/dawn.node
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  echo "libvulkan: $(ldconfig -p | grep -c libvulkan) entries; nproc $(nproc); $(grep MemTotal /proc/meminfo)"
  echo "== PyTorch: make the model and time it (t=${SECONDS}s)"
  timeout "$(left 120 150)" python3 tools/gpu/torch_bench.py --model-dir "$MODEL" \
    --json "$OUT/torch.json" --ref /tmp/llama1b-ref.bin || echo "torch_bench.py failed: rc=$?"
  echo "== Node $BACKEND: parity, load, forward (t=${SECONDS}s)"
  timeout "$(left 200 40)" node --enable-source-maps .carry/gpu/bundle.mjs --backend "$BACKEND" \
    --fixtures test-fixtures/trainer --model "$MODEL" --torch-ref /tmp/llama1b-ref.bin \
    --out "$OUT/node.json" --time-budget-s 30 || echo "gpu-bench failed: rc=$?"
  echo "== transformers from_pretrained peak RSS, the memory reference (t=${SECONDS}s)"
  timeout "$(left 60 5)" python3 tools/gpu/torch_bench.py --load-rss "$MODEL" \
    >"$OUT/torch-load.json" || echo "load-rss failed: rc=$?"
  echo "== table (t=${SECONDS}s)"
  python3 tools/gpu/table.py "$OUT" | tee "$OUT/table.md"
} 2>&1 | tee "$OUT/log.txt"
