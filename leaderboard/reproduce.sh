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
# the shipped several-clip model (APT): two-clip questions and in-context few-shot as well
run --model apt-tiny --task 'synth-*'
run --model apt-tiny --task esc50 --data-dir "$SHARED/data/esc50-mini"
# the shipped contrastive model: zero-shot by shared embeddings, embedding retrieval, probes (synthetic sounds only)
run --model clap-tiny --task 'synth-*'
# a HEAR 2021 module from PyPI (pip install --no-deps hearbaseline librosa: its pins no longer build)
if python -c 'import hearbaseline.vqt' 2>/dev/null; then
  run --model hear:hearbaseline.vqt --model-args seconds=2.0 --task fsdd-digits --data-dir "$SHARED/data/fsdd" \
      --limit 200 --method linear_probe
fi
if alm-bench list models | grep -q '│ whisper '; then
  run --model whisper --model-args "checkpoint=$SHARED/assets/whisper-tiny.en" --task fsdd-digits \
      --data-dir "$SHARED/data/fsdd" --limit 200
fi
alm-bench leaderboard --results-dir leaderboard/results --output leaderboard/README.md
