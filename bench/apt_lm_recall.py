"""Does apt-tiny's language model learn to read a label from its context?  Its pretraining alone, no audio.

    python bench/apt_lm_recall.py [--lm-steps 4000] [--lm-copy-steps 1500] [--lm-recall-share 0.25] [--eval-every 500]
    python bench/apt_lm_recall.py --evaluate plugins/apt/weights/tiny/llm

APT's few-shot learner needs its frozen language model to copy a label from the episode: after
``<clip A> zugam ... <clip A'> this is a sound of`` it must say ``zugam``.  This runs apt-tiny's
language-model stage exactly as ``training`` runs it (same copy and recall lessons, corpus, tokenizer and
batches, for any ``Recipe`` field given as an option) and every ``--eval-every`` steps reports the accuracy on
100 held-out 5-way 1-shot non-word episodes written as the language model reads them in pretraining
(each word scored by its log-likelihood; chance 0.2), and how often its top guess is a repeated token
on 50 fresh copy lessons (the induction head), and the accuracy on 100 counting questions answered from
the clip's words (a skill the copy lessons must not cost; chance 0.25).  ``--evaluate DIR`` measures a saved
language model (the shipped one) instead of training one.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch

from alm_bench_plugins.apt import training as T
from alm_bench_plugins.apt.llm import shared_prefix_scores

HELD_OUT = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in dataclasses.fields(T.Recipe):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--evaluate", metavar="DIR", help="measure this saved language model; train none")
    args = parser.parse_args()
    torch.set_num_threads(1)
    recipe = T.Recipe(**{f.name: getattr(args, f.name) for f in dataclasses.fields(T.Recipe)})
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    clips = T.Clips()
    single = T.single_examples(recipe, clips, rng)
    multi = T.multi_examples(recipe, clips, rng)
    held_out = [e for e in multi if e.nonce][-HELD_OUT:]
    counting = [e for e in single if e.content[-1].startswith("question: how many")][:HELD_OUT]
    if args.evaluate:  # the saved model's own tokenizer: no corpus to build
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.evaluate)
        lm = AutoModelForCausalLM.from_pretrained(args.evaluate)
    else:
        tokenizer, corpus = T.lm_corpus(recipe, clips, single, multi)
        lm = T.language_model(tokenizer, recipe)

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    def chosen(example, candidates: list[list[int]]) -> int:
        """The index of the candidate continuation the model finds likeliest after the example's input."""
        sequence, start = T.text_ids(tokenizer, T.as_text(example, clips))
        prefix = lm.get_input_embeddings()(torch.tensor([sequence[:start]]))
        return int(shared_prefix_scores(lm, prefix, candidates).argmax())

    def accuracy() -> float:
        correct, episodes = 0, np.random.default_rng(123)
        for example in held_out:
            example = T.fresh(example, episodes)
            words = list(example.content[1:-2:2])
            # each word's tokens, not the eos after it: a recall sequence never ends a label
            correct += words[chosen(example, [ids(" " + word) for word in words])] == example.answer
        return correct / len(held_out)

    def counted() -> float:
        """Counting questions answered from the clip's words (a skill the copy lessons must not cost)."""
        numbers = [ids(f" {n}") + [tokenizer.eos_token_id] for n in "1234"]
        return sum("1234"[chosen(e, numbers)] == e.answer for e in counting) / len(counting)

    def copied() -> float:
        """On 50 fresh copy lessons, the share of repeated tokens that are the model's top guess."""
        hits = []
        for i in range(50):
            tokens, labels = T.copy_lesson(len(tokenizer) - 1, np.random.default_rng([7, i]))
            guess = lm(torch.tensor([tokens])).logits[0].argmax(-1)
            hits += [int(guess[j - 1]) == labels[j] for j in range(1, len(labels)) if labels[j] != -100]
        return float(np.mean(hits))

    def report(when: str) -> None:
        lm.eval()
        with torch.no_grad():
            print(f"  {when}: held-out 1-shot non-word accuracy {accuracy():.2f} (chance 0.20); "
                  f"{copied():.2f} of copy lessons' repeated tokens guessed; counting {counted():.2f}", flush=True)
        lm.train()

    if args.evaluate:
        return report(args.evaluate)
    step, stage_loss = 0, T.lm_step_loss(lm, tokenizer, corpus, clips, recipe, rng)

    def loss_of(rows):
        nonlocal step
        step += 1
        if step % args.eval_every == 0:
            report(f"step {step}")
        return stage_loss(rows)

    start, steps = time.perf_counter(), recipe.lm_copy_steps + recipe.lm_steps
    T._fit("lm", lm.parameters(), steps, len(corpus), recipe.lm_learning_rate, recipe, rng, loss_of)
    report(f"after {steps} steps ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
