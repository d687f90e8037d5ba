#!/usr/bin/env bash
# Device-side runner of the GPU-host benchmark (issues 6 and 8). Run in the repo root on the GPU
# host, after `node tools/gpu/build.mjs` here, carrying ['.gpu', '.carry/gpu']:
#   DEADLINE_S=360 bash tools/gpu/run-on-gpu.sh
# PyTorch makes a Llama-3.2-1B-shaped random model (bf16 save_pretrained), writes its fp32
# last-position logits and times PyTorch + PEFT LoRA training (bf16, strict fp32; checkpointing on
# and off). Then one Node process per stage, most wanted first: LoRA training with checkpointing
# on (NF4 base, dense f32 if NF4 is wrong on webgpu), the 1B logits against PyTorch fp32, training
# with checkpointing off, and (time left) the NF4 code path forced. nvidia-smi's memory.used is
# polled every 0.2 s into smi.csv meanwhile.
# Writes $OUT/{torch.json,node.json,smi.csv,table.md,log.txt}; prints the tables.
# Stages get what is left of DEADLINE_S (default 360 s); every stage writes its JSON as it goes.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-bench-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
DEADLINE_S=${DEADLINE_S:-360}
MODEL=${MODEL:-/tmp/llama1b}
BACKEND=${BACKEND:-webgpu}
TRAIN_STEPS=${TRAIN_STEPS:-3}
left() { # seconds left for a stage: min(want, deadline - elapsed - reserve), at least 5
  local l=$((DEADLINE_S - SECONDS - ${2:-15}))
  [ "$l" -gt "$1" ] && l=$1
  [ "$l" -lt 5 ] && l=5
  echo "$l"
}
node_stage() { # label, timeout, bundle arguments...
  local label=$1 limit=$2
  shift 2
  echo "== Node $BACKEND: $label (t=${SECONDS}s, limit ${limit}s)"
  timeout "$limit" node --enable-source-maps .carry/gpu/bundle.mjs --backend "$BACKEND" \
    --model "$MODEL" --out "$OUT/node.json" "$@" || echo "gpu-bench $label failed: rc=$?"
}
{
  source .gpu/gpu-env.sh
  dawn=.carry/gpu/node_modules/webgpu/dist/linux-x64
  [ -f $dawn/dawn.node ] || xz -dc $dawn/dawn.node.xz >$dawn/dawn.node
  nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv,noheader
  echo "libvulkan: $(ldconfig -p | grep -c libvulkan) entries; nproc $(nproc); $(grep MemTotal /proc/meminfo)"
  smi_pid=""
  if command -v nvidia-smi >/dev/null; then
    (while :; do
      printf '%s,%s\n' "$(date +%s%3N)" "$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)"
      sleep 0.2
    done) >"$OUT/smi.csv" 2>/dev/null &
    smi_pid=$!
  fi
  echo "== PyTorch: make the model, fp32 reference logits, PEFT LoRA training (t=${SECONDS}s)"
  timeout "$(left 130 200)" python3 tools/gpu/torch_bench.py --model-dir "$MODEL" \
    --json "$OUT/torch.json" --ref /tmp/llama1b-ref.bin --no-forward --train \
    || echo "torch_bench.py failed: rc=$?"
  node_stage "train, checkpointing on" "$(left 110 100)" --stages train --checkpointing on \
    --train-steps "$TRAIN_STEPS"
  node_stage "1B logits vs PyTorch fp32" "$(left 45 60)" --stages logits --torch-ref /tmp/llama1b-ref.bin
  node_stage "train, checkpointing off" "$(left 100 15)" --stages train --checkpointing off \
    --train-steps "$TRAIN_STEPS"
  if [ $((DEADLINE_S - SECONDS)) -ge 60 ]; then
    node_stage "train, NF4 forced, checkpointing on" "$(left 80 10)" --stages train --checkpointing on \
      --force-nf4 --train-steps "$TRAIN_STEPS"
  fi
  [ -n "$smi_pid" ] && kill "$smi_pid"
  echo "== table (t=${SECONDS}s)"
  python3 tools/gpu/table.py "$OUT" | tee "$OUT/table.md"
} 2>&1 | tee "$OUT/log.txt"
