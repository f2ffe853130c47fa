"""Train ``apt-tiny`` on the synthetic suite with APT's curriculum (a skeleton; see "What remains").

    python -m alm_bench_plugins.apt.training --output plugins/apt/weights/tiny --seed 0 --threads 2

Stages, in order; each trains only what the paper trains at that point:

- ``lm``: the language model (a 2-layer Llama-style decoder over a 512-token BPE of the suite's
  texts) is pretrained on those texts, then frozen for good, as the paper freezes Vicuna.
- ``encoder``: the tiny Audio-MAE is pretrained by tagging the kinds of the training clips (no
  pretrained Audio-MAE this small exists), then frozen, as the paper freezes Audio-MAE.
- stage 0, ``align``: audio-text alignment of the aligner (Q-Former + queries): a contrastive loss
  between the mean query output and the Q-Former's text embedding of the clip's caption.
- stage 1, ``single``: one clip, instruction -> answer, next-token loss on the answer (+ eos):
  tagging ("This is a sound of"), captioning ("Describe the audio clip concisely."), key words
  ("Summarize the audio with key words."), counting questions, when-does-it-happen questions.
- stage 2, ``multi``: several clips: few-shot episodes with the label words in context (the kinds'
  names or, half of the time, non-words drawn for the episode, so labels are read from the context),
  and two-clip questions (``compare`` and ``order``).

Everything is seeded (rendering, example order, initialisation); ``training.json`` beside the
weights records the command, per-stage losses, time, versions and the weights' SHA-256.

What remains (issue 16, part 2): step counts and learning rates that reach the issue's floors in
about 45 minutes on 2 cores; a validation pass per stage; shipping the weights.
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
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from alm_bench import Clip, synth

from .. import bpe
from .checkpoint import to_lavis
from .config import CONFIGS

SOUND_OF, DESCRIBE, KEY_WORDS = "This is a sound of", "Describe the audio clip concisely.", "Summarize the audio with key words."
QUESTION = "question: {question}"
WHEN = "when does the {kind} happen?"


@dataclass(frozen=True)
class Recipe:
    config: str = "tiny"
    seed: int = 0
    items: int = 400  # items per training dataset
    batch_size: int = 16
    lm_steps: int = 300
    encoder_steps: int = 300
    align_steps: int = 200
    single_steps: int = 600
    multi_steps: int = 600
    learning_rate: float = 1e-3
    lm_layers: int = 2
    lm_width: int = 128


# -- examples ------------------------------------------------------------------------------------
def _clip(wave: np.ndarray, key: str) -> Clip:
    return Clip(np.asarray(wave, np.float32), key)


def single_examples(recipe: Recipe, rng: np.random.Generator) -> tuple[list[tuple], list[tuple[Clip, list[str]]]]:
    """(content, answer) pairs of stage 1, and (clip, kinds) for the encoder and alignment stages."""
    examples, tagged = [], []
    for name in ("events", "tagging", "captions", "count"):
        for index in range(min(recipe.items, synth.DATASETS[name]["train"])):
            (wave,), record = synth.render_item(name, "train", index)
            clip = _clip(wave, record["id"])
            kinds = [e["kind"] for e in record["events"]]
            tagged.append((clip, kinds, (record.get("captions") or [", ".join(kinds)])[0]))
            examples += [((clip, SOUND_OF), ", ".join(kinds)), ((clip, KEY_WORDS), ", ".join(dict.fromkeys(kinds)))]
            examples += [((clip, WHEN.format(kind=e["kind"])), e["position"]) for e in record["events"]]
            if "captions" in record:
                examples.append(((clip, DESCRIBE), record["captions"][int(rng.integers(5))]))
            if "question" in record:
                examples.append(((clip, QUESTION.format(question=record["question"])), record["answer"]))
    return examples, tagged


def multi_examples(recipe: Recipe, tagged: Sequence, rng: np.random.Generator) -> list[tuple]:
    """Two-clip questions and few-shot episodes (5-way 1-shot, names or non-words)."""
    examples = []
    for name in ("compare", "order"):
        for index in range(min(recipe.items, synth.DATASETS[name]["train"])):
            (a, b), record = synth.render_item(name, "train", index)
            content = (_clip(a, record["id"] + "a"), _clip(b, record["id"] + "b"), QUESTION.format(question=record["question"]))
            examples.append((content, record["answer"]))
    singles = [(clip, kinds[0]) for clip, kinds, _ in tagged if len(kinds) == 1]
    by_kind: dict[str, list[Clip]] = {}
    for clip, kind in singles:
        by_kind.setdefault(kind, []).append(clip)
    available = sorted(by_kind)  # every kind once the training items are many; a few may lack clips in a short run
    for _ in range(recipe.items if len(available) >= 5 else 0):
        kinds = [available[i] for i in rng.choice(len(available), 5, replace=False)]
        words = synth.nonce_words(rng, 5) if rng.random() < 0.5 else kinds
        support = [(by_kind[k][int(rng.integers(len(by_kind[k])))], w) for k, w in zip(kinds, words)]
        order = rng.permutation(5)
        content = sum(((support[i][0], f"{SOUND_OF} {support[i][1]}") for i in order), ())
        target = int(rng.integers(5))
        query = by_kind[kinds[target]][int(rng.integers(len(by_kind[kinds[target]])))]
        examples.append((content + (query, SOUND_OF), words[target]))
    return examples


def corpus(single: Sequence, multi: Sequence) -> list[str]:
    texts = [SOUND_OF, DESCRIBE, KEY_WORDS, *synth.EVENT_LABELS]
    for content, answer in [*single, *multi]:
        texts += [c for c in content if isinstance(c, str)] + [answer]
    return texts


# -- stages --------------------------------------------------------------------------------------
def _adam(params, recipe: Recipe):
    return torch.optim.AdamW([p for p in params if p.requires_grad], lr=recipe.learning_rate, weight_decay=0.01)


def _batches(n: int, steps: int, batch_size: int, rng: np.random.Generator):
    for _ in range(steps):
        yield rng.choice(n, size=min(batch_size, n), replace=False)


def pretrain_lm(tokenizer, texts: Sequence[str], recipe: Recipe, rng: np.random.Generator):
    """A small Llama-style causal LM trained on the suite's texts, returned frozen."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=recipe.lm_width, intermediate_size=4 * recipe.lm_width,
                         num_hidden_layers=recipe.lm_layers, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=512, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True)
    lm = LlamaForCausalLM(config)
    optimizer, losses = _adam(lm.parameters(), recipe), []
    for rows in _batches(len(texts), recipe.lm_steps, recipe.batch_size, rng):
        enc = tokenizer([tokenizer.bos_token + texts[i] + tokenizer.eos_token for i in rows], padding=True,
                        return_tensors="pt", add_special_tokens=False)
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        loss = lm(**enc, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return lm.eval().requires_grad_(False), losses


def pretrain_encoder(model, tagged: Sequence, recipe: Recipe, rng: np.random.Generator) -> list[float]:
    """Tag the kinds of each clip through the ViT's head, then freeze the encoder."""
    vit = model.network.audio_encoder.model.requires_grad_(True).train()
    fbanks = [model.network.audio_encoder.fbank_segments(torch.from_numpy(c.waveform))[0] for c, _, _ in tagged]
    targets = torch.zeros(len(tagged), len(synth.EVENT_LABELS))
    for i, (_, kinds, _) in enumerate(tagged):
        targets[i, [synth.EVENT_LABELS.index(k) for k in kinds]] = 1
    optimizer, losses = _adam(vit.parameters(), recipe), []
    for rows in _batches(len(tagged), recipe.encoder_steps, recipe.batch_size, rng):
        _, pooled = vit(torch.stack([fbanks[i] for i in rows]))
        loss = F.binary_cross_entropy_with_logits(vit.head(pooled), targets[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    vit.eval().requires_grad_(False)
    return losses


def align(model, tagged: Sequence, recipe: Recipe, rng: np.random.Generator) -> list[float]:
    """Stage 0: contrastive alignment of mean query outputs with the Q-Former's caption embeddings."""
    net, tok = model.network, model.qformer_tokenizer
    optimizer, losses = _adam([*net.qformer.parameters(), net.query_tokens, *net.ln_audio.parameters()], recipe), []
    empty_ids, empty_mask = model._qformer_text("")
    for rows in _batches(len(tagged), recipe.align_steps, recipe.batch_size, rng):
        audio = [net.encode_audio(torch.from_numpy(tagged[i][0].waveform))[0] for i in rows]
        queries = torch.stack([net.queries(a, empty_ids, empty_mask).mean(0) for a in audio])
        enc = tok([tagged[i][2] for i in rows], padding=True, return_tensors="pt")
        text = net.text_embedding(enc["input_ids"], enc["attention_mask"])
        logits = F.normalize(queries, dim=-1) @ F.normalize(text, dim=-1).T / 0.07
        labels = torch.arange(len(rows))
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def answer_loss(model, batch: Sequence[tuple]) -> torch.Tensor:
    """Next-token loss on each answer (then eos) after its interleaved input."""
    audio = model._encode([c for content, _ in batch for c in content if isinstance(c, Clip)])
    inputs, targets = [], []
    for content, answer in batch:
        prefix = model._sequence(content, audio)
        ids = model.candidate_tokens(answer)
        inputs.append(torch.cat((prefix, model._embed_ids(ids[:-1]))))
        targets.append(torch.tensor([-100] * (len(prefix) - 1) + ids))
    longest = max(len(x) for x in inputs)
    embeds = torch.stack([F.pad(x, (0, 0, 0, longest - len(x))) for x in inputs])
    mask = torch.stack([torch.arange(longest) < len(x) for x in inputs]).long()
    labels = torch.stack([F.pad(t, (0, longest - len(t)), value=-100) for t in targets])
    logits = model.llm(inputs_embeds=embeds, attention_mask=mask).logits
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)


def instruct(model, examples: Sequence[tuple], steps: int, recipe: Recipe, rng: np.random.Generator) -> list[float]:
    """Stages 1 and 2: the aligner, projection and audio-indicator token learn; the LM and encoder stay frozen."""
    net = model.network
    params = [*net.qformer.parameters(), net.query_tokens, *net.ln_audio.parameters(), *net.llm_proj.parameters(),
              net.audio_indicator_token]
    optimizer, losses = _adam(params, recipe), []
    for rows in _batches(len(examples), steps, recipe.batch_size, rng):
        loss = answer_loss(model, [examples[i] for i in rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


# -- the run -------------------------------------------------------------------------------------
def train(recipe: Recipe, output: Path) -> dict:
    from .model import AptModel

    start = time.perf_counter()
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    single, tagged = single_examples(recipe, rng)
    multi = multi_examples(recipe, tagged, rng)
    texts = corpus(single, multi)
    tokenizer = bpe.train_tokenizer(texts, CONFIGS[recipe.config].qformer.vocab_size)
    tokenizer.pad_token = tokenizer.eos_token  # padding is always masked out
    lm, lm_losses = pretrain_lm(tokenizer, texts, recipe, rng)
    output.mkdir(parents=True, exist_ok=True)
    lm.save_pretrained(output / "llm")
    tokenizer.save_pretrained(output / "llm")
    model = AptModel(checkpoint="random", llm=str(output / "llm"), config=recipe.config, qformer_tokenizer="llm",
                     seed=recipe.seed)
    model.network.train()
    losses = {"lm": lm_losses, "encoder": pretrain_encoder(model, tagged, recipe, rng),
              "align": align(model, tagged, recipe, rng),
              "single": instruct(model, single, recipe.single_steps, recipe, rng),
              "multi": instruct(model, multi, recipe.multi_steps, recipe, rng)}
    model.network.eval()
    record = {"command": command(recipe, output), "recipe": dataclasses.asdict(recipe),
              "stages": {k: {"steps": len(v), "first_loss": v[0] if v else None,
                             "last_loss": float(np.mean(v[-20:])) if v else None} for k, v in losses.items()},
              "seconds": round(time.perf_counter() - start, 1), "torch": torch.__version__,
              "python": platform.python_version(), "threads": torch.get_num_threads()}
    save(model, record, output)
    return record


def command(recipe: Recipe, output: Path) -> str:
    args = [f"--{f.name.replace('_', '-')} {getattr(recipe, f.name)}" for f in dataclasses.fields(Recipe)
            if getattr(recipe, f.name) != f.default]
    return " ".join(["python -m alm_bench_plugins.apt.training --output", str(output), *args])


def save(model, record: dict, output: Path) -> None:
    """``model.pt`` (LAVIS layout, Audio-MAE included) and ``training.json``, each written aside then renamed."""
    weights = output / "model.pt"
    partial = weights.with_name(f".model.pt.{os.getpid()}")
    torch.save({"model": to_lavis(model.network, with_encoder=True)}, partial)
    record["sha256"] = hashlib.sha256(partial.read_bytes()).hexdigest()
    os.replace(partial, weights)
    partial = output / f".training.json.{os.getpid()}"
    partial.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(partial, output / "training.json")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alm_bench_plugins.apt.training", description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="directory for model.pt, llm/, training.json")
    for f in dataclasses.fields(Recipe):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = Recipe(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Recipe)})
    record = train(recipe, args.output)
    print(f"wrote {args.output} in {record['seconds']:.0f} s; " +
          ", ".join(f"{k} {v['first_loss']:.3f}->{v['last_loss']:.3f}" for k, v in record["stages"].items() if v["steps"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
