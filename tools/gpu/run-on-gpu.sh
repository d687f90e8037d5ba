#!/usr/bin/env bash
# Device-side runner of the GPU-host benchmark (issues 6, 8 and 10). Run in the repo root on the GPU
# host, after `node tools/gpu/build.mjs` here, carrying ['.gpu', '.carry/gpu']:
#   PLAN="torch kernels logits train" DEADLINE_S=560 bash tools/gpu/run-on-gpu.sh
# PLAN lists the stages in order (see the case below and tools/gpu/README.md): PyTorch makes the
# Llama-3.2-1B-shaped random model (bf16 save_pretrained) and its references first, then one Node
# process per stage. nvidia-smi's memory.used is polled every 0.2 s into smi.csv meanwhile.
# Writes $OUT/{torch.json,node.json,smi.csv,table.md,log.txt,torch-hellaswag.json}; prints the tables.
# Stages get what is left of DEADLINE_S (default 360 s); every stage writes its JSON as it goes.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-bench-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
DEADLINE_S=${DEADLINE_S:-360}
MODEL=${MODEL:-/tmp/llama1b}
BACKEND=${BACKEND:-webgpu}
TRAIN_STEPS=${TRAIN_STEPS:-3}
# Stages in order (each gets what is left of DEADLINE_S): torch torch-fwd torch-model kernels logits
# forward-generic train train-off train-generic train-api hellaswag hellaswag-check int8 logits-w8a8
# accuracy-1b f16 logits-f16 accuracy-1b-f16 hellaswag-f16 train-f16 train-api-f16; any Node stage as `name@nr` runs with Dawn's disable_robustness toggle
PLAN=${PLAN:-torch kernels logits train train-api forward-generic train-generic}
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
    --model "$MODEL" --out "$OUT/node.json" $TOGGLES "$@" || echo "gpu-bench $label failed: rc=$?"
}
cores() { # the bundle flag that starts Dawn with the tensor cores a mode needs: w8a8 or f16
  [ "$1" = w8a8 ] && echo --int8-tensor-cores || echo --f16-tensor-cores
}
hellaswag_data() { # TinyLlama's tokenizer beside the random 1B model; the validation set, lm-eval rules
  cp .carry/gpu/data/tokenizer.json .carry/gpu/data/tokenizer_config.json \
    .carry/gpu/data/special_tokens_map.json "$MODEL"/
  xz -dc .carry/gpu/data/hellaswag_val_preprocessed.jsonl.xz >/tmp/hellaswag.jsonl
}
hellaswag_run() { # label, pairs file, PyTorch json, bundle arguments...: EVAL_LIMIT docs (all by
  # default), then torch_hellaswag.py on the same token ids, log-probabilities compared per request
  local label=$1 pairs=$2 torch_json=$3
  shift 3
  hellaswag_data
  node_stage "$label" "$(left 540 90)" --stages hellaswag --hellaswag /tmp/hellaswag.jsonl \
    --eval-batch "${EVAL_BATCH:-32}" --pairs-out "$pairs" ${EVAL_LIMIT:+--eval-limit $EVAL_LIMIT} \
    ${PROFILE:+--profile} "$@"
  echo "== PyTorch: the same HellaSwag requests (t=${SECONDS}s)"
  [ -f "$pairs" ] && timeout "$(left 120 10)" python3 tools/gpu/torch_hellaswag.py --model-dir "$MODEL" \
    --pairs "$pairs" --json "$OUT/$torch_json" --batch "${EVAL_BATCH:-32}" || echo "torch_hellaswag.py failed"
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
  for stage in $PLAN; do
    # A stage written `name@nr` runs its Node processes with Dawn's disable_robustness toggle
    # (no bounds clamp on array accesses); their result keys end in `_nr`.
    TOGGLES=""
    case $stage in *@nr) TOGGLES="--dawn-toggles disable_robustness"; stage=${stage%@nr} ;; esac
    case $stage in
    torch)
      echo "== PyTorch: cuBLAS matmuls, the model, fp32 reference logits, forward, PEFT LoRA training (t=${SECONDS}s)"
      timeout "$(left 200 200)" python3 tools/gpu/torch_bench.py --model-dir "$MODEL" \
        --json "$OUT/torch.json" --ref /tmp/llama1b-ref.bin --matmuls --train \
        || echo "torch_bench.py failed: rc=$?" ;;
    kernels) node_stage "WGSL kernels vs tfjs" "$(left 120 30)" --stages kernels ;;
    logits) node_stage "1B logits vs PyTorch fp32 + forward" "$(left 90 30)" --stages logits,forward \
      --torch-ref /tmp/llama1b-ref.bin ;;
    forward-generic) node_stage "forward, tfjs generic kernels" "$(left 90 30)" --stages forward --kernels off ;;
    train) node_stage "train NF4, checkpointing on" "$(left 110 30)" --stages train --checkpointing on \
      --train-steps "$TRAIN_STEPS" ${PROFILE:+--profile} ;;
    train-f16) node_stage "train NF4, checkpointing on, base products on the f16 tensor cores" "$(left 110 30)" \
      --f16-tensor-cores --f16-base --stages train --checkpointing on --train-steps "$TRAIN_STEPS" ${PROFILE:+--profile} ;;
    train-api-f16) node_stage "train() NF4, checkpointing on, f16 base products" "$(left 110 30)" \
      --f16-tensor-cores --f16-base --stages train-api --checkpointing on --train-steps "$TRAIN_STEPS" ;;
    train-off) node_stage "train NF4, checkpointing off" "$(left 110 30)" --stages train --checkpointing off \
      --train-steps "$TRAIN_STEPS" ;;
    train-generic) node_stage "train NF4, tfjs generic kernels" "$(left 110 30)" --stages train \
      --checkpointing on --kernels off --train-steps "$TRAIN_STEPS" ;;
    train-api) node_stage "train() NF4, checkpointing on" "$(left 110 30)" --stages train-api \
      --checkpointing on --train-steps "$TRAIN_STEPS" ;;
    hellaswag) hellaswag_run "full HellaSwag eval" /tmp/hellaswag-pairs.json torch-hellaswag.json ;;
    hellaswag-check)
      # The same first EVAL_LIMIT docs with the WGSL kernels on and off, each against PyTorch fp32
      # on every request (sample 1).
      hellaswag_data
      for kernels in ${KERNEL_MODES:-on off}; do
        node_stage "HellaSwag check, kernels $kernels" 60 --stages hellaswag --hellaswag /tmp/hellaswag.jsonl \
          --eval-batch "${EVAL_BATCH:-32}" --pairs-out /tmp/hs-$kernels.json --kernels $kernels \
          --eval-limit "${EVAL_LIMIT:-250}"
        [ -f /tmp/hs-$kernels.json ] && timeout 60 python3 tools/gpu/torch_hellaswag.py --model-dir "$MODEL" \
          --pairs /tmp/hs-$kernels.json --json "$OUT/torch-hs-$kernels.json" --batch "${EVAL_BATCH:-32}" \
          --sample 1 || echo "torch_hellaswag.py failed"
      done ;;
    torch-fwd)
      echo "== PyTorch: the model, fp32 reference logits, forward (t=${SECONDS}s)"
      timeout "$(left 150 150)" python3 tools/gpu/torch_bench.py --model-dir "$MODEL" \
        --json "$OUT/torch.json" --ref /tmp/llama1b-ref.bin --ref-rows 32 --int8 \
        || echo "torch_bench.py failed: rc=$?" ;;
    int8 | f16)
      # The tensor-core studies: the product against its reference and our f32 kernel (int8: bit
      # for bit against integer arithmetic; f16: error against float64; speed), then f32 against
      # the converted model on the pretrained stories260K reading HellaSwag text.
      mode=$([ "$stage" = int8 ] && echo w8a8 || echo f16)
      xz -dc .carry/gpu/data/hellaswag_val_preprocessed.jsonl.xz >/tmp/hellaswag.jsonl
      node_stage "$stage: subgroup-matrix kernels" "$(left 120 30)" $(cores $mode) --stages "$stage-kernels"
      node_stage "$stage: accuracy on stories260K" "$(left 60 30)" $(cores $mode) --stages w8a8-accuracy \
        --accuracy-mode $mode --accuracy-model .carry/gpu/stories260k --hellaswag /tmp/hellaswag.jsonl ;;
    logits-w8a8 | logits-f16)
      mode=${stage#logits-}
      node_stage "1B logits vs PyTorch fp32 + forward, $mode" "$(left 120 30)" $(cores $mode) --$mode \
        --stages logits,forward --torch-ref /tmp/llama1b-ref.bin ;;
    accuracy-1b | accuracy-1b-f16)
      mode=$([ "$stage" = accuracy-1b ] && echo w8a8 || echo f16)
      node_stage "$mode: accuracy on the random 1B" "$(left 120 30)" $(cores $mode) --stages w8a8-accuracy \
        --accuracy-mode $mode --accuracy-seqs 8 ;;
    hellaswag-w8a8 | hellaswag-f16)
      mode=${stage#hellaswag-}
      hellaswag_run "HellaSwag eval, $mode" /tmp/hs-$mode.json torch-hs-$mode.json $(cores $mode) --$mode ;;
    torch-model)
      echo "== PyTorch: the model only (t=${SECONDS}s)"
      timeout "$(left 100 100)" python3 tools/gpu/torch_bench.py --model-dir "$MODEL" \
        --json "$OUT/torch.json" --ref /tmp/llama1b-ref.bin --no-forward || echo "torch_bench.py failed: rc=$?" ;;
    *) echo "unknown stage $stage" ;;
    esac
  done
  [ -n "$smi_pid" ] && kill "$smi_pid"
  echo "== table (t=${SECONDS}s)"
  python3 tools/gpu/table.py "$OUT" | tee "$OUT/table.md"
} 2>&1 | tee "$OUT/log.txt"
