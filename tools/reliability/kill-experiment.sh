#!/usr/bin/env bash
# Crash safety of `qlora experiment` (issue 11): runs the embedded default once uninterrupted,
# then for each delay (seconds) starts it again in a new run directory, SIGKILLs it after that
# delay, resumes it with the same command, and checks that the adapter bytes and the report's
# numbers equal the uninterrupted run's. Usage: bash tools/reliability/kill-experiment.sh 20 33 44
set -euo pipefail
[ "$#" -gt 0 ] || set -- 20 33 44
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pnpm qlora experiment --run-dir "$work/whole" >/dev/null 2>&1
adapter=embedded-tiny-llama-0-9m/plain/train/adapter/adapter_model.safetensors
failed=0
for delay in "$@"; do
  dir="$work/killed-$delay"
  setsid pnpm qlora experiment --run-dir "$dir" >/dev/null 2>&1 &
  sleep "$delay"
  pkill -9 -f "cli.ts experiment --run-dir $dir" || true
  sleep 1
  stages=$(ls "$dir/stages" 2>/dev/null | tr "\n" " " || true)
  pnpm qlora experiment --run-dir "$dir" >/dev/null 2>&1
  same=$(node -e '
    const fs = require("fs");
    const strip = (v) => Array.isArray(v) ? v.map(strip) : v && typeof v === "object"
      ? Object.fromEntries(Object.entries(v).filter(([k]) => !["path", "paths", "inputs", "sha256"].includes(k)).map(([k, x]) => [k, strip(x)]))
      : v;
    const models = (d) => JSON.stringify(strip(JSON.parse(fs.readFileSync(d + "/report.json", "utf8")).models));
    console.log(models(process.argv[1]) === models(process.argv[2]) ? "same" : "DIFFERENT");
  ' "$work/whole" "$dir")
  if cmp -s "$work/whole/$adapter" "$dir/$adapter" && [ "$same" = same ]; then result=identical; else result=DIFFERENT; failed=$((failed + 1)); fi
  echo "| kill -9 after ${delay}s | stages done: ${stages:-none} | resumed | adapter + report numbers: $result |"
done
echo "$(( $# - failed )) passed, $failed failed"
[ "$failed" -eq 0 ]
