"""Train ``apt-tiny`` on the synthetic suite's train splits with APT's curriculum.

    python -m alm_bench_plugins.apt.training --output plugins/apt/weights/tiny --threads 1

Stages, in order; each trains only what the paper trains at that point:

- ``lm``: the language model (a small Llama-style decoder over a 512-token BPE of the suite's texts)
  is pretrained on text, then frozen for good, as the paper freezes Vicuna.  Its texts are the suite's
  instructions and answers, and the very examples of stages 1 and 2 with each clip written as words
  (``<audio>`` then a plain description of its events): the text-only skills a pretrained LLM brings
  to APT (answering from a description, comparing two, reading labels from context) come from here.
  Before the text come ``lm_copy_steps`` of copy lessons (``copy_lesson``), where the induction head
  that copies a label from a few-shot episode forms.
- ``encoder``: the tiny Audio-MAE is pretrained to tell each clip's kinds and, per kind, its loudness,
  pitch, position and count (no pretrained Audio-MAE this small exists), then frozen, as the paper
  freezes Audio-MAE.
- stage 0, ``align``: audio-text alignment of the aligner (Q-Former + queries): a contrastive loss, both
  directions, between the mean query output and the Q-Former's text embedding of a text true of the clip
  (its description, a reference caption, its kinds as a list, or one kind's name).  It goes on beside the
  answers in stages 1 to 3, so the text side stays the text encoder that matches answers to class names.
- stage 1, ``single``: one clip, instruction -> answer, next-token loss on the answer (+ eos):
  tagging, captioning, key words, counting and when-does-it-happen questions, each under the paper's
  prompt and the suite's (Pengi's) prompt.
- stage 2, ``multi``: several clips: few-shot episodes in the paper's layout, each support clip then its
  label word, the query clip then the prompt (the labels are the kinds' names or, 70% of the time,
  non-words drawn for the episode, so that they are read from the context and not memorised),
  two-clip questions (``compare`` and ``order``), and single-clip examples so that stage 1's skills stay.
- stage 3, ``raft``: retrieval-augmented fine-tuning (the RAG paper's RAFT): captioning with retrieved
  (clip, caption) pairs in context, in the ``rag`` wrapper's interleaved layout, mixed with stage 2's
  examples.

Everything is seeded (rendering, example order, initialisation); ``training.json`` beside the
weights records the command, per-stage losses and seconds, versions and the weights' SHA-256.
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
from .llm import word_start

SOUND_OF, DESCRIBE, KEY_WORDS = "This is a sound of", "Describe the audio clip concisely.", "Summarize the audio with key words."
#: the synthetic tasks' own prompts (Pengi's), which a run of the suite sends
SUITE_SOUND_OF, SUITE_CAPTION, SUITE_METADATA = "this is a sound of", "generate audio caption", "generate metadata"
QUESTION = "question: {question}"
WHEN = "when does the {kind} happen?"
#: stands for a clip in the language model's text-only pretraining; the audio-indicator token starts as its embedding
AUDIO_WORD = "<audio>"


@dataclass(frozen=True)
class Recipe:
    config: str = "tiny"
    seed: int = 0
    items: int = 1000  # items per training dataset (at most its train split)
    batch_size: int = 32
    lm_steps: int = 4000
    #: copy lessons before the language model's text (``copy_lesson``): where its induction head forms
    lm_copy_steps: int = 1500
    #: shares of each later language-model batch that are copy lessons (so that the head stays) and
    #: recall lessons (``recall_lesson``: dense practice in the few-shot layout)
    lm_copy_share: float = 0.125
    lm_recall_share: float = 0.25
    encoder_steps: int = 1000
    align_steps: int = 1000
    single_steps: int = 2000
    multi_steps: int = 1500
    raft_steps: int = 300
    raft_k: int = 4
    learning_rate: float = 1e-3
    lm_learning_rate: float = 2e-3
    lm_layers: int = 2
    lm_width: int = 128


@dataclass(frozen=True)
class Example:
    """One instruction: clips and text interleaved as a ``GenerateRequest``'s content, and the answer."""

    content: tuple
    answer: str
    #: a few-shot episode labelled with non-words, which are drawn afresh each time it is used (``fresh``)
    nonce: bool = False


def fresh(example: Example, rng: np.random.Generator) -> Example:
    """``example`` with new non-words if it is a non-word episode: its labels can then only be read from
    the context, never memorised (with fixed words a small model memorises the episodes instead)."""
    if not example.nonce:
        return example
    content = list(example.content)
    labels = range(1, len(content) - 2, 2)  # (clip, WORD) pairs, then the query clip and the prompt
    new = dict(zip(dict.fromkeys(content[i] for i in labels), synth.nonce_words(rng, len(labels))))
    for i in labels:
        content[i] = new[content[i]]
    return Example(tuple(content), new[example.answer], True)


# -- words for clips -----------------------------------------------------------------------------
def describe(events: Sequence[dict]) -> str:
    """A clip's events as plain words, kind last, e.g. 'at the beginning 2 loud high beep, then at the end
    1 quiet rumble': what the language model reads in place of a clip before it ever sees audio.  The
    kind's name ends each event, always in the singular, so that every clip of a kind ends with the same
    word: what the language model's induction head matches to find a few-shot label (plurals, distinct
    tokens, would leave a third of the support clips unmatched).  The count is the digit a counting
    question's answer is, so that the answer is copied from the clip as the position is: with the count
    as a word ('two'), a language model that had learnt to copy answered '1' to 95 of 100 questions."""
    parts = []
    for e in events:
        kind = synth._KIND[e["kind"]]
        parts.append(" ".join(w for w in ("at the " + e["position"], str(e["count"]), e["loudness"],
                                          e["pitch"] or "", kind.label) if w))
    return ", then ".join(parts)


class Clips:
    """Rendered training clips: each clip's waveform and its events (the ground truth behind every target)."""

    def __init__(self) -> None:
        self.events: dict[str, list[dict]] = {}
        self.clips: dict[str, Clip] = {}
        self.captions: dict[str, list[str]] = {}  # the synthetic captioning clips' reference captions

    def add(self, wave: np.ndarray, key: str, events: Sequence[dict], captions: Sequence[str] = ()) -> Clip:
        clip = Clip(np.asarray(wave, np.float32), key)
        self.clips[clip.sha], self.events[clip.sha] = clip, list(events)
        if captions:
            self.captions[clip.sha] = list(captions)
        return clip

    def text(self, clip: Clip) -> str:
        return f"{AUDIO_WORD} {describe(self.events[clip.sha])}"

    def by_kind(self) -> dict[str, list[Clip]]:
        """The clips of one event, by its kind (few-shot episodes are made of them)."""
        out: dict[str, list[Clip]] = {}
        for sha, events in self.events.items():
            if len(events) == 1:
                out.setdefault(events[0]["kind"], []).append(self.clips[sha])
        return out


# -- examples ------------------------------------------------------------------------------------
def _listed(rng: np.random.Generator, kinds: Sequence[str]) -> str:
    """Kinds as a list in a random order: a set, so no kind is favoured by coming first."""
    return ", ".join(kinds[i] for i in rng.permutation(len(kinds)))


def _kinds_answer(rng: np.random.Generator, events: Sequence[dict]) -> str:
    """The kinds present, listed (``_listed``)."""
    return _listed(rng, list(dict.fromkeys(e["kind"] for e in events)))


def single_examples(recipe: Recipe, clips: Clips, rng: np.random.Generator) -> list[Example]:
    """Stage 1: every single-clip skill, each under the paper's prompt and the suite's."""
    examples = []
    for name in ("events", "tagging", "count", "captions"):
        for index in range(min(recipe.items, synth.DATASETS[name]["train"])):
            (wave,), record = synth.render_item(name, "train", index)
            events = record["events"]
            clip = clips.add(wave, record["id"], events, record.get("captions", ()))
            for prompt in (SOUND_OF, SUITE_SOUND_OF, KEY_WORDS, SUITE_METADATA):
                examples.append(Example((clip, prompt), _kinds_answer(rng, events)))
            captions = record.get("captions") or (synth.make_captions(rng, [_event(e) for e in events], 2)
                                                  if len(events) <= 2 else [])  # the grammar has one or two events
            for prompt in (DESCRIBE, SUITE_CAPTION) if captions else ():
                examples.append(Example((clip, prompt), captions[int(rng.integers(len(captions)))]))
            e = events[int(rng.integers(len(events)))]
            examples.append(Example((clip, QUESTION.format(question=WHEN.format(kind=e["kind"]))), e["position"]))
            question = record.get("question") or synth.count_question(rng, e["kind"])
            examples.append(Example((clip, QUESTION.format(question=question)), str(e["count"])))
    return examples


def _event(record: dict) -> synth.Event:
    fields = {f.name for f in dataclasses.fields(synth.Event)}
    return synth.Event(**{k: (tuple(v) if k == "onsets" else v) for k, v in record.items() if k in fields},
                       f0=0.0, level_db=0.0)


def multi_examples(recipe: Recipe, clips: Clips, rng: np.random.Generator) -> list[Example]:
    """Stage 2: two-clip questions and few-shot episodes (5-way 1-shot; names or non-words)."""
    examples = []
    for name in ("compare", "order"):
        for index in range(min(recipe.items, synth.DATASETS[name]["train"])):
            (a, b), record = synth.render_item(name, "train", index)
            pair = tuple(clips.add(w, f"{record['id']}{s}", c) for w, s, c in zip((a, b), "ab", record["clips"]))
            examples.append(Example(pair + (QUESTION.format(question=record["question"]),), record["answer"]))
    by_kind = clips.by_kind()
    available = sorted(by_kind)
    for _ in range(3 * recipe.items):
        kinds = [available[i] for i in rng.choice(len(available), 5, replace=False)]
        words = synth.nonce_words(rng, 5) if rng.random() < 0.7 else kinds
        prompt = SOUND_OF if rng.random() < 0.5 else SUITE_SOUND_OF
        content: tuple = ()
        for i in rng.permutation(5):  # as the few-shot method lays an episode out: each clip, then its label
            content += (by_kind[kinds[i]][int(rng.integers(len(by_kind[kinds[i]])))], words[i])
        target = int(rng.integers(5))
        query = by_kind[kinds[target]][int(rng.integers(len(by_kind[kinds[target]])))]
        examples.append(Example(content + (query, prompt), words[target], nonce=words != kinds))
    return examples


def raft_examples(recipe: Recipe, clips: Clips, pooled: torch.Tensor, row_of: dict[str, int],
                  rng: np.random.Generator) -> list[Example]:
    """Stage 3, RAFT (the retrieval-augmented captioning paper): captioning with ``raft_k`` retrieved
    (clip, caption) pairs in context, laid out exactly as the ``rag`` wrapper lays them out for an
    interleaved model; retrieved by audio (cosine of the frozen encoder's pooled embeddings over the
    captioning clips), never the clip itself."""
    from ..rag.context import Layout

    layout = Layout(interleaved=True)
    shas = list(clips.captions)
    vectors = F.normalize(pooled[[row_of[s] for s in shas]].float(), dim=-1)
    similarity = vectors @ vectors.T
    similarity.fill_diagonal_(-2.0)
    nearest = similarity.topk(recipe.raft_k, dim=1).indices.tolist()
    examples = []
    for sha, found in zip(shas, nearest):
        pairs = [(clips.clips[shas[j]], clips.captions[shas[j]][int(rng.integers(5))]) for j in found]
        request = layout.request(clips.clips[sha], DESCRIBE, pairs)
        examples.append(Example(request.content, clips.captions[sha][int(rng.integers(5))]))
    return examples


def as_text(example: Example, clips: Clips) -> tuple[str, ...]:
    """The example with each clip written as words: the parts the language model reads, then the answer."""
    return tuple(clips.text(c) if isinstance(c, Clip) else c for c in example.content) + (example.answer,)


# -- stages --------------------------------------------------------------------------------------
def _adam(params, lr: float):
    return torch.optim.AdamW([p for p in params if p.requires_grad], lr=lr, weight_decay=0.01)


def _schedule(optimizer, steps: int):
    """Linear warm-up over the first 5% of steps, then cosine decay to 10%."""
    warm = max(1, steps // 20)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.1 + 0.45 * (1 + np.cos(np.pi * (step - warm) / max(1, steps - warm)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _fit(name: str, params, steps: int, n: int, lr: float, recipe: Recipe, rng: np.random.Generator, loss_of) -> list[float]:
    """The one training loop: ``loss_of(rows)`` on seeded random batches; a line of progress every 10%."""
    optimizer = _adam(params, lr)
    schedule, losses, start = _schedule(optimizer, steps), [], time.perf_counter()
    for step in range(steps):
        loss = loss_of(rng.choice(n, size=min(recipe.batch_size, n), replace=False))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], 1.0)
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if (step + 1) % max(1, steps // 10) == 0:
            print(f"  {name} {step + 1}/{steps}: loss {np.mean(losses[-50:]):.3f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    return losses


def text_ids(tokenizer, parts: Sequence[str]) -> tuple[list[int], int]:
    """Token ids of ``[BOS] part ... answer [EOS]`` tokenised piece by piece as the model does (each part
    starting a word, ``word_start``), and where the answer starts."""
    ids, start = [tokenizer.bos_token_id], word_start(tokenizer)
    for part in parts[:-1]:
        ids += tokenizer(start + part.strip(), add_special_tokens=False)["input_ids"] if part.strip() else []
    answer = tokenizer(" " + parts[-1].strip(), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return ids + answer, len(ids)


def language_model(tokenizer, recipe: Recipe, heads: int = 4):
    """A fresh small Llama-style decoder over ``tokenizer`` (input and output embeddings tied)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=recipe.lm_width, intermediate_size=4 * recipe.lm_width,
        num_hidden_layers=recipe.lm_layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=512, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id, tie_word_embeddings=True))


def copy_lesson(vocab: int, rng: np.random.Generator, length: int = 96) -> tuple[list[int], list[int]]:
    """Token ids and labels of ``length + 1`` random tokens (any of the first ``vocab``) in which a chunk of 4
    to ``length / 2`` tokens repeats at once, from a random place; the loss is on the repeat's tokens after
    its first.  Only matching on content predicts them (an induction head: find the current token earlier,
    say what followed it), the circuit that copies a label from a few-shot episode.  A small model does
    not find that circuit in text alone (``bench/recall_toy.py``); on copies it forms in about 1,250
    steps, and then carries over to labels at once."""
    ids = [int(t) for t in rng.integers(0, vocab, length + 1)]
    n = int(rng.integers(4, length // 2 + 1))
    start = int(rng.integers(1, length + 2 - 2 * n))
    ids[start + n:start + 2 * n] = ids[start:start + n]
    labels = [-100] * len(ids)
    labels[start + n + 1:start + 2 * n] = ids[start + n + 1:start + 2 * n]
    return ids, labels


def recall_lesson(tokenizer, rng: np.random.Generator, pairs: int = 12, ways: int = 5,
                  names: float = 0.3) -> tuple[list[int], list[int]]:
    """Token ids and labels of one dense lesson in reading labels from context, laid out as a few-shot
    episode is: ``pairs`` clips over ``ways`` kinds, each written ``<audio> KIND``; a kind's first clip
    (support) is followed by its label, and each later one either the same way or, half the time, by the
    prompt and then the label (a query).  Labels are non-words drawn for the lesson or (``names`` of the
    lessons) the kinds' names; the loss is on every label the context determines.  A few-shot episode
    has one query; this is the dense signal with which the 2-layer model learns to find the label by
    the query's clip five tokens back (``bench/recall_toy.py --support-prompt 0``)."""
    kinds = [synth.EVENT_LABELS[i] for i in rng.choice(len(synth.EVENT_LABELS), ways, replace=False)]
    named = rng.random() < names
    words = kinds if named else synth.nonce_words(rng, ways)
    start = word_start(tokenizer)
    ids, labels, seen = [tokenizer.bos_token_id], [-100], set()
    for _ in range(pairs):
        k = int(rng.integers(ways))
        asked = k in seen and rng.random() < 0.5
        prompt = (SOUND_OF if rng.random() < 0.5 else SUITE_SOUND_OF) if asked else ""
        context = tokenizer(f"{start}{AUDIO_WORD} {kinds[k]}{' ' + prompt if prompt else ''}",
                            add_special_tokens=False)["input_ids"]
        word = tokenizer(" " + words[k], add_special_tokens=False)["input_ids"]
        ids += context + word
        labels += [-100] * len(context) + (word if named or k in seen else [-100] * len(word))
        seen.add(k)
    return ids, labels


def lm_loss(lm, tokenizer, sequences: Sequence[tuple[list[int], list[int]]]) -> torch.Tensor:
    """Next-token loss over padded (ids, labels) pairs."""
    ids = torch.nn.utils.rnn.pad_sequence([torch.tensor(i) for i, _ in sequences], batch_first=True,
                                          padding_value=tokenizer.pad_token_id)
    labels = torch.nn.utils.rnn.pad_sequence([torch.tensor(l) for _, l in sequences], batch_first=True,
                                             padding_value=-100)
    mask = torch.nn.utils.rnn.pad_sequence([torch.ones(len(i), dtype=torch.long) for i, _ in sequences],
                                           batch_first=True)
    return lm(input_ids=ids, attention_mask=mask, labels=labels).loss


def lm_batch(tokenizer, examples: Sequence[Example], clips: Clips, rows,
             rng: np.random.Generator) -> list[tuple[list[int], list[int]]]:
    """One pretraining batch: the examples at ``rows`` as text, the loss on their answers (instruction
    tuning's loss: the inputs are given, never predicted)."""
    batch = []
    for i in rows:
        ids, answer_start = text_ids(tokenizer, as_text(fresh(examples[i], rng), clips))
        batch.append((ids, [-100] * answer_start + ids[answer_start:]))
    return batch


def lm_step_loss(lm, tokenizer, examples: Sequence[Example], clips: Clips, recipe: Recipe, rng: np.random.Generator):
    """The language model stage's ``loss_of(rows)``: copy lessons for the first ``lm_copy_steps`` steps,
    then the examples written as text (``lm_batch``) with ``lm_copy_share`` of each batch copy lessons
    (without them the head is gone by the end: 0.03 of copies guessed) and ``lm_recall_share`` recall
    lessons (without them non-word few-shot stays at chance)."""
    step = 0

    def loss_of(rows) -> torch.Tensor:
        nonlocal step
        step += 1
        copying = step <= recipe.lm_copy_steps
        copies = len(rows) if copying else int(round(recipe.lm_copy_share * len(rows)))
        recalls = 0 if copying else int(round(recipe.lm_recall_share * len(rows)))
        batch = lm_batch(tokenizer, examples, clips, rows[copies + recalls:], rng)
        batch += [recall_lesson(tokenizer, rng) for _ in range(recalls)]
        # any token but the last, <|endoftext|>
        return lm_loss(lm, tokenizer, batch + [copy_lesson(len(tokenizer) - 1, rng) for _ in range(copies)])
    return loss_of


def pretrain_lm(tokenizer, examples: Sequence[Example], clips: Clips, recipe: Recipe, rng: np.random.Generator):
    """A small Llama-style causal LM trained on copies, then on the examples written as text
    (``lm_step_loss``), returned frozen."""
    lm = language_model(tokenizer, recipe)
    losses = _fit("lm", lm.parameters(), recipe.lm_copy_steps + recipe.lm_steps, len(examples),
                  recipe.lm_learning_rate, recipe, rng, lm_step_loss(lm, tokenizer, examples, clips, recipe, rng))
    return lm.eval().requires_grad_(False), losses


_ATTRIBUTES = {"loudness": ("quiet", "loud"), "pitch": ("low", "high"), "position": synth.POSITIONS,
               "count": (1, 2, 3, 4)}
ENCODER_OUTPUTS = len(synth.EVENT_LABELS) * (1 + sum(len(v) for v in _ATTRIBUTES.values()))


def encoder_targets(events: Sequence[dict]) -> tuple[torch.Tensor, list[tuple[int, int, int]]]:
    """Multi-hot kinds, and (kind, attribute offset, class) for each attribute of each present kind."""
    kinds = torch.zeros(len(synth.EVENT_LABELS))
    attributes = []
    for e in events:
        k = synth.EVENT_LABELS.index(e["kind"])
        kinds[k] = 1
        offset = 0
        for name, values in _ATTRIBUTES.items():
            if e[name] is not None:
                attributes.append((k, offset, offset + values.index(e[name])))
            offset += len(values)
    return kinds, attributes


def pretrain_encoder(model, clips: Clips, fbanks: torch.Tensor, recipe: Recipe, rng: np.random.Generator) -> list[float]:
    """Tell the kinds and each kind's attributes through the ViT's head, then freeze the encoder."""
    vit = model.network.audio_encoder.model.requires_grad_(True).train()
    n_kinds, width = len(synth.EVENT_LABELS), ENCODER_OUTPUTS // len(synth.EVENT_LABELS) - 1
    targets = [encoder_targets(events) for events in clips.events.values()]
    groups = [(o, o + len(v)) for o, v in zip(np.cumsum([0, *[len(v) for v in _ATTRIBUTES.values()]]), _ATTRIBUTES.values())]

    def loss_of(rows):
        _, pooled = vit(fbanks[rows])
        logits = vit.head(pooled)
        loss = F.binary_cross_entropy_with_logits(logits[:, :n_kinds], torch.stack([targets[i][0] for i in rows]))
        attribute_logits = logits[:, n_kinds:].view(len(rows), n_kinds, width)
        picked, labels = [], []
        for b, i in enumerate(rows):
            for kind, _, cls in targets[i][1]:
                start, end = next(g for g in groups if g[0] <= cls < g[1])
                picked.append(F.pad(attribute_logits[b, kind, start:end], (0, 4 - (end - start)), value=-1e4))
                labels.append(cls - start)
        return loss + F.cross_entropy(torch.stack(picked), torch.tensor(labels))

    losses = _fit("encoder", vit.parameters(), recipe.encoder_steps, len(fbanks), recipe.learning_rate, recipe, rng, loss_of)
    vit.eval().requires_grad_(False)
    return losses


class AlignmentTexts:
    """Per clip, the texts stage 0 aligns it with, each with what it claims of a clip: its description and
    reference captions claim the scene (relevant to clips with the same description); its kinds as a list
    claim exactly those kinds; one kind's name claims that kind is present.  Aligned this way, the text
    side also embeds answers and class names near each other (the paper matches generated answers to class
    names with this text encoder)."""

    def __init__(self, clips: Clips) -> None:
        self.scenes = [describe(events) for events in clips.events.values()]
        self.kinds = [frozenset(e["kind"] for e in events) for events in clips.events.values()]
        self.captions = [clips.captions.get(sha, []) for sha in clips.events]

    def draw(self, row: int, rng: np.random.Generator) -> tuple[str, str, frozenset]:
        """(text, claim, kinds): claim is 'scene', 'kinds' or 'kind'."""
        kinds = sorted(self.kinds[row])
        choice = int(rng.integers(4))
        if choice == 0 or (choice == 1 and not self.captions[row]):
            return self.scenes[row], "scene", self.kinds[row]
        if choice == 1:
            return self.captions[row][int(rng.integers(len(self.captions[row])))], "scene", self.kinds[row]
        if choice == 2:
            return _listed(rng, kinds), "kinds", self.kinds[row]
        kind = kinds[int(rng.integers(len(kinds)))]
        return kind, "kind", frozenset([kind])

    def relevance(self, rows: Sequence[int], drawn: Sequence[tuple[str, str, frozenset]]) -> torch.Tensor:
        """[clips, texts]: 1 where the text is true of the clip."""
        def true_of(row: int, claim: str, kinds: frozenset, source: int) -> bool:
            if claim == "scene":
                return self.scenes[row] == self.scenes[source]
            return kinds == self.kinds[row] if claim == "kinds" else kinds <= self.kinds[row]
        return torch.tensor([[true_of(i, claim, kinds, j) for j, (_, claim, kinds) in zip(rows, drawn)] for i in rows],
                            dtype=torch.float)


def alignment_loss(model, texts: AlignmentTexts, patches: torch.Tensor, rows, rng: np.random.Generator) -> torch.Tensor:
    """Stage 0's audio-text contrastive loss (the paper's ATC, unimodal masks): mean query output (queries
    reading no text) against the Q-Former's text embedding, both directions, every true pair a positive."""
    net, tok = model.network, model.qformer_tokenizer
    empty = tok([""], return_tensors="pt")
    audio = net.ln_audio(patches[rows].float())
    queries = net.queries(audio, empty["input_ids"], empty["attention_mask"])
    queries = queries.view(len(rows), -1, queries.shape[-1]).mean(1)
    drawn = [texts.draw(int(row), rng) for row in rows]
    enc = tok([text for text, _, _ in drawn], padding=True, return_tensors="pt")
    text = net.text_embedding(enc["input_ids"], enc["attention_mask"])
    logits = F.normalize(queries, dim=-1) @ F.normalize(text, dim=-1).T / 0.07
    true = texts.relevance(rows, drawn)
    audio_to_text = -(F.log_softmax(logits, 1) * true / true.sum(1, keepdim=True)).sum(1).mean()
    text_to_audio = -(F.log_softmax(logits, 0) * true / true.sum(0, keepdim=True)).sum(0).mean()
    return (audio_to_text + text_to_audio) / 2


def align(model, texts: AlignmentTexts, patches: torch.Tensor, recipe: Recipe, rng: np.random.Generator) -> list[float]:
    """Stage 0: the aligner (Q-Former and queries) learns audio-text contrast alone."""
    net = model.network
    params = [*net.qformer.parameters(), net.query_tokens, *net.ln_audio.parameters()]
    return _fit("align", params, recipe.align_steps, len(patches), recipe.learning_rate, recipe, rng,
                lambda rows: alignment_loss(model, texts, patches, rows, rng))


def answer_loss(model, batch: Sequence[Example], patches: torch.Tensor, row_of: dict[str, int]) -> torch.Tensor:
    """Next-token loss on each answer (then eos) after its interleaved input, built as ``AptModel._sequence``
    builds it (each clip's queries read the text after it), with every clip's Q-Former pass in one batch."""
    net, tok = model.network, model.qformer_tokenizer
    slots = [(b, i) for b, ex in enumerate(batch) for i, c in enumerate(ex.content) if isinstance(c, Clip)]
    following = []
    for b, i in slots:
        content = batch[b].content
        following.append(content[i + 1] if i + 1 < len(content) and isinstance(content[i + 1], str) else "")
    enc = tok(following, padding=True, truncation=True, max_length=model.cfg.max_text_tokens, return_tensors="pt")
    audio = net.ln_audio(patches[[row_of[batch[b].content[i].sha] for b, i in slots]].float())
    queries = net.queries(audio, enc["input_ids"], enc["attention_mask"]).view(len(slots), -1, net.query_tokens.shape[-1])
    tokens = torch.cat((net.audio_indicator_token.expand(len(slots), -1, -1), net.llm_proj(queries)), dim=1)
    slot_of = {slot: n for n, slot in enumerate(slots)}
    inputs, targets = [], []
    for b, example in enumerate(batch):
        parts = [model._embed_ids([model.bos_id])]
        for i, item in enumerate(example.content):
            if isinstance(item, Clip):
                parts.append(tokens[slot_of[(b, i)]])
            elif item:
                parts.append(model._embed_ids(model._llm_ids(item)))
        prefix = torch.cat(parts)
        ids = model.candidate_tokens(example.answer)
        inputs.append(torch.cat((prefix, model._embed_ids(ids[:-1]))))
        targets.append(torch.tensor([-100] * (len(prefix) - 1) + ids))
    embeds = torch.nn.utils.rnn.pad_sequence(inputs, batch_first=True)
    mask = torch.nn.utils.rnn.pad_sequence([torch.ones(len(x), dtype=torch.long) for x in inputs], batch_first=True)
    labels = torch.nn.utils.rnn.pad_sequence(targets, batch_first=True, padding_value=-100)
    logits = model.llm(inputs_embeds=embeds, attention_mask=mask).logits
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)


def instruct(name: str, model, examples: Sequence[Example], steps: int, patches: torch.Tensor, row_of: dict,
             texts: AlignmentTexts, recipe: Recipe, rng: np.random.Generator) -> list[float]:
    """Stages 1 to 3: the aligner, projection and audio-indicator token learn; the LM and encoder stay frozen.
    Stage 0's contrast goes on beside the answers (half a batch a step), or the shared Q-Former layers
    would carry the text side away from the alignment the text encoder relies on."""
    net = model.network
    params = [*net.qformer.parameters(), net.query_tokens, *net.ln_audio.parameters(), *net.llm_proj.parameters(),
              net.audio_indicator_token]
    half = max(2, recipe.batch_size // 2)

    def loss_of(rows):
        answers = answer_loss(model, [fresh(examples[i], rng) for i in rows], patches, row_of)
        return answers + alignment_loss(model, texts, patches, rng.choice(len(patches), half, replace=False), rng)
    return _fit(name, params, steps, len(examples), recipe.learning_rate, recipe, rng, loss_of)


# -- the run -------------------------------------------------------------------------------------
def _stage(name: str, seconds: dict, function, *args):
    start = time.perf_counter()
    print(f"{name}...", flush=True)
    out = function(*args)
    seconds[name] = round(time.perf_counter() - start, 1)
    return out


def lm_corpus(recipe: Recipe, clips: Clips, single: list[Example], multi: list[Example]) -> tuple[object, list[Example]]:
    """The language model's tokenizer (a BPE of every text of the curriculum) and its pretraining examples."""
    texts = [" ".join(as_text(e, clips)) for e in single + multi] + [SOUND_OF, DESCRIBE, KEY_WORDS, *synth.EVENT_LABELS]
    tokenizer = bpe.train_tokenizer(texts, CONFIGS[recipe.config].qformer.vocab_size, specials=(AUDIO_WORD,))
    tokenizer.pad_token = tokenizer.eos_token  # padding is always masked out
    # several-clip texts repeated to two thirds of the corpus: reading labels from context is the skill
    # that takes the language model longest to learn (answering from one description is quickly learnt)
    repeats = max(1, round(2 * len(single) / max(1, len(multi))))
    return tokenizer, single + multi * repeats


def train(recipe: Recipe, output: Path) -> dict:
    from .model import AptModel

    start, seconds = time.perf_counter(), {}
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    clips = Clips()
    single = _stage("render", seconds, single_examples, recipe, clips, rng)
    multi = _stage("render-multi", seconds, multi_examples, recipe, clips, rng)
    tokenizer, corpus = lm_corpus(recipe, clips, single, multi)
    lm, lm_losses = _stage("lm", seconds, pretrain_lm, tokenizer, corpus, clips, recipe, rng)
    output.mkdir(parents=True, exist_ok=True)
    lm.save_pretrained(output / "llm")
    tokenizer.save_pretrained(output / "llm")
    model = AptModel(checkpoint="random", llm=str(output / "llm"), config=recipe.config, qformer_tokenizer="llm",
                     seed=recipe.seed)
    net = model.network
    with torch.no_grad():  # <AUDIO> starts as the word that stood for a clip in pretraining
        net.audio_indicator_token[0, 0] = lm.get_input_embeddings().weight[tokenizer.convert_tokens_to_ids(AUDIO_WORD)]
    shas = list(clips.clips)
    row_of = {sha: row for row, sha in enumerate(shas)}
    fbanks = _stage("fbank", seconds, lambda: torch.cat([net.audio_encoder.fbank_segments(
        torch.from_numpy(clips.clips[s].waveform)) for s in shas]))
    losses = {"lm": lm_losses, "encoder": _stage("encoder", seconds, pretrain_encoder, model, clips, fbanks, recipe, rng)}
    with torch.no_grad():
        encoded = [net.audio_encoder.model(fbanks[i : i + 256]) for i in range(0, len(fbanks), 256)]
        patches, pooled = torch.cat([p for p, _ in encoded]), torch.cat([q for _, q in encoded])
    net.train()
    alignment = AlignmentTexts(clips)
    losses["align"] = _stage("align", seconds, align, model, alignment, patches, recipe, rng)
    losses["single"] = _stage("single", seconds, instruct, "single", model, single, recipe.single_steps, patches,
                              row_of, alignment, recipe, rng)
    mixed = multi + [single[i] for i in rng.choice(len(single), len(multi) // 3, replace=False)]
    losses["multi"] = _stage("multi", seconds, instruct, "multi", model, mixed, recipe.multi_steps, patches, row_of,
                             alignment, recipe, rng)
    raft = raft_examples(recipe, clips, pooled, row_of, rng)
    raft += [mixed[i] for i in rng.choice(len(mixed), len(raft), replace=False)]  # the other skills stay
    losses["raft"] = _stage("raft", seconds, instruct, "raft", model, raft, recipe.raft_steps, patches, row_of,
                            alignment, recipe, rng)
    net.eval()
    record = {"command": command(recipe, output), "recipe": dataclasses.asdict(recipe),
              "examples": {"single": len(single), "multi": len(multi), "lm_corpus": len(corpus)},
              "stages": {k: {"steps": len(v), "first_loss": v[0] if v else None,
                             "last_loss": float(np.mean(v[-50:])) if v else None,
                             "curve": [round(float(np.mean(v[i : i + max(1, len(v) // 20)])), 4)
                                       for i in range(0, len(v), max(1, len(v) // 20))]}
                         for k, v in losses.items()},
              "stage_seconds": seconds, "seconds": round(time.perf_counter() - start, 1), "torch": torch.__version__,
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
