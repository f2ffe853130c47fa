"""Train a Pengi configuration on the synthetic suite with Pengi's recipe: how ``pengi-tiny`` is made.

    python -m alm_bench_plugins.pengi.training --output plugins/pengi/weights/tiny --threads 2

About 18 minutes on 2 CPU cores.  Two stages:

1. **Audio encoder pretraining** (``tagging_steps``): HTS-AT's own task, clipwise tagging with binary
   cross-entropy through its TS-CAM head, on every kind and attribute of the training clips (``TAGS``).
   Pengi starts from a pretrained encoder (HTS-AT, then CLAP); from random weights the prefix barely
   differs between clips and the captioning objective alone is far too slow to make it listen.
   HTS-AT is then fixed, as a pretrained encoder would be (``freeze_audio_encoder``).
2. **Pengi's objective**, on everything after HTS-AT (projection, mappers, GPT-2): three short
   "listening" phases of single-event clips' one-word answers (``listening_phases``), then
   ``epochs`` in which every clip of the suite's *train* splits is phrased as (audio, prompt) -> text
   through the paper's templates (Table 1); the network learns to continue the prefix with the text
   (cross-entropy on the text tokens and the stop token, ``caption_loss``):

==========================  ======================  ============================================
template                    prompt                  text
==========================  ======================  ============================================
audio captioning            generate audio caption  two of the clip's five captions per epoch
sound event classification  this is a sound of      its kinds in time order: "beep, bell"
audio question answering    question: {question}    a count: "3" (for every event of every clip)
auxiliary                   generate metadata       kinds and attributes: "beep (high, loud, ...)"
==========================  ======================  ============================================

Deliberate differences from the paper, forced by the size: the language model is trained too (no
pretrained language model this small exists, and a frozen random one cannot learn), and the
learning rate is 1e-3 rather than 1e-4.  The decoder tokenizer is a byte-level BPE (GPT-2's kind)
trained on the suite's texts and Pengi's prompts, 512 tokens with ``<|endoftext|>`` last, so the
embedding table stays small; any text still encodes, byte by byte where it must.  The synthetic
two-clip questions are not used: Pengi takes one clip.

The log-mel front end has fixed weights, so each clip's log-mel is computed once, and so is each clip's
HTS-AT latent after stage 1.  Runs are seeded (clip rendering, caption
choice, batch order, initialisation, dropout); the same torch version and thread count reproduce the
weights bit for bit.  ``training.json`` beside the weights records the run: the recipe, the command,
losses per epoch and template on the validation splits, time, versions and the weights' SHA-256.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from alm_bench import synth

from ..bpe import END_OF_TEXT, train_tokenizer  # noqa: F401 - shared with apt-tiny
from .config import CONFIGS, PengiConfig
from .model import build_network, fit_to_clip
from .network import PengiNetwork
from .text import PromptTokenizer, stop_token_id, target_tokens

CAPTION = "generate audio caption"
SOUND_OF = "this is a sound of"
METADATA = "generate metadata"
QUESTION = "question: {question}"
#: Pengi's Table 1 prompts (and Table 11's), so each becomes whole tokens of the vocabulary
PENGI_PROMPTS = (CAPTION, "question:", SOUND_OF, "this acoustic scene is", "this emotion is",
                 "this sentiment is", "music analysis", "this music note is", METADATA)
#: the synthetic datasets Pengi can learn from: one clip per item (two-clip questions need two)
TRAIN_DATASETS = ("events", "tagging", "count", "captions")
SINGLE_EVENT_DATASETS = ("events", "count")
CAPTIONS_PER_EPOCH = 2


# -- templates ------------------------------------------------------------------------------------
def metadata(events: Sequence[dict]) -> str:
    """The auxiliary target: every event's kind and attributes, e.g. 'beep (high, loud, 3 times, beginning)'."""
    parts = []
    for e in events:
        times = "once" if e["count"] == 1 else f"{e['count']} times"
        attrs = [a for a in (e["pitch"], e["loudness"], times, e["position"]) if a]
        parts.append(f"{e['kind']} ({', '.join(attrs)})")
    return ", ".join(parts)


def fixed_pairs(record: dict, rng: np.random.Generator) -> list[tuple[str, str]]:
    """The (prompt, text) pairs of one clip other than its captions."""
    events = record["events"]
    pairs = [(SOUND_OF, ", ".join(e["kind"] for e in events)), (METADATA, metadata(events))]
    if "question" in record:
        pairs.append((QUESTION.format(question=record["question"]), record["answer"]))
    else:
        pairs += [(QUESTION.format(question=synth.count_question(rng, e["kind"])), str(e["count"])) for e in events]
    return pairs


@dataclass
class Clip:
    dataset: str
    mel: torch.Tensor  # the fixed front end's output [1, T, mels]
    pairs: list[tuple[str, str]]
    captions: list[str]
    tags: torch.Tensor  # multi-hot over TAGS, for the encoder's tagging stage
    latent: torch.Tensor | None = None  # the tagged, then frozen HTS-AT's output, for stage 2


#: what the audio encoder's tagging stage predicts (HTS-AT's clipwise head): every kind and attribute
TAGS = (*synth.EVENT_LABELS, "low", "high", "quiet", "loud", "1", "2", "3", "4", *synth.POSITIONS)


def tag_vector(events: Sequence[dict]) -> torch.Tensor:
    vector = torch.zeros(len(TAGS))
    for e in events:
        for tag in (e["kind"], e["pitch"], e["loudness"], str(e["count"]), e["position"]):
            if tag:
                vector[TAGS.index(tag)] = 1.0
    return vector


def render_clips(dataset: str, split: str, front_end, samples: int, seed: int, limit: int | None = None) -> list[Clip]:
    """The first ``limit`` (default: all) items of a synthetic split, rendered in memory and quantised to
    16 bits as the runner would load them from the suite's files."""
    clips = []
    for index in range(min(limit or synth.DATASETS[dataset][split], synth.DATASETS[dataset][split])):
        waves, record = synth.render_item(dataset, split, index)
        wave = np.round(fit_to_clip(waves[0], samples) * 32767) / 32767
        with torch.no_grad():
            mel = front_end(torch.from_numpy(wave.astype(np.float32))[None])[0]
        rng = np.random.default_rng([seed, synth.SPLITS.index(split), TRAIN_DATASETS.index(dataset), index])
        clips.append(Clip(dataset, mel, fixed_pairs(record, rng), record.get("captions", []), tag_vector(record["events"])))
    return clips


def examples_per_epoch(clips: Sequence[Clip]) -> int:
    return sum(len(c.pairs) + min(CAPTIONS_PER_EPOCH, len(c.captions)) for c in clips)


def epoch_examples(clips: Sequence[Clip], rng: np.random.Generator) -> list[tuple[int, str, str]]:
    """(clip, prompt, text) for one epoch, shuffled: every fixed pair, and fresh captions."""
    examples = []
    for i, clip in enumerate(clips):
        examples += [(i, p, t) for p, t in clip.pairs]
        if clip.captions:
            chosen = rng.choice(len(clip.captions), size=min(CAPTIONS_PER_EPOCH, len(clip.captions)), replace=False)
            examples += [(i, CAPTION, clip.captions[c]) for c in sorted(chosen)]
    return [examples[j] for j in rng.permutation(len(examples))]


# -- tokenizer ------------------------------------------------------------------------------------
def corpus(clip_sets: Sequence[Sequence[Clip]]) -> list[str]:
    texts = list(PENGI_PROMPTS) + list(synth.EVENT_LABELS)
    for clips in clip_sets:
        for clip in clips:
            texts += [t for pair in clip.pairs for t in pair] + clip.captions
    return texts


# -- batches --------------------------------------------------------------------------------------
class Batcher:
    """(clip, prompt, text) examples -> the clips' HTS-AT latents and the token tensors for
    ``PengiNetwork.caption_loss``."""

    def __init__(self, cfg: PengiConfig, tokenizer) -> None:
        self.prompts = PromptTokenizer(cfg.prompt_encoder, tokenizer, cfg.prompt_tokens)
        self.tokenizer, self.stop = tokenizer, stop_token_id(tokenizer)
        self.room = cfg.gpt2.n_positions - cfg.prefix_tokens
        self._text_cache: dict[str, list[int]] = {}

    def text_tokens(self, text: str) -> list[int]:
        if text not in self._text_cache:
            self._text_cache[text] = target_tokens(self.tokenizer, text, self.stop, self.room)
        return self._text_cache[text]

    def __call__(self, clips: Sequence[Clip], examples: Sequence[tuple[int, str, str]]) -> tuple[torch.Tensor, ...]:
        return torch.stack([clips[i].latent for i, _, _ in examples]), *self.tokens(examples)

    def tokens(self, examples: Sequence[tuple[int, str, str]]) -> tuple[torch.Tensor, ...]:
        """prompt ids and mask, target ids and mask"""
        prompt_ids, prompt_mask = self.prompts([p for _, p, _ in examples])
        rows = [self.text_tokens(t) for _, _, t in examples]
        target = torch.zeros(len(rows), max(len(r) for r in rows), dtype=torch.long)
        target_mask = torch.zeros_like(target)
        for i, row in enumerate(rows):
            target[i, : len(row)], target_mask[i, : len(row)] = torch.tensor(row), 1
        return prompt_ids, prompt_mask, target, target_mask


def batch_loss(network: PengiNetwork, batcher: Batcher, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    latent, prompt_ids, prompt_mask, target, target_mask = batch
    audio = network.audio_encoder.projection(latent)
    return network.caption_loss(audio, prompt_ids, prompt_mask, target, target_mask, batcher.prompts.eos_token_id)


def chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- training -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recipe:
    config: str = "tiny"
    epochs: int = 8
    batch_size: int = 64
    learning_rate: float = 1e-3
    warmup_steps: int = 50
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    #: stage 1: steps of HTS-AT tagging before the captioning objective
    tagging_steps: int = 600
    #: stage 2 opens with this many steps of each listening phase (single-event clips' counts, their
    #: kinds, then both)
    listening_steps: int = 300
    seed: int = 0
    #: items per training dataset (None: the whole split); small values make quick test runs
    limit: int | None = None


def load_split(dataset: str, split: str, network: PengiNetwork, cfg: PengiConfig, recipe: Recipe) -> list[Clip]:
    return render_clips(dataset, split, network.audio_encoder.base.htsat.front_end, cfg.audio.clip_samples,
                        recipe.seed, recipe.limit)


def valid_losses(network: PengiNetwork, batcher: Batcher, clips: Sequence[Clip], batch_size: int) -> dict[str, float]:
    """Mean loss per template (and over all) on every pair and caption of the validation clips, dropout off:
    a template's loss falls below its text-only level only once the audio is used."""
    examples = [(i, p, t) for i, c in enumerate(clips) for p, t in c.pairs + [(CAPTION, x) for x in c.captions]]
    network.eval()
    sums: dict[str, list[float]] = {}
    with torch.no_grad():
        for part in chunks(sorted(examples, key=lambda e: _template(e[1])), batch_size):
            for name in {_template(p) for _, p, _ in part}:
                group = [e for e in part if _template(e[1]) == name]
                loss = batch_loss(network, batcher, batcher(clips, group)).item()
                sums.setdefault(name, [0.0, 0])
                sums[name][0] += loss * len(group)
                sums[name][1] += len(group)
    network.train()
    out = {name: round(total / count, 4) for name, (total, count) in sorted(sums.items())}
    out["all"] = round(sum(t for t, _ in sums.values()) / sum(c for _, c in sums.values()), 4)
    return out


def _template(prompt: str) -> str:
    return "question" if prompt.startswith("question:") else prompt


def train(recipe: Recipe, output: Path, progress: bool = True) -> dict:
    """Train ``recipe.config`` and write ``model.pt``, ``tokenizer/`` and ``training.json`` to ``output``."""
    started = time.time()
    cfg = CONFIGS[recipe.config]
    if cfg.audio.num_classes != len(TAGS):
        raise ValueError(f"configuration {recipe.config!r} has {cfg.audio.num_classes} HTS-AT classes; "
                         f"the tagging stage needs {len(TAGS)}")
    network = build_network(cfg, recipe.seed).train()
    parameters = sum(p.numel() for p in network.parameters() if p.requires_grad)
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    train_clips = [c for d in TRAIN_DATASETS for c in load_split(d, "train", network, cfg, recipe)]
    valid_clips = [c for d in TRAIN_DATASETS for c in load_split(d, "valid", network, cfg, recipe)]
    tokenizer = train_tokenizer(corpus([train_clips]), cfg.gpt2.vocab_size)
    if tokenizer.eos_token_id != cfg.gpt2.eos_token_id:
        raise ValueError(f"the tokenizer's <|endoftext|> is {tokenizer.eos_token_id}, the configuration expects "
                         f"{cfg.gpt2.eos_token_id}")
    batcher = Batcher(cfg, tokenizer)
    with _progress(progress) as bar:
        tagging = tag_audio_encoder(network, train_clips, valid_clips, recipe, rng, bar)
        freeze_audio_encoder(network, [*train_clips, *valid_clips], recipe.batch_size)
        history = caption_stage(network, batcher, train_clips, valid_clips, recipe, rng, bar, started)
    network.eval()
    record = {
        "recipe": dataclasses.asdict(recipe), "command": command(recipe, output),
        "train_items": {d: recipe.limit or synth.DATASETS[d]["train"] for d in TRAIN_DATASETS},
        "synthetic_dataset_version": synth.DATASET_VERSION, "tagging": tagging, "history": history,
        "steps": recipe.tagging_steps + history[-1]["step"], "seconds": round(time.time() - started, 1),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
        "parameters": parameters,
    }
    save(network, tokenizer, record, Path(output))
    return record


def command(recipe: Recipe, output: Path) -> str:
    """The command line that runs ``recipe``."""
    args = [f"--output {output}"]
    for field in dataclasses.fields(recipe):
        value = getattr(recipe, field.name)
        if value is not None:
            args.append(f"--{field.name.replace('_', '-')} {value}")
    return "python -m alm_bench_plugins.pengi.training " + " ".join(args)


def _optimizer(params: list[torch.nn.Parameter], recipe: Recipe, steps: int):
    from transformers import get_linear_schedule_with_warmup

    optimizer = torch.optim.AdamW(params, lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
    return optimizer, get_linear_schedule_with_warmup(optimizer, min(recipe.warmup_steps, steps // 2), steps)


def _step(loss: torch.Tensor, params: list[torch.nn.Parameter], optimizer, schedule, recipe: Recipe) -> None:
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, recipe.max_grad_norm)
    optimizer.step()
    schedule.step()


def tag_audio_encoder(network: PengiNetwork, clips: Sequence[Clip], valid: Sequence[Clip], recipe: Recipe,
                      rng: np.random.Generator, bar) -> dict:
    """Stage 1: HTS-AT's own pretraining task (clipwise tagging with binary cross-entropy) on every kind
    and attribute of the training clips.  Pengi starts from a pretrained audio encoder (HTS-AT, then
    CLAP); from random weights the prefix barely differs between clips, and captioning alone takes
    far longer than the budget to start listening."""
    htsat = network.audio_encoder.base.htsat
    params = [p for p in htsat.parameters() if p.requires_grad]
    optimizer, schedule = _optimizer(params, recipe, recipe.tagging_steps)
    mels, tags = torch.stack([c.mel for c in clips]), torch.stack([c.tags for c in clips])
    task = bar.add_task("tagging", total=recipe.tagging_steps)
    for _ in range(recipe.tagging_steps):
        batch = torch.from_numpy(rng.choice(len(clips), min(recipe.batch_size, len(clips)), replace=False))
        loss = F.binary_cross_entropy(htsat.from_front_end(mels[batch])[1], tags[batch])
        _step(loss, params, optimizer, schedule, recipe)
        bar.update(task, advance=1, description=f"tagging loss {loss.item():.3f}")
    htsat.eval()
    with torch.no_grad():
        predicted = htsat.from_front_end(torch.stack([c.mel for c in valid]))[1] > 0.5
    htsat.train()
    truth = torch.stack([c.tags for c in valid]) > 0.5
    result = {"steps": recipe.tagging_steps, "valid_tag_accuracy": round((predicted == truth).float().mean().item(), 4)}
    bar.console.print(f"tagging: {json.dumps(result)}", soft_wrap=True)
    return result


def freeze_audio_encoder(network: PengiNetwork, clips: Sequence[Clip], batch_size: int) -> None:
    """End stage 1: fix HTS-AT and store every clip's latent, so stage 2 trains what comes after it.

    Measured (``bench/pengi_tiny_frozen_encoder.py``): after tagging, a clip's count is linearly
    decodable from the audio prefix (0.98); training HTS-AT on the language model's early, still
    uninformed gradients destroys it (0.39 after 400 steps) before the language model learns to read
    it, so counting stays at its text-only loss.  With HTS-AT fixed the answer's loss is 0.10 after
    200 steps, and each step skips HTS-AT."""
    htsat = network.audio_encoder.base.htsat.eval().requires_grad_(False)
    with torch.no_grad():
        for part in chunks(clips, batch_size):
            latents, _ = htsat.from_front_end(torch.stack([c.mel for c in part]))
            for clip, latent in zip(part, latents):
                clip.latent = latent


def listening_phases(clips: Sequence[Clip]) -> list[list[tuple[int, str, str]]]:
    """The listening phases' examples: single-event clips' one-word answers, first their counts alone
    ("question: how many ..." -> "3"), then their kinds alone ("this is a sound of" -> "beep"), then both.

    Measured in trials: whichever answer the language model first learns to read from the prefix, it
    keeps, and the other stays near its text-only loss while the two are mixed.  Kinds alone first (the
    recipe before) or both mixed from the start: the count question's loss stayed at 0.69 (a uniform
    guess); counts first, then the mixture: synth-count 0.98, synth-events at chance.  Each answer
    alone is learned in about 250 steps, and after both phases the mixture keeps both (validation
    losses on single-event clips: counts 0.11, kinds 0.30, from 0.69 and 1.15 text-only)."""
    def answers(datasets: Sequence[str], prompt: str) -> list[tuple[int, str, str]]:
        return [(i, p, t) for i, c in enumerate(clips) if c.dataset in datasets for p, t in c.pairs if p.startswith(prompt)]

    count, kind = answers(SINGLE_EVENT_DATASETS, "question:"), answers(("events",), SOUND_OF)
    return [count, kind, count + kind]


def listening_batches(phases: Sequence[Sequence[tuple[int, str, str]]], steps: int, batch_size: int,
                      rng: np.random.Generator) -> list[list[tuple[int, str, str]]]:
    """``steps`` batches from each phase in turn, each phase's examples reshuffled as often as needed."""
    batches = []
    for pool in phases:
        stream: list[tuple[int, str, str]] = []
        while len(stream) < steps * batch_size:
            stream += [pool[j] for j in rng.permutation(len(pool))]
        batches += list(chunks(stream, batch_size))[:steps]
    return batches


def caption_stage(network: PengiNetwork, batcher: Batcher, clips: Sequence[Clip], valid: Sequence[Clip],
                  recipe: Recipe, rng: np.random.Generator, bar, started: float) -> list[dict]:
    """Stage 2: Pengi's objective on everything after HTS-AT: ``listening_steps`` of each listening
    phase, then ``epochs`` of every template.  Mixed from the start, the language model learns the
    texts' form and does not start reading the audio prefix (in trials with HTS-AT still training,
    1,500 steps left every template at its text-only loss); one-word answers with nothing else to
    learn make it listen within a few hundred steps, and the mixture keeps it listening."""
    phases = listening_phases(clips)
    steps_per_epoch = -(-examples_per_epoch(clips) // recipe.batch_size)
    total = len(phases) * recipe.listening_steps + steps_per_epoch * recipe.epochs
    params = [p for p in network.parameters() if p.requires_grad]
    optimizer, schedule = _optimizer(params, recipe, total)
    task = bar.add_task("captioning", total=total)
    history, step = [], 0
    for epoch in range(recipe.epochs + 1):  # "epoch" 0 is the listening phase
        if epoch == 0:
            if not recipe.listening_steps:
                continue
            batches = listening_batches(phases, recipe.listening_steps, recipe.batch_size, rng)
        else:
            batches = list(chunks(epoch_examples(clips, rng), recipe.batch_size))
        losses = []
        for part in batches:
            loss = batch_loss(network, batcher, batcher(clips, part))
            _step(loss, params, optimizer, schedule, recipe)
            losses.append(loss.item())
            step += 1
            phase = f"epoch {epoch}/{recipe.epochs}" if epoch else "listening"
            bar.update(task, advance=1, description=f"{phase} loss {loss.item():.3f}")
        history.append({"epoch": epoch, "step": step, "train_loss": round(float(np.mean(losses)), 4),
                        "valid_loss": valid_losses(network, batcher, valid, recipe.batch_size),
                        "seconds": round(time.time() - started, 1)})
        bar.console.print(f"{'epoch' if epoch else 'listening'}: {json.dumps(history[-1])}", soft_wrap=True)
    return history


def _progress(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    return Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), disable=not enabled)


def save(network: PengiNetwork, tokenizer, record: dict, output: Path) -> None:
    """Write the three outputs; each file appears whole (written aside, then renamed)."""
    output.mkdir(parents=True, exist_ok=True)
    weights = output / "model.pt"
    partial = weights.with_name(f".model.pt.{os.getpid()}")
    torch.save({"model": network.state_dict()}, partial)
    record["sha256"] = hashlib.sha256(partial.read_bytes()).hexdigest()
    os.replace(partial, weights)
    tokenizer.save_pretrained(output / "tokenizer")
    partial = output / f".training.json.{os.getpid()}"
    partial.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(partial, output / "training.json")


def main(argv: Sequence[str] | None = None) -> int:
    defaults = Recipe()
    parser = argparse.ArgumentParser(prog="python -m alm_bench_plugins.pengi.training", description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="directory for model.pt, tokenizer/, training.json")
    parser.add_argument("--config", default=defaults.config, choices=sorted(CONFIGS))
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--warmup-steps", type=int, default=defaults.warmup_steps)
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    parser.add_argument("--max-grad-norm", type=float, default=defaults.max_grad_norm)
    parser.add_argument("--tagging-steps", type=int, default=defaults.tagging_steps)
    parser.add_argument("--listening-steps", type=int, default=defaults.listening_steps)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--limit", type=int, default=None, help="items per training dataset (quick runs)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = Recipe(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Recipe)})
    record = train(recipe, args.output, progress=sys.stderr.isatty())
    print(f"wrote {args.output} in {record['seconds']:.0f} s; final valid loss {record['history'][-1]['valid_loss']['all']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
