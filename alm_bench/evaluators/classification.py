"""Classification (multiclass and multilabel): text matching, log-likelihood, shared-space embeddings and
linear probes."""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import metrics
from ..calls import Call
from ..errors import UsageError
from ..probe import FoldResult, ProbeConfig, run_probe, summarize, within_copy_split
from ..protocol import GenerateRequest, ScoreRequest
from ..uncertainty import Interval, average_precision, random_ranking_ap, ratio, t_interval
from .base import (EvalContext, Method, MethodResult, Metric, cosine, count_failed, match_to_labels, outputs_or_none,
                   record_units)

#: how a multilabel prediction is decided from per-label scores (recorded in the results' details)
LARGEST_GAP = ("largest gap: the labels ranked above the largest drop between consecutive scores of the "
               "item (scale-free; a model that scores its true labels above the others predicts exactly them)")


def _uniform_guess(ctx: EvalContext) -> float:
    return 1 / len(ctx.labels)


def _random_ranking_map(ctx: EvalContext, groups) -> float | None:
    """Expected macro AP of a random ranking of each test group, averaged over groups."""
    values = []
    for items in groups:
        targets = _targets(ctx, items)
        per_label = [random_ranking_ap(int(p), len(items)) for p in targets.sum(axis=0) if p > 0]
        if per_label:
            values.append(float(np.mean(per_label)))
    return float(np.mean(values)) if values else None


def _zero_shot_map_chance(ctx: EvalContext) -> float | None:
    return _random_ranking_map(ctx, [ctx.test_items])


ACCURACY = Metric("accuracy", chance=_uniform_guess, headline=True, task_types=("multiclass",))
MAP = Metric("mAP", chance=_zero_shot_map_chance, headline=True, task_types=("multilabel",))
F1 = Metric("F1", task_types=("multilabel",))


def largest_gap(scores: np.ndarray) -> np.ndarray:
    """Indices of the labels above the largest drop in the item's sorted scores (at least one)."""
    order = np.argsort(-scores, kind="stable")
    if len(order) < 2:
        return order
    ranked = scores[order]
    return order[: int(np.argmax(ranked[:-1] - ranked[1:])) + 1]


def _targets(ctx: EvalContext, items) -> np.ndarray:
    """Binary label matrix [n, L] in vocabulary order."""
    index = {label: i for i, label in enumerate(ctx.labels)}
    targets = np.zeros((len(items), len(index)), dtype=int)
    for row, item in enumerate(items):
        for label in item.labels:
            targets[row, index[label]] = 1
    return targets


def _scored_result(ctx: EvalContext, items, scores: np.ndarray, outputs: list, outcomes) -> MethodResult:
    """Metrics and records from per-item label scores (NaN rows = failed items)."""
    labels = ctx.labels
    targets = _targets(ctx, items)
    valid = ~np.isnan(scores).all(axis=1)
    best = np.where(valid, np.argmax(np.nan_to_num(scores, nan=-np.inf), axis=1), -1)
    records = []
    if ctx.spec.multilabel:
        threshold = ctx.options.get("threshold")
        predicted = np.zeros_like(targets)
        for row in np.flatnonzero(valid):
            if threshold is None:
                predicted[row, largest_gap(scores[row])] = 1
            else:
                predicted[row, best[row]] = 1
                predicted[row] |= (scores[row] >= threshold).astype(int)
        result = {"mAP": metrics.mean_average_precision(targets, scores),
                  "F1": metrics.f1_score(targets, predicted)}
        for row, item in enumerate(items):
            chosen = [labels[j] for j in np.flatnonzero(predicted[row])]
            record = _record(item, ctx.prompt, outputs[row], list(item.labels), chosen,
                             set(chosen) == set(item.labels), outcomes[row].error)
            records.append({**record, "scores": _finite_list(scores[row])})
        rule = LARGEST_GAP if threshold is None else f"the best label and every label scoring >= {threshold}"
        details = {"labels": list(labels), "decision_rule": rule}
        return MethodResult(result, records, len(items), count_failed(outcomes), details=details)
    predictions = [labels[b] if b >= 0 else None for b in best]
    truths = [item.labels[0] for item in items]
    result = {"accuracy": metrics.accuracy(truths, predictions)}
    for item, output, prediction, truth, outcome in zip(items, outputs, predictions, truths, outcomes):
        records.append(_record(item, ctx.prompt, output, truth, prediction, prediction == truth, outcome.error))
    return MethodResult(result, records, len(items), count_failed(outcomes))


def _finite_list(values) -> list:
    """Scores for a JSON record: NaN (a failed item) as null."""
    return [float(v) if np.isfinite(v) else None for v in np.asarray(values, dtype=np.float64)]


def _score_matrix(records: list[dict], labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    targets = np.array([[label in r["target"] for label in labels] for r in records], dtype=np.float64)
    scores = np.array([[np.nan if v is None else v for v in r["scores"]] for r in records], dtype=np.float64)
    return targets, scores


def _label_statistic(records: list[dict], details: dict, index: np.ndarray):
    """accuracy, or mAP and micro F1, of scored classification records under unit weights."""
    if records and "scores" in records[0]:
        targets, scores = _score_matrix(records, details["labels"])
        chosen = [set(r["prediction"] or ()) for r in records]
        truth = [set(r["target"]) for r in records]
        tp = np.array([len(c & t) for c, t in zip(chosen, truth)], dtype=np.float64)
        wrong = np.array([len(c ^ t) for c, t in zip(chosen, truth)], dtype=np.float64)
        return lambda w: {"mAP": average_precision(targets, scores, w[:, index]),
                          "F1": ratio(w[:, index], 2 * tp, 2 * tp + wrong)}
    correct = np.array([bool(r["correct"]) for r in records], dtype=np.float64)
    return lambda w: {"accuracy": ratio(w[:, index], correct)}


class _Scored(Method):
    """Methods that score every label of every test item (text matching, log-likelihood)."""

    task_types = ("multiclass", "multilabel")
    metrics = (ACCURACY, MAP, F1)

    def statistic(self, records, details):
        return _label_statistic(records, details, record_units(self, records))


def _record(item, prompt, output, target, prediction, correct, error="") -> dict:
    return {"id": item.id, "prompt": prompt, "output": output, "target": target,
            "prediction": prediction, "correct": bool(correct), "error": error}


class TextMatching(_Scored):
    name = "text_matching"
    title = "Zero-shot: text matching"
    needs = ("generate",)
    needs_prompt = True
    uses_text_encoder = True
    options = {"threshold": None}
    description = "generate with the task prompt, match the text to the labels with a text encoder (cosine)"

    def evaluate(self, ctx: EvalContext) -> MethodResult:
        items = ctx.test_items
        calls = [
            Call("generate", GenerateRequest.single(ctx.ref(item.audio[0]), ctx.prompt),
                 ideal=", ".join(item.labels), choices=ctx.labels)
            for item in items
        ]
        outcomes = ctx.run(calls, "generating")
        outputs = outputs_or_none(outcomes)
        scores = match_to_labels(ctx, outputs, ctx.labels)
        return _scored_result(ctx, items, scores, outputs, outcomes)


class LogLikelihood(_Scored):
    name = "log_likelihood"
    title = "Zero-shot: log-likelihood"
    needs = ("score",)
    needs_prompt = True
    options = {"template": "{label}"}
    description = "score every label (inside a template) after the audio and prompt; argmax"

    def evaluate(self, ctx: EvalContext) -> MethodResult:
        items = ctx.test_items
        template = ctx.options["template"]
        candidates = tuple(template.format(label=label) for label in ctx.labels)
        calls = [
            Call("score", ScoreRequest(ctx.ref(item.audio[0]), ctx.prompt, candidates),
                 ideal=tuple(template.format(label=label) for label in item.labels))
            for item in items
        ]
        outcomes = ctx.run(calls, "scoring")
        scores = np.full((len(items), len(candidates)), np.nan)
        for row, outcome in enumerate(outcomes):
            if outcome.ok:  # log-softmax over candidates, so scores compare across items (mAP)
                value = np.asarray(outcome.value, dtype=np.float64)
                scores[row] = value - np.logaddexp.reduce(value)
        outputs = [None if np.isnan(s).all() else candidates[int(np.argmax(s))] for s in scores]
        return _scored_result(ctx, items, scores, outputs, outcomes)


class ZeroShotEmbedding(_Scored):
    """CLAP's zero-shot classification: the clip and every label (in a template) embedded into the
    model's shared space; a label's score is its cosine with the clip."""

    name = "zero_shot_embedding"
    title = "Zero-shot: shared embeddings"
    needs = ("embed", "shared_space")
    options = {"template": "this is a sound of {label}", "threshold": None}
    description = "cosine between the clip's embedding and each label's text embedding (in a template); argmax"

    def evaluate(self, ctx: EvalContext) -> MethodResult:
        items = ctx.test_items
        texts = [ctx.options["template"].format(label=label) for label in ctx.labels]
        audio = ctx.run([Call("embed", ctx.ref(item.audio[0]), ideal=ctx.clip_texts(item)) for item in items],
                        "embedding audio")
        # a label text's ground truth (for reference models) is the label it names
        text = ctx.run([Call("embed_text", t, ideal=label) for t, label in zip(texts, ctx.labels)],
                       "embedding labels")
        failed = next((o.error for o in text if not o.ok), "")
        if failed:  # a label without a vector cannot be ranked against the others
            raise RuntimeError(f"the model failed to embed a label text: {failed}")
        scores = cosine([o.value if o.ok else None for o in audio], [o.value for o in text])
        outputs = [None if np.isnan(s).all() else texts[int(np.nanargmax(s))] for s in scores]
        return _scored_result(ctx, items, scores, outputs, audio)


#: how a linear probe is trained: alm-bench's own protocol (alm_bench.probe) or HEAR 2021's (alm_bench.hear_probe)
PROTOCOLS = ("alm-bench", "hear")


def _probe_map_chance(ctx: EvalContext) -> float | None:
    """Each fold's (or the test split's) items ranked at random."""
    groups: dict = {}
    for item in ctx.items:
        if ctx.spec.folds or item.split == ctx.spec.splits.test:
            groups.setdefault(item.fold if ctx.spec.folds else "test", []).append(item)
    return _random_ranking_map(ctx, list(groups.values()))


class LinearProbe(Method):
    name = "linear_probe"
    title = "Linear probe"
    task_types = ("multiclass", "multilabel")
    metrics = (ACCURACY, Metric("mAP", chance=_probe_map_chance, headline=True, task_types=("multilabel",)))
    needs = ("embed",)
    options = {"layers": 1, "hidden_size": 256, "max_epochs": 200, "patience": 20,
               "learning_rates": [1e-4, 1e-3, 1e-2], "protocol": "alm-bench", "hear_grid": {}}
    description = ("HEAR-style probe on frozen embeddings: predefined folds or the dataset's splits "
                   "(protocol: alm-bench, or hear for HEAR 2021's grid; hear_grid overrides its fields)")

    def evaluate(self, ctx: EvalContext) -> MethodResult:
        items = ctx.items
        calls = [Call("embed", ctx.ref(item.audio[0]), ideal=ctx.clip_texts(item)) for item in items]
        outcomes = ctx.run(calls, "embedding")
        x = _stack(outcomes)
        targets = _targets(ctx, items)
        y = targets if ctx.spec.multilabel else targets.argmax(axis=1)
        groups = [item.fold for item in items] if ctx.spec.folds else [_role(ctx, item) for item in items]
        present = len(set(groups)) if ctx.spec.folds else 0
        fallback = ""
        if ctx.spec.folds and present < 3:  # a partial copy: the HEAR rotation needs 3 folds
            groups = within_copy_split(y, ctx.seed)
            fallback = (f"the copy holds items of {present} of the {ctx.spec.folds} official folds: probed on a "
                        f"seeded (seed {ctx.seed}), stratified 60/20/20 train/valid/test split within it, "
                        "not comparable with fold results")
        if ctx.options["protocol"] not in PROTOCOLS:
            raise UsageError(f"linear_probe protocol {ctx.options['protocol']!r} is unknown; "
                             f"choose {' or '.join(PROTOCOLS)}")
        train = self._hear if ctx.options["protocol"] == "hear" else self._default
        folds, setup = train(ctx, x, y, groups, bool(ctx.spec.folds) and not fallback)
        mean, std = summarize(folds)
        metric = "mAP" if ctx.spec.multilabel else "accuracy"
        details = {**setup, "std": std, "labels": list(ctx.labels), "folds": [
            {"test_fold": f.test_fold, metric: f.metric, "learning_rate": f.learning_rate, "epochs": f.epochs}
            for f in folds]}
        if fallback:
            details["split"] = fallback
        records = _probe_records(ctx, items, groups, folds, outcomes)
        n_failed = sum(1 for r in records if r["error"])
        return MethodResult({metric: mean}, records, len(records), n_failed, details=details)

    @staticmethod
    def _default(ctx: EvalContext, x, y, groups, by_folds: bool) -> tuple[list[FoldResult], dict]:
        config = ProbeConfig(layers=ctx.options["layers"], hidden_size=ctx.options["hidden_size"],
                             learning_rates=tuple(ctx.options["learning_rates"]), max_epochs=ctx.options["max_epochs"],
                             patience=ctx.options["patience"], seed=ctx.seed)
        folds = ctx.memo(
            "linear_probe", [x, y, [str(g) for g in groups], ctx.spec.multilabel, dataclasses.asdict(config)],
            lambda: run_probe(x, y, groups, multilabel=ctx.spec.multilabel, config=config, folds=by_folds),
            encode=lambda folds: [dataclasses.asdict(f) for f in folds],
            decode=lambda rows: [FoldResult(**row) for row in rows])
        return folds, {"protocol": "alm-bench", "layers": config.layers}

    @staticmethod
    def _hear(ctx: EvalContext, x, y, groups, by_folds: bool) -> tuple[list[FoldResult], dict]:
        from ..hear_probe import HearGrid, run_hear_probe  # torch, only when asked for

        try:
            grid = HearGrid(**{k: tuple(v) if isinstance(v, list) else v for k, v in ctx.options["hear_grid"].items()})
        except TypeError as exc:
            fields = ", ".join(f.name for f in dataclasses.fields(HearGrid))
            raise UsageError(f"linear_probe hear_grid: {exc}; its fields are {fields}") from None
        folds, setup = ctx.memo(
            "linear_probe_hear", [x, y, [str(g) for g in groups], ctx.spec.multilabel, dataclasses.asdict(grid)],
            lambda: run_hear_probe(x, y, groups, multilabel=ctx.spec.multilabel, folds=by_folds, grid=grid,
                                   seed=ctx.seed),
            encode=lambda found: [[dataclasses.asdict(f) for f in found[0]], found[1]],
            decode=lambda rows: ([FoldResult(**row) for row in rows[0]], rows[1]))
        return folds, {**setup, "layers": 1 + setup["chosen"]["hidden_layers"]}

    def statistic(self, records, details):
        """The mean over folds of each fold's metric."""
        index = record_units(self, records)
        per_fold = []
        for fold in dict.fromkeys(r["fold"] for r in records):
            rows = [i for i, r in enumerate(records) if r["fold"] == fold]
            per_fold.append(_label_statistic([records[i] for i in rows], details, index[rows]))

        def statistic(weights):
            values = [f(weights) for f in per_fold]
            return {name: np.nanmean([v[name] for v in values], axis=0) for name in values[0]
                    if name != "F1"}
        return statistic

    def intervals(self, result, seed) -> dict[str, Interval]:
        """Over folds (a t interval of the fold mean); over test items for a single train/valid/test split."""
        folds = result.details.get("folds", [])
        if len(folds) < 2:
            return super().intervals(result, seed)
        return {name: t_interval([f[name] for f in folds]) for name in result.metrics}


def _role(ctx: EvalContext, item) -> str:
    return {ctx.spec.splits.train: "train", ctx.spec.splits.valid: "valid", ctx.spec.splits.test: "test"}[item.split]


def _stack(outcomes) -> np.ndarray:
    dim = next((len(o.value) for o in outcomes if o.ok), 1)
    return np.stack([np.asarray(o.value, dtype=np.float64) if o.ok else np.full(dim, np.nan) for o in outcomes])


def _probe_records(ctx: EvalContext, items, groups, folds, outcomes) -> list[dict]:
    """One record per tested item; each fold's predictions follow its test rows in item order."""
    records = []
    for fold in folds:
        rows = [i for i, g in enumerate(groups) if str(g) == fold.test_fold]
        for row, prediction in zip(rows, fold.predictions):
            item, outcome = items[row], outcomes[row]
            extra = {"fold": fold.test_fold}
            if ctx.spec.multilabel:
                scores = np.asarray(prediction, dtype=np.float64)
                chosen = [ctx.labels[int(np.argmax(scores))]] if np.isfinite(scores).any() else []
                target, correct = list(item.labels), bool(chosen) and chosen[0] in item.labels
                extra["scores"] = _finite_list(scores)
            else:
                chosen = ctx.labels[prediction] if prediction >= 0 else None
                target, correct = item.labels[0], chosen == item.labels[0]
            record = _record(item, "", None, target, chosen, correct, outcome.error)
            records.append({**record, **extra})
    return records
