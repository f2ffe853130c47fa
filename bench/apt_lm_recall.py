"""Can apt-tiny's language model learn to read a label from its context?  Text only, no audio.

    python bench/apt_lm_recall.py [--steps 3000] [--layers 2] [--heads 4] [--kind-only] [--prompt TEXT]

APT's few-shot learner needs its frozen language model to copy a label from the episode: after
``<clip A> this is a sound of zugam ... <clip A'> this is a sound of`` it must say ``zugam``.  This
trains a language model of apt-tiny's kind (``training.pretrain_lm``'s configuration) on the densest
signal for that skill, "multi-query associative recall": sequences of 12 (clip as words, label) pairs
over 5 kinds with non-words drawn afresh for every sequence, the loss on every label whose kind came
before.  Every ``--eval-every`` steps it reports the accuracy on 100 held-out 5-way 1-shot non-word
episodes, written as apt-tiny's language model reads them in pretraining (each label scored by its
log-likelihood; chance 0.2), and, on fresh recall sequences, how often its top guess is a repeated
label's first token (choosing the word: needs the clip matched) and a later token (finishing it).  ``--kind-only`` writes a one-event clip as its kind alone (``<audio> beep``),
the easiest key to match; ``--prompt ''`` puts each label right after its clip (plain induction: copy
what followed the last time this token came).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from alm_bench import synth
from alm_bench_plugins import bpe
from alm_bench_plugins.apt import training as T
from alm_bench_plugins.apt.config import CONFIGS
from alm_bench_plugins.apt.llm import shared_prefix_scores

WAYS, HELD_OUT = 5, 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--layers", type=int, default=T.Recipe.lm_layers)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--lr", type=float, default=T.Recipe.lm_learning_rate)
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--kind-only", action="store_true")
    parser.add_argument("--prompt", default=None,
                        help="the text between a clip and its label, in training and held-out episodes alike "
                             "(default: the task's 'this is a sound of'; '' puts the label right after the clip)")
    parser.add_argument("--eval-every", type=int, default=500)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    recipe = T.Recipe(lm_steps=args.steps, lm_layers=args.layers, lm_learning_rate=args.lr)
    clips = T.Clips()
    single = T.single_examples(recipe, clips, rng)
    multi = T.multi_examples(recipe, clips, rng)
    if args.kind_only:
        described = clips.text
        clips.text = lambda c: (f"{T.AUDIO_WORD} {clips.events[c.sha][0]['kind']}" if len(clips.events[c.sha]) == 1
                                else described(c))
    texts = [" ".join(T.as_text(e, clips)) for e in single + multi] + [T.SOUND_OF, *synth.EVENT_LABELS]
    tokenizer = bpe.train_tokenizer(texts, CONFIGS[recipe.config].qformer.vocab_size, specials=(T.AUDIO_WORD,))
    tokenizer.pad_token = tokenizer.eos_token
    by_kind = clips.by_kind()
    kinds = sorted(by_kind)
    held_out = [e for e in multi if e.nonce][-HELD_OUT:]

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    def recall_sequence(rng: np.random.Generator) -> tuple[list[int], list[int], list[int]]:
        """Token ids, labels (-100 but on repeated labels) and the positions of those labels' first tokens."""
        chosen = [kinds[i] for i in rng.choice(len(kinds), WAYS, replace=False)]
        words, prompt = synth.nonce_words(rng, WAYS), T.SOUND_OF if rng.random() < 0.5 else T.SUITE_SOUND_OF
        prompt = prompt if args.prompt is None else args.prompt
        tokens, labels, seen, firsts = [tokenizer.bos_token_id], [-100], set(), []
        for _ in range(args.pairs):
            k = int(rng.integers(WAYS))
            clip = by_kind[chosen[k]][int(rng.integers(len(by_kind[chosen[k]])))]
            context, word = ids(clips.text(clip)) + ids(prompt), ids(" " + words[k])
            if k in seen:
                firsts.append(len(tokens) + len(context))
            tokens += context + word
            labels += [-100] * len(context) + (word if k in seen else [-100] * len(word))
            seen.add(k)
        return tokens, labels, firsts

    lm = T.language_model(tokenizer, recipe, heads=args.heads)

    def accuracy() -> float:
        lm.eval()
        correct, episodes = 0, np.random.default_rng(123)
        for example in held_out:
            example = T.fresh(example, episodes)
            parts = T.as_text(example, clips)
            words = [part[len(example.content[-1]) + 1:] for part in example.content[1:-2:2]]
            if args.prompt is not None:  # the same episode with the other text between clips and labels
                parts = tuple(f"{args.prompt} {words[i // 2]}" if i % 2 else part
                              for i, part in enumerate(parts[:-3])) + (parts[-3], args.prompt, parts[-1])
            sequence, start = T.text_ids(tokenizer, parts)
            prefix = lm.get_input_embeddings()(torch.tensor([sequence[:start]]))
            # each word's tokens, not the eos after it: a recall sequence never ends a label
            with torch.no_grad():
                scores = shared_prefix_scores(lm, prefix, [ids(" " + word) for word in words])
            correct += words[int(scores.argmax())] == example.answer
        lm.train()
        return correct / len(held_out)

    def copied() -> tuple[float, float]:
        """On 50 fresh recall sequences, the share of repeated labels' first tokens and of their later
        tokens that are the model's top guess: choosing the word, and finishing it."""
        lm.eval()
        hits = {True: [], False: []}
        for tokens, labels, firsts in (recall_sequence(np.random.default_rng([7, i])) for i in range(50)):
            with torch.no_grad():
                guess = lm(torch.tensor([tokens])).logits[0].argmax(-1)
            for i, label in enumerate(labels):
                if label != -100:
                    hits[i in firsts].append(int(guess[i - 1]) == label)
        lm.train()
        return float(np.mean(hits[True])), float(np.mean(hits[False]))

    def report(when: str) -> None:
        first, later = copied()
        print(f"  {when}: held-out 1-shot non-word accuracy {accuracy():.2f} (chance 0.20); in recall sequences "
              f"{first:.2f} of first tokens and {later:.2f} of later tokens guessed", flush=True)

    step = 0

    def loss_of(rows):
        nonlocal step
        step += 1
        if step % args.eval_every == 0:
            report(f"step {step}")
        batch = [recall_sequence(rng) for _ in rows]
        tokens = torch.nn.utils.rnn.pad_sequence([torch.tensor(t) for t, _, _ in batch], batch_first=True)
        labels = torch.nn.utils.rnn.pad_sequence([torch.tensor(l) for _, l, _ in batch], batch_first=True,
                                                 padding_value=-100)
        mask = torch.nn.utils.rnn.pad_sequence([torch.ones(len(t), dtype=torch.long) for t, _, _ in batch],
                                               batch_first=True)
        return lm(input_ids=tokens, attention_mask=mask, labels=labels).loss

    start = time.perf_counter()
    T._fit("recall", lm.parameters(), args.steps, recipe.batch_size, args.lr, recipe, rng, loss_of)
    report(f"after {args.steps} steps ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
