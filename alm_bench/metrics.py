"""Scoring functions shared by the evaluators: pure functions over plain Python/numpy data.

Captioning scores are computed exactly as coco-caption (pycocoevalcap) computes them, so they are
comparable with published numbers; the other metrics wrap scikit-learn where it has one.
"""

from __future__ import annotations

import functools
import importlib.util
import subprocess
import tempfile
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# scikit-learn and pycocoevalcap load when something is scored, not at every command's start

from .java import java_unavailable_reason


def accuracy(y_true: Sequence, y_pred: Sequence) -> float:
    """Fraction of predictions equal to the target; a None prediction (failed item) counts as wrong."""
    if len(y_true) != len(y_pred):
        raise ValueError(f"accuracy: {len(y_true)} targets but {len(y_pred)} predictions")
    if len(y_true) == 0:
        raise ValueError("accuracy: no items to score")
    return sum(p is not None and p == t for t, p in zip(y_true, y_pred)) / len(y_true)


def _failed_rank_last(scores: np.ndarray) -> np.ndarray:
    """Replace nan/-inf (failed items) by a value below each column's lowest real score."""
    failed = np.isnan(scores) | np.isneginf(scores)
    lowest = np.where(failed, np.inf, scores).min(axis=0)
    floor = np.where(np.isfinite(lowest), lowest, 0.0) - 1.0
    return np.where(failed, floor, scores)


def mean_average_precision(targets: np.ndarray, scores: np.ndarray) -> float:
    """Macro mAP over label columns, skipping columns without a positive target (as HEAR does).

    Failed items may carry nan or -inf scores; they rank below every real score instead of crashing.
    """
    targets, scores = np.asarray(targets), np.asarray(scores, dtype=float)
    if targets.ndim != 2 or targets.shape != scores.shape:
        raise ValueError(f"mAP: targets {targets.shape} and scores {scores.shape} must be equal [n, labels]")
    has_positive = targets.any(axis=0)
    if not has_positive.any():
        raise ValueError("mAP: no label column has a positive target")
    import sklearn.metrics

    return float(
        sklearn.metrics.average_precision_score(
            targets[:, has_positive], _failed_rank_last(scores)[:, has_positive], average="macro"
        )
    )


def f1_score(targets: np.ndarray, predictions: np.ndarray, average: str = "micro") -> float:
    """Multilabel F1 on binary [n, labels] matrices; labels never predicted nor present score 0."""
    import sklearn.metrics

    return float(sklearn.metrics.f1_score(targets, predictions, average=average, zero_division=0))


def retrieval_metrics(
    similarity: np.ndarray, relevant: Sequence[Collection[int]], ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
    """Recall@k and mAP@10 (DCASE 2022 task 6b) for queries ranking documents by similarity.

    similarity is [n_queries, n_docs]; relevant[i] holds the doc indices relevant to query i.
    Ranks come from a stable descending sort, so ties keep document order; NaN (failed) ranks last.
    """
    return {name: float(values.mean()) for name, values in retrieval_per_query(similarity, relevant, ks).items()}


def retrieval_per_query(
    similarity: np.ndarray, relevant: Sequence[Collection[int]], ks: Sequence[int] = (1, 5, 10)
) -> dict[str, np.ndarray]:
    """Each query's R@k (0 or 1) and AP@10; the metrics are their means over queries."""
    similarity = np.asarray(similarity, dtype=float)
    if similarity.ndim != 2 or len(relevant) != similarity.shape[0]:
        raise ValueError(f"retrieval: similarity {similarity.shape} needs one relevant set per query row")
    if not all(relevant):
        raise ValueError("retrieval: every query needs at least one relevant document")
    # np.argsort puts NaN last, and -NaN is still NaN.
    order = np.argsort(-similarity, axis=1, kind="stable")
    hits = np.stack([np.isin(row, list(rel)) for row, rel in zip(order, relevant)])
    result = {f"R@{k}": hits[:, :k].any(axis=1).astype(float) for k in ks}
    top = hits[:, :10]
    precision_at_r = np.cumsum(top, axis=1) / np.arange(1, top.shape[1] + 1)
    n_relevant = np.array([min(len(rel), 10) for rel in relevant])
    result["mAP@10"] = (precision_at_r * top).sum(axis=1) / n_relevant
    return result


_ARTICLES = {"a", "an", "the"}
_NUMBER_WORDS = {
    word: str(i)
    for i, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
        " fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}


def normalize_answer(text: str) -> str:
    """SQuAD-style answer normalisation, plus number words as digits so "Three." matches "3"."""
    # Unicode punctuation too: models emit curly quotes and ellipses.
    text = "".join(ch for ch in text.lower() if not unicodedata.category(ch).startswith("P"))
    return " ".join(_NUMBER_WORDS.get(w, w) for w in text.split() if w not in _ARTICLES)


def answers_match(prediction: str | None, answer: str) -> bool:
    """Whether a prediction equals the answer after normalisation; None (failed item) never matches."""
    return prediction is not None and normalize_answer(prediction) == normalize_answer(answer)


# Scorers treat an empty hypothesis inconsistently (ROUGE-L scores it 1.0 against a blank reference),
# so an empty one is replaced by this token: it matches no reference word, not even via METEOR's stems
# or paraphrases, so a failed item scores ~0 on every metric.
EMPTY_HYPOTHESIS = "zzzemptypredictionzzz"

_SPICE_DIR = Path(importlib.util.find_spec("pycocoevalcap").submodule_search_locations[0]) / "spice"
# spice-1.0.jar's manifest class path lists these; get_stanford_models() downloads them into lib/.
_SPICE_CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")


@dataclass(frozen=True)
class CaptionScores:
    """Corpus-level caption scores, per-item scores, and why any metric could not be computed.

    values has BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, SPICE and SPIDEr; a metric that could not run
    is None with a one-line reason in unavailable. per_item maps item id -> metric -> score
    (BLEU-4, METEOR, ROUGE-L, CIDEr-D, and SPICE/SPIDEr when available).
    """

    values: dict[str, float | None]
    unavailable: dict[str, str] = field(default_factory=dict)
    per_item: dict[str, dict[str, float]] = field(default_factory=dict)
    #: item id -> BLEU's sufficient statistics (see bleu_statistics), from which corpus BLEU is recomputed
    bleu_stats: dict[str, list[float]] = field(default_factory=dict)


_TINY, _SMALL = 1e-15, 1e-9  # coco-caption's guards against zero division


def bleu_statistics(hypothesis: str, references: list[str]) -> list[float]:
    """[hypothesis length, closest reference length, 4 n-gram counts, 4 clipped matches] of one item."""
    from pycocoevalcap.bleu.bleu_scorer import BleuScorer

    scorer = BleuScorer(n=4)
    scorer += (hypothesis, references)
    comps = scorer.ctest[0]
    reflen = min((abs(length - comps["testlen"]), length) for length in comps["reflen"])[1]
    return [comps["testlen"], reflen, *comps["guess"], *comps["correct"]]


def corpus_bleu(stats: np.ndarray) -> dict[str, np.ndarray]:
    """BLEU-1..4 from summed statistics ``[..., 10]`` exactly as coco-caption computes corpus BLEU."""
    stats = np.asarray(stats, dtype=np.float64)
    testlen, reflen, guess, correct = stats[..., 0], stats[..., 1], stats[..., 2:6], stats[..., 6:10]
    precisions = (correct + _TINY) / (guess + _SMALL)
    ratio = (testlen + _TINY) / (reflen + _SMALL)
    penalty = np.where(ratio < 1, np.exp(1 - 1 / np.maximum(ratio, _TINY)), 1.0)
    logs = np.cumsum(np.log(precisions), axis=-1)
    return {f"BLEU-{k}": np.exp(logs[..., k - 1] / k) * penalty for k in range(1, 5)}


def spice_unavailable_reason() -> str | None:
    """Why SPICE cannot run here, or None; checks the jars without downloading anything."""
    lib = _SPICE_DIR / "lib"
    if all((lib / jar).is_file() for jar in _SPICE_CORENLP_JARS):
        return None
    return (
        f"needs Stanford CoreNLP 3.6.0 jars in {lib}; run `python -c 'from pycocoevalcap.spice."
        "get_stanford_models import get_stanford_models; get_stanford_models()'` with network access"
    )


@functools.cache
def _meteor_class() -> type:
    """pycocoevalcap's METEOR with a close() that shuts its JVM down.

    The parent's __del__ waits for a lock that compute_score leaves held if it raises (e.g. the JVM
    died), which would hang garbage collection; this one never takes the lock.
    """
    from pycocoevalcap.meteor.meteor import Meteor

    class _Meteor(Meteor):
        def close(self) -> None:
            process = self.meteor_p
            process.kill()
            process.wait()
            for pipe in (process.stdin, process.stdout, process.stderr):
                pipe.close()

        __del__ = close

    return _Meteor


def _ptb_lines(lines: list[str]) -> list[str]:
    """Stanford's PTBTokenizer over lines with coco-caption's command and punctuation removal, but
    quiet (its "tokenized N tokens" line would land on the run's screen) and with its input in a
    temporary folder rather than inside the installed package (which may be read-only)."""
    from pycocoevalcap.tokenizer import ptbtokenizer as ptb

    jar = Path(ptb.__file__).parent / ptb.STANFORD_CORENLP_3_4_1_JAR
    with tempfile.TemporaryDirectory(prefix="alm-bench-ptb-") as folder:
        source = Path(folder) / "captions.txt"
        source.write_bytes("\n".join(lines).encode())
        command = ["java", "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase",
                   str(source)]
        out = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True).stdout
    tokenized = out.decode().split("\n")
    return [" ".join(w for w in line.rstrip().split(" ") if w not in ptb.PUNCTUATIONS) for line in tokenized]


def _tokenize(predictions: Mapping[str, str], references: Mapping[str, list[str]]) -> tuple[dict, dict]:
    """PTB-tokenise hypotheses and references in one java call, as coco-caption does."""
    texts = {("res", key): [text] for key, text in predictions.items()}
    texts |= {("gts", key): refs for key, refs in references.items()}
    # The tokenizer works line by line: a line break inside a caption would shift every later item.
    owners = [key for key, group in texts.items() for _ in group]
    lines = _ptb_lines([" ".join(text.split()) for group in texts.values() for text in group])
    tokens: dict = {}
    for key, line in zip(owners, lines):
        tokens.setdefault(key, []).append(line)
    res = {key: [tokens[("res", key)][0] or EMPTY_HYPOTHESIS] for key in predictions}
    gts = {key: tokens[("gts", key)] for key in predictions}
    return gts, res


def _add_spice(values: dict, per_item: dict[str, dict[str, float]], gts: dict, res: dict) -> dict[str, str]:
    """Add SPICE and SPIDEr to values and per_item; return why they are unavailable, if they are."""
    reason = spice_unavailable_reason()
    if reason is None:
        try:
            from pycocoevalcap.spice.spice import Spice

            spice, items = Spice().compute_score(gts, res)
        except subprocess.CalledProcessError as error:
            reason = f"the SPICE jar failed with exit code {error.returncode}"
    if reason is not None:
        values["SPICE"] = values["SPIDEr"] = None
        return {"SPICE": reason, "SPIDEr": f"SPIDEr = (CIDEr-D + SPICE) / 2 needs SPICE: {reason}"}
    values["SPICE"] = float(spice)
    values["SPIDEr"] = (values["CIDEr-D"] + values["SPICE"]) / 2
    for key, item in zip(sorted(gts), items):  # Spice scores items in sorted id order
        per_item[key]["SPICE"] = float(item["All"]["f"])
        per_item[key]["SPIDEr"] = (per_item[key]["CIDEr-D"] + per_item[key]["SPICE"]) / 2
    return {}


def caption_metrics(predictions: dict[str, str], references: dict[str, list[str]]) -> CaptionScores:
    """coco-caption scores of one prediction per item against that item's references.

    Pass the whole test set in one call: CIDEr-D's document frequencies come from all references
    given. A failed item should be passed as "" (it scores ~0; see EMPTY_HYPOTHESIS).
    """
    if predictions.keys() != references.keys():
        raise ValueError("caption_metrics: predictions and references must have the same item ids")
    if not predictions or not all(references.values()):
        raise ValueError("caption_metrics: need at least one item, each with at least one reference")
    no_java = java_unavailable_reason()
    if no_java is not None:  # every score starts from the PTB tokenizer, a Java program
        names = (*(f"BLEU-{n}" for n in range(1, 5)), "METEOR", "ROUGE-L", "CIDEr-D", "SPICE", "SPIDEr")
        return CaptionScores(values=dict.fromkeys(names), unavailable=dict.fromkeys(names, no_java))
    # Start METEOR's JVM first: it loads its paraphrase table while the other scorers run.
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    with closing(_meteor_class()()) as meteor:
        gts, res = _tokenize(predictions, references)
        bleu, bleu_items = Bleu(4).compute_score(gts, res, verbose=0)
        rouge, rouge_items = Rouge().compute_score(gts, res)
        cider, cider_items = Cider().compute_score(gts, res)
        meteor_score, meteor_items = meteor.compute_score(gts, res)
    values: dict[str, float | None] = {f"BLEU-{n + 1}": float(b) for n, b in enumerate(bleu)}
    values |= {"METEOR": float(meteor_score), "ROUGE-L": float(rouge), "CIDEr-D": float(cider)}
    # pycocoevalcap returns per-item scores in gts key order.
    per_item = {
        key: {"BLEU-4": float(b4), "METEOR": float(m), "ROUGE-L": float(r), "CIDEr-D": float(c)}
        for key, b4, m, r, c in zip(gts, bleu_items[3], meteor_items, rouge_items, cider_items)
    }
    unavailable = _add_spice(values, per_item, gts, res)
    stats = {key: bleu_statistics(res[key][0], gts[key]) for key in gts}
    return CaptionScores(values=values, unavailable=unavailable, per_item=per_item, bleu_stats=stats)
