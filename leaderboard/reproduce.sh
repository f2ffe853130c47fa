#!/usr/bin/env bash
# Rebuild leaderboard/results/ and leaderboard/README.md from the runs this repository can reproduce
# offline: the synthetic suite and the real recordings in ../shared/data.  Run from the repository root.
set -euo pipefail
OUT=leaderboard/results
SHARED=${SHARED:-../shared}
run() { alm-bench run --output-dir "$OUT" "$@"; }

for model in oracle chance logmel pengi-tiny; do
  run --model "$model" --task 'synth-*'
  run --model "$model" --task esc50 --data-dir "$SHARED/data/esc50-mini"
  run --model "$model" --task clotho-caption,clotho-retrieval --data-dir "$SHARED/data/clotho-mini"
  run --model "$model" --task fsdd-digits --data-dir "$SHARED/data/fsdd"
done
if alm-bench list models | grep -q '│ whisper '; then
  run --model whisper --model-args "checkpoint=$SHARED/assets/whisper-tiny.en" --task fsdd-digits \
      --data-dir "$SHARED/data/fsdd" --limit 200
fi
alm-bench leaderboard --results-dir leaderboard/results --output leaderboard/README.md
