"""What a full-catalogue run of a 7B audio-language model costs on 64 GPUs: a note on paper.

Measured here, from the repository and ../shared:
- the model calls a run of every non-synthetic task at its headline prompt makes, from the task specs
  (items per task, methods, candidate labels), after the content-keyed output cache merges identical
  calls (tasks that share recordings and prompts, e.g. the four NSynth tasks or ESC-50 and its
  few-shot variant, share their calls, and every embed-based method reuses one embedding per clip);
- candidate and caption lengths in tokens: the specs' labels in the task's log-likelihood template and
  Clotho's 1,045 evaluation captions (../shared/data/clotho-mini/captions-full), with the GPT-2 BPE
  tokenizer in ../shared/assets as a stand-in for the model's own BPE.

Assumed (stated, not measured: no GPU is reachable from this machine): a Qwen2-Audio-7B-shaped model
(Whisper-large-v3 encoder, 0.64 B parameters over a fixed 30 s window of 1,500 frames; 7.0 B parameter
LLM; 25 audio tokens per second of audio), bf16 on H100-SXM-class GPUs (989 TFLOP/s dense, 3.35 TB/s),
40% of peak in prefill, batched decoding at 16 sequences, and per-dataset typical clip durations from
the datasets' documentation (``DURATION_S`` below).

    python bench/catalogue_cost.py      # prints the markdown section for BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import csv
import statistics
from dataclasses import dataclass
from pathlib import Path

from alm_bench.specs import load_spec, spec_files

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

# typical clip length per loader (seconds), from each dataset's documentation
DURATION_S = {
    "audiocaps": 10, "audioset": 10, "autoacd": 10, "beijing_opera": 2, "clotho": 22, "clotho_aqa": 22,
    "crema_d": 2.5, "dcase2017": 10, "esc50": 5, "esc50_actions": 5, "fsd50k": 7.6, "fsdd": 0.45,
    "gtzan": 30, "nlar": 2 * 10, "nsynth": 4, "ravdess": 3.7, "sesa": 15,
    "tut2017": 10, "urbansound8k": 3.6, "vocalsound": 4.2,
}
GENERATE_METHODS = {"text_matching", "captioning", "retrieval", "qa", "two_clip", "fewshot"}
EMBED_METHODS = {"linear_probe", "retrieval_embedding", "fewshot_prototype"}

# the assumed model and hardware (see the module docstring)
ENCODER_PARAMS, ENCODER_FRAMES = 0.64e9, 1500
LLM_PARAMS, AUDIO_TOKENS_PER_S, PROMPT_TOKENS = 7.0e9, 25, 30
PEAK_FLOPS, WEIGHT_BYTES, BANDWIDTH = 989e12, 2 * LLM_PARAMS, 3.35e12
GPUS, LOAD_S = 64, 60.0  # per-rank start-up: reading ~15 GB of weights and the first CUDA kernels


@dataclass
class Calls:
    generate: int = 0
    score_candidate_tokens: int = 0
    score: int = 0
    embed: int = 0
    items: int = 0
    clip_seconds: float = 0.0


def _tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(SHARED / "assets" / "gpt2-tokenizer")


def _caption_tokens(tokenizer) -> float:
    path = SHARED / "data" / "clotho-mini" / "captions-full" / "clotho_captions_evaluation.csv"
    with path.open(newline="", encoding="utf-8") as f:
        captions = [row[f"caption_{i}"] for row in csv.DictReader(f) for i in range(1, 6)]
    return statistics.mean(len(tokenizer(" " + c)["input_ids"]) for c in captions) + 1  # + end of text


def _recordings(spec) -> tuple:
    """Which recordings a task reads: tasks with the same ones share their audio's cached calls."""
    loader = "esc50" if spec.dataset.loader == "esc50_actions" else spec.dataset.loader
    return (loader, spec.dataset.args.get("collection", ""))


def catalogue_calls(tokenizer) -> tuple[dict[str, Calls], int]:
    """Unique model calls per task, in spec order, as the content-keyed cache counts them."""
    seen: set[tuple] = set()
    per_task, items = {}, 0
    for path in spec_files(ROOT / "tasks"):
        spec = load_spec(path)
        if spec.id.startswith("synth-") or not spec.dataset.size:
            continue
        audio = _recordings(spec)
        n, prompt, calls = spec.dataset.size, spec.prompts[0], Calls()
        items += n
        for method, options in spec.methods.items():
            if method in GENERATE_METHODS:
                key = (audio, "generate", prompt, method in {"qa", "two_clip", "fewshot"} and spec.id)
                calls.generate += n * (key not in seen)
            elif method == "log_likelihood":
                template = (options or {}).get("template", "{label}")
                candidates = [template.format(label=label) for label in spec.labels]
                key = (audio, "score", prompt, tuple(candidates))
                tokens = sum(len(tokenizer(" " + c)["input_ids"]) for c in candidates)
                calls.score += n * (key not in seen)
                calls.score_candidate_tokens += n * tokens * (key not in seen)
            elif method in EMBED_METHODS:
                key = (audio, "embed")
                calls.embed += n * (key not in seen)
            else:
                raise SystemExit(f"unknown method {method} in {spec.id}: add it to this script")
            seen.add(key)
        calls.items, calls.clip_seconds = n, DURATION_S[spec.dataset.loader]
        per_task[spec.id] = calls
    return per_task, items


@dataclass(frozen=True)
class Serving:
    """How efficiently the GPU is used: prefill's share of peak, and the seconds of one decoding step."""

    name: str
    prefill_efficiency: float
    decode_step_s: float
    decode_batch: int


SERVINGS = (
    Serving("throughput-bound (batched serving, e.g. vLLM)", 0.40, WEIGHT_BYTES / BANDWIDTH, 16),
    Serving("eager transformers generate (the hf plugin, batch 8)", 0.15, 0.030, 8),
)


def gpu_seconds(calls: Calls, caption_tokens: float, serving: Serving) -> float:
    """One GPU's seconds for these calls under the assumed model, hardware and serving."""
    prefill_calls = calls.generate + calls.score
    audio_tokens = min(calls.clip_seconds, 30) * AUDIO_TOKENS_PER_S
    windows = max(1.0, calls.clip_seconds / 30)  # the encoder pads every clip to whole 30 s windows
    # embed calls run the audio encoder only (the hf plugin's embedding is the projected audio states)
    encoder = (prefill_calls + calls.embed) * 2 * ENCODER_PARAMS * ENCODER_FRAMES * windows
    prefill = prefill_calls * 2 * LLM_PARAMS * (audio_tokens + PROMPT_TOKENS)
    candidates = calls.score_candidate_tokens * 2 * LLM_PARAMS
    compute = (encoder + prefill + candidates) / (PEAK_FLOPS * serving.prefill_efficiency)
    decode = calls.generate * caption_tokens * serving.decode_step_s / serving.decode_batch
    return compute + decode


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    tokenizer = _tokenizer()
    caption_tokens = _caption_tokens(tokenizer)
    per_task, total_items = catalogue_calls(tokenizer)
    print("Command: `python bench/catalogue_cost.py` (spec counts and token lengths measured; model and GPU assumed)\n")
    print(f"Mean Clotho caption: {caption_tokens:.1f} GPT-2 tokens (decode steps per generate call).\n")
    fast, eager = SERVINGS
    print(f"| task | items | generate | score (candidate tokens) | embed | GPU-hours, {fast.name} | "
          f"GPU-hours, {eager.name} |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    total, seconds = Calls(), {s: 0.0 for s in SERVINGS}
    for task, calls in per_task.items():
        hours = []
        for serving in SERVINGS:
            spent = gpu_seconds(calls, caption_tokens, serving)
            seconds[serving] += spent
            hours.append(f"{spent / 3600:.2f}")
        for name in ("generate", "score", "score_candidate_tokens", "embed"):
            setattr(total, name, getattr(total, name) + getattr(calls, name))
        print(f"| {task} | {calls.items:,} | {calls.generate:,} | {calls.score:,} ({calls.score_candidate_tokens:,}) | "
              f"{calls.embed:,} | {' | '.join(hours)} |")
    print(f"| **all** | {total_items:,} | {total.generate:,} | {total.score:,} ({total.score_candidate_tokens:,}) | "
          f"{total.embed:,} | **{seconds[fast] / 3600:.1f}** | **{seconds[eager] / 3600:.1f}** |\n")
    for serving in SERVINGS:
        wall = seconds[serving] / GPUS + LOAD_S
        print(f"- {serving.name}: on {GPUS} GPUs {seconds[serving] / GPUS / 60:.1f} min of model time per rank + "
              f"~{LOAD_S:.0f} s start-up = **about {wall / 60:.0f} min wall**, {GPUS * wall / 3600:.1f} GPU-hours "
              f"billed (one GPU alone: {seconds[serving] / 3600:.1f} h).")


if __name__ == "__main__":
    main()
