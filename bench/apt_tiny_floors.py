"""apt-tiny against the floors of issue 16, on the synthetic test splits, with `chance` on the same run.

    python bench/apt_tiny_floors.py [--model-args checkpoint=DIR/model.pt,llm=DIR/llm] [--limit N]

Every accuracy, mAP and R@10 must reach chance + (1 - chance) / 2, chance being the `chance` model's
value on the same items; in-context few-shot with non-words must reach 3 x chance; and on `synth-order`
(every pair of clips shown in both orders) the share of pairs whose answer flips with the order is
reported.  Prints a markdown table (the README's) and exits 1 if a floor is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from alm_bench.cli import parse_model_args
from alm_bench.runner import RunConfig, run

#: the measures the floors apply to (captioning metrics have no perfect score of 1 and are reported only)
FLOORED = ("accuracy", "5-way accuracy", "mAP", "t2a_R@10", "a2t_R@10")
REPORTED = ("CIDEr-D",)


def results(model: str, model_args: dict, limit: int | None, output: Path) -> tuple[dict, float]:
    start = time.perf_counter()
    summary = run(RunConfig(model=model, tasks="synth-*", model_args=model_args, limit=limit, output_dir=output,
                            cache_dir=output / "cache"))
    return {(r.task, r.method): r for r in summary.results}, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="apt-tiny")
    parser.add_argument("--model-args", default="")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        chance, _ = results("chance", {}, args.limit, Path(scratch) / "chance")
        model, seconds = results(args.model, parse_model_args(args.model_args), args.limit, Path(scratch) / "model")
    print(f"{args.model} on the synthetic test splits{f' (--limit {args.limit})' if args.limit else ''}: "
          f"{seconds:.0f} s\n")
    print(f"| task | method | metric | `chance` | floor | `{args.model}` | |\n|---|---|---|---:|---:|---:|---|")
    missed = 0
    for key in sorted(model):
        result, reference = model[key], chance.get(key)
        for metric in (*FLOORED, *REPORTED):
            value = result.metrics.get(metric)
            if value is None or reference is None or reference.metrics.get(metric) is None:
                continue
            level = reference.metrics[metric]
            if metric in REPORTED:
                floor, verdict = None, "reported"
            else:
                floor = level + (1 - level) / 2
                if key[0] == "synth-fewshot-nonce":
                    floor = max(floor, 3 * level)
                verdict = "pass" if value >= floor else "MISSED"
                missed += value < floor
            print(f"| `{key[0]}` | {key[1]} | {metric} | {level:.3f} | {'' if floor is None else f'{floor:.3f}'} "
                  f"| {value:.3f} | {verdict} |")
    for key, result in sorted(model.items()):
        if "order_flip_rate" in result.details:
            print(f"\n`{key[0]}`: swapping the two clips flips the answer in {result.details['order_flip_rate']:.1%} "
                  f"of {result.details['order_pairs']} pairs")
    print(f"\n{missed} floor(s) missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
