"""N-way K-shot classification over seeded episodes (APT Table VI), in context or by prototypes."""

from __future__ import annotations

import numpy as np

from ..calls import Call
from ..episodes import Episode, prototype_predict, sample_episodes
from ..protocol import GenerateRequest
from ..uncertainty import ratio
from .base import EvalContext, Method, MethodResult, Metric, match_to_labels, record_units


class _FewShot(Method):
    task_types = ("fewshot",)
    options = {"ways": [5], "shots": 5, "queries": 2, "episodes": 20}
    #: one metric per ``ways`` option; its chance level is 1/ways (see chance_levels)
    metrics = (Metric("{ways}-way accuracy", headline=True),)
    resample_over = "episodes"

    def produces(self, spec, options):
        return tuple(f"{ways}-way accuracy" for ways in self.with_defaults(options)["ways"])

    def chance_levels(self, ctx, names):
        return {name: 1 / int(name.split("-")[0]) for name in names if self.metric(name)}

    def unit(self, record: dict) -> str:
        return f"{record['ways']}-way/{record['episode']:06d}"

    def statistic(self, records, details):
        index = record_units(self, records)
        correct = np.array([bool(r["correct"]) for r in records], dtype=np.float64)
        by_ways = {ways: np.array([r["ways"] == ways for r in records]) for ways in dict.fromkeys(r["ways"] for r in records)}
        return lambda w: {f"{ways}-way accuracy": ratio(w[:, index[rows]], correct[rows])
                          for ways, rows in by_ways.items()}

    def episodes(self, ctx: EvalContext, ways: int) -> list[Episode]:
        return sample_episodes([item.labels[0] for item in ctx.test_items], ways=ways, shots=ctx.options["shots"],
                               queries_per_class=ctx.options["queries"], episodes=ctx.options["episodes"],
                               seed=ctx.seed)

    def evaluate(self, ctx: EvalContext) -> MethodResult:
        result = MethodResult({}, [], 0, 0)
        for ways in ctx.options["ways"]:
            episodes = self.episodes(ctx, ways)
            records = self.predict(ctx, episodes, ways)
            # every episode has as many queries, so the mean over queries is the mean over episodes
            result.metrics[f"{ways}-way accuracy"] = float(np.mean([r["correct"] for r in records]))
            result.records += records
            result.n_items += len(records)
            result.n_failed += sum(1 for r in records if r["error"])
        result.details = {"shots": ctx.options["shots"], "episodes": ctx.options["episodes"],
                          "queries_per_class": ctx.options["queries"]}
        return result


def _record(ctx, item, episode_index, ways, output, prediction, error, prompt="", words=None) -> dict:
    record = {"id": item.id, "episode": episode_index, "ways": ways, "prompt": prompt, "output": output,
              "target": item.labels[0], "prediction": prediction, "correct": prediction == item.labels[0],
              "error": error}
    return {**record, "label_words": words} if words else record


def label_words(episode: Episode, labels: str, seed: int, index: int) -> dict[str, str]:
    """The word each class of an episode is shown with: its name, or (``labels: nonce``) a non-word
    drawn for this episode alone, so the answer can only be read from the context (APT's few-shot
    learner 'rather than memorising the expected answers')."""
    if labels == "names":
        return {c: c for c in episode.classes}
    from ..synth import nonce_words

    rng = np.random.default_rng(np.random.SeedSequence([seed, index, 0x6E6F6E6365]))
    return dict(zip(episode.classes, nonce_words(rng, len(episode.classes))))


class InContextFewShot(_FewShot):
    """Support clips with their labels interleaved before the query clip, as APT prompts them: each
    support clip followed by its label word alone, then the query clip and the prompt (the APT paper,
    Sec. V: "adding the query audio clip together with the input text 'This is a sound of' to the end of
    the sequence of labelled audio examples and their corresponding label texts")."""

    name = "fewshot"
    title = "Few-shot: in context"
    needs = ("generate", "interleaved")
    needs_prompt = True
    uses_text_encoder = True
    description = ("each support clip then its label, then the query clip and the prompt; text-matched to the "
                   "episode's label words")
    #: ``labels``: ``names`` shows each class by its name; ``nonce`` by a non-word drawn per episode
    options = {**_FewShot.options, "labels": "names"}

    def predict(self, ctx: EvalContext, episodes: list[Episode], ways: int) -> list[dict]:
        items = ctx.test_items
        if ctx.options["labels"] not in ("names", "nonce"):
            raise ValueError(f"fewshot: labels must be 'names' or 'nonce', not {ctx.options['labels']!r}")
        calls, where, words = [], [], []
        for e, episode in enumerate(episodes):
            words.append(label_words(episode, ctx.options["labels"], ctx.seed, e))
            shown = tuple(words[e][c] for c in episode.classes)
            support: tuple = ()
            for index, label in episode.support:
                support += (ctx.ref(items[index].audio[0]), words[e][label])
            for index, label in episode.queries:
                request = GenerateRequest(support + (ctx.ref(items[index].audio[0]), ctx.prompt))
                calls.append(Call("generate", request, ideal=words[e][label], choices=shown))
                where.append((e, index))
        outcomes = ctx.run(calls, f"{ways}-way episodes")
        every_word = dict.fromkeys(w for episode_words in words for w in episode_words.values())
        ctx.encode_texts([o.value for o in outcomes if o.ok] + list(every_word))  # one batch; later calls hit the memo
        records = []
        for (e, index), outcome in zip(where, outcomes):
            classes = episodes[e].classes
            output = outcome.value if outcome.ok else None
            sims = match_to_labels(ctx, [output], tuple(words[e][c] for c in classes))[0]
            prediction = None if np.isnan(sims).all() else classes[int(np.nanargmax(sims))]
            nonce = words[e] if ctx.options["labels"] == "nonce" else None
            records.append(_record(ctx, items[index], e, ways, output, prediction, outcome.error, ctx.prompt, nonce))
        return records


class PrototypeFewShot(_FewShot):
    """For embed-only models: nearest class prototype (mean support embedding) by cosine."""

    name = "fewshot_prototype"
    title = "Few-shot: prototypes"
    needs = ("embed",)
    description = "nearest class prototype of support embeddings (cosine)"

    def predict(self, ctx: EvalContext, episodes: list[Episode], ways: int) -> list[dict]:
        items = ctx.test_items
        outcomes = ctx.run([Call("embed", ctx.ref(item.audio[0]), ideal=ctx.clip_texts(item)) for item in items],
                           "embedding")
        dim = next((len(o.value) for o in outcomes if o.ok), 1)
        x = np.stack([np.asarray(o.value, np.float64) if o.ok else np.full(dim, np.nan) for o in outcomes])
        records = []
        for e, episode in enumerate(episodes):
            support = [(i, label) for i, label in episode.support if outcomes[i].ok]  # a failed clip gives no support
            queries = [i for i, _ in episode.queries]
            predicted = prototype_predict(x[[i for i, _ in support]], [label for _, label in support], x[queries])
            for index, prediction in zip(queries, predicted):
                records.append(_record(ctx, items[index], e, ways, None, prediction, outcomes[index].error))
        return records
