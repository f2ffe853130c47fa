"""Train ``clap-tiny`` on the synthetic suite's train splits: how the shipped weights are made.

    python -m alm_bench_plugins.clap.training --output plugins/clap/weights/tiny --threads 2

A few minutes on 2 CPU cores.  Every clip of the ``events``, ``tagging``, ``count`` and ``captions``
train splits is paired with the texts true of it: "this is a sound of {label}" for each of its labels
(the zero-shot template), its labels together in that template, and its five reference captions.
Each epoch draws one text per clip; CLAP's symmetric contrastive loss is taken against every text of the
batch, with every text true of a clip counted as its positive (a batch holds many "this is a sound of
bell"), so no true pair is pushed apart.  The log-mel front end and MiniLM are fixed, so both are
computed once.  Seeded (clip rendering, text choice, batch order, initialisation): the same torch
version and thread count reproduce the weights bit for bit.  ``training.json`` records the recipe, the
command, the loss per epoch, time, versions and the weights' SHA-256.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from alm_bench import synth

from .tiny import TEXT_MODEL, TinyClap, front_end, sentence_encoder, text_features

TEMPLATE = "this is a sound of {label}"
DATASETS = ("events", "tagging", "count", "captions")


@dataclass(frozen=True)
class Recipe:
    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    #: clips per dataset (None: the whole train split); tests train on a few
    limit: int | None = None


def clip_texts(record: dict) -> list[str]:
    """Every text true of a clip: its labels in the template, alone and together, and its captions."""
    labels = [e["kind"] for e in record["events"]]  # in time order
    texts = [TEMPLATE.format(label=label) for label in dict.fromkeys(labels)]
    if len(set(labels)) > 1:
        texts.append(TEMPLATE.format(label=", ".join(dict.fromkeys(labels))))
    return texts + list(record.get("captions", ()))


def training_data(limit: int | None, cache: Path | None = None) -> tuple[torch.Tensor, list[list[str]]]:
    """Log-mels [clips, frames, mels] of every train clip, and the texts true of each (kept in ``cache``,
    a .pt file, when given: rendering is most of a run's time)."""
    if cache is not None and cache.is_file():
        saved = torch.load(cache, weights_only=True)
        if saved["limit"] == (limit or 0) and saved["version"] == synth.DATASET_VERSION:
            return saved["mels"], json.loads(saved["texts"])
    mels, texts = _render(limit)
    if cache is not None:
        torch.save({"limit": limit or 0, "version": synth.DATASET_VERSION, "mels": mels,
                    "texts": json.dumps(texts)}, cache)
    return mels, texts


def _render(limit: int | None) -> tuple[torch.Tensor, list[list[str]]]:
    mel = front_end()
    mels, texts = [], []
    for dataset in DATASETS:
        for index in range(min(limit or synth.DATASETS[dataset]["train"], synth.DATASETS[dataset]["train"])):
            waves, record = synth.render_item(dataset, "train", index)
            mels.append(mel.log_mel(waves[0]))
            texts.append(clip_texts(record))
    return torch.stack(mels), texts


def vocabulary_features(vocabulary: list[str], cache: Path | None) -> torch.Tensor:
    """MiniLM's embedding of every text (kept beside the log-mels in ``cache``: the other slow part)."""
    path = cache.with_name(cache.name + ".text.pt") if cache is not None else None
    if path is not None and path.is_file():
        saved = torch.load(path, weights_only=True)
        if json.loads(saved["texts"]) == vocabulary:
            return saved["features"]
    features = text_features(sentence_encoder(), vocabulary)
    if path is not None:
        torch.save({"texts": json.dumps(vocabulary), "features": features}, path)
    return features


def train(recipe: Recipe, log=print, cache: Path | None = None) -> tuple[TinyClap, dict]:
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    start, cpu_start = time.perf_counter(), time.process_time()
    mels, texts = training_data(recipe.limit, cache)
    vocabulary = sorted({t for ts in texts for t in ts})
    index = {t: i for i, t in enumerate(vocabulary)}
    features = vocabulary_features(vocabulary, cache)
    true_of = [np.array([index[t] for t in ts]) for ts in texts]
    log(f"{len(mels)} clips, {len(vocabulary)} texts, features in {time.perf_counter() - start:.0f} s")

    network = TinyClap()
    flat = mels.reshape(-1, mels.shape[-1])
    network.mel_mean.copy_(flat.mean(0))
    network.mel_std.copy_(flat.std(0).clamp(min=1e-3))
    optimiser = torch.optim.AdamW(network.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
    steps = recipe.epochs * -(-len(mels) // recipe.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, recipe.learning_rate, total_steps=steps)
    history = []
    for epoch in range(recipe.epochs):
        losses = []
        for batch in np.array_split(rng.permutation(len(mels)), -(-len(mels) // recipe.batch_size)):
            chosen = np.array([rng.choice(true_of[i]) for i in batch])
            positive = torch.from_numpy(np.stack([np.isin(chosen, true_of[i]) for i in batch])).float()
            loss = contrastive_loss(network, mels[batch], features[chosen], positive)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
        history.append(round(float(np.mean(losses)), 4))
        log(f"epoch {epoch + 1}/{recipe.epochs}: loss {history[-1]:.4f} ({time.perf_counter() - start:.0f} s)")
    return network, {"loss_per_epoch": history, "clips": len(mels), "texts": len(vocabulary),
                     "seconds": round(time.perf_counter() - start, 1),
                     "cpu_seconds": round(time.process_time() - cpu_start, 1)}


def contrastive_loss(network: TinyClap, mels: torch.Tensor, features: torch.Tensor,
                     positive: torch.Tensor) -> torch.Tensor:
    """CLAP's symmetric cross-entropy, each row's target spread over all of its true texts (clips)."""
    audio, text = network.encode_audio(mels), network.encode_text(features)
    logits = network.logit_scale.exp().clamp(max=100) * audio @ text.T
    audio_to_text = -(positive / positive.sum(1, keepdim=True) * F.log_softmax(logits, 1)).sum(1).mean()
    text_to_audio = -(positive.T / positive.T.sum(1, keepdim=True) * F.log_softmax(logits.T, 1)).sum(1).mean()
    return (audio_to_text + text_to_audio) / 2


def save(network: TinyClap, output: Path, recipe: Recipe, summary: dict, threads: int) -> dict:
    output.mkdir(parents=True, exist_ok=True)
    path = output / "model.pt"
    torch.save({k: v.contiguous() for k, v in network.state_dict().items()}, path)
    record = {"command": f"python -m alm_bench_plugins.clap.training --output {output} --threads {threads}",
              "recipe": dataclasses.asdict(recipe), "text_model": TEXT_MODEL, "template": TEMPLATE,
              "train_splits": {d: recipe.limit or synth.DATASETS[d]["train"] for d in DATASETS},
              "synthetic_dataset_version": synth.DATASET_VERSION, **summary, "threads": threads,
              "torch": torch.__version__, "python": sys.version.split()[0], "platform": platform.platform(),
              "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    (output / "training.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=Recipe.epochs)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=Recipe.seed)
    parser.add_argument("--data-cache", type=Path, default=None,
                        help="keep the rendered log-mels (and MiniLM's text features beside them) here, "
                             "so a second run skips both")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    recipe = Recipe(epochs=args.epochs, limit=args.limit, seed=args.seed)
    network, summary = train(recipe, cache=args.data_cache)
    record = save(network, args.output, recipe, summary, args.threads)
    print(f"saved {args.output / 'model.pt'} (sha256 {record['sha256'][:12]}) in {summary['seconds']} s")


if __name__ == "__main__":
    main()
