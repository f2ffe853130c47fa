"""When does a 2-layer language model learn to copy the label of a matching key from its context?

    python bench/recall_toy.py [--first-tokens 100] [--shuffled 0.0] [--named 0.3] [--prompt 5] [--steps 3000]
    python bench/recall_toy.py --copy 1500 [--grow 300] [--layers 2] [--steps 3000]
    python bench/recall_toy.py --copy 1500 --support-prompt 0 [--after-copy /tmp/copied.pt] [--steps 2500]

The controlled version of apt-tiny's non-word few-shot problem (``bench/apt_lm_recall.py`` is the real
one): apt-tiny's language model shape (2 layers, 128-d, 4 heads, Llama-style) trained from scratch on
multi-query associative recall over integer tokens.  A lesson is 12 pairs ``KEY P1 P2 P3 P4 P5 V1 V2``
over 5 of 10 keys, a 5-token prompt standing between key and value as ``this is a sound of`` does; each
key keeps one 2-token value for the lesson, the loss is on every value whose key came before, and 30% of
lessons (``--named``) give each key a fixed value (the kinds' names: a clip says its own name);
``--prompt`` sets how many prompt tokens stand between key and value; ``--support-prompt 0`` lays a
lesson out as the APT paper lays out a few-shot episode: a key's first pair (the support) and half its
repeats with the value right after the key, the other repeats (the queries) with the prompt between.  A value's first token
is drawn from ``--first-tokens`` tokens, its second from 100.  Every 250 steps it reports how often the
model's top guess at a repeated value's first token is right (0.2 to 0.35 is guessing among the values
seen).  ``--shuffled`` gives that share of the other lessons values whose first token is drawn from 100
anyway, whatever ``--first-tokens`` says, and reports only on the others.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

KEYS, PROMPT, SECOND = range(10, 20), list(range(2, 7)), range(100, 200)
PAIRS, WAYS = 12, 5


def lesson(rng: np.random.Generator, first: range, shuffled: float, named: float = 0.3,
           prompt: int = 5, support: int | None = None) -> tuple[list[int], list[int], list[int]]:
    """Token ids, labels (-100 but on values the context determines), and the positions of repeated
    values' first tokens in lessons whose values use ``first``.  With ``support``, a key's first pair
    and half of its repeats have ``support`` prompt tokens and the other repeats ``prompt``; only those
    are reported."""
    keys = rng.choice(KEYS, WAYS, replace=False)
    named, wide = rng.random() < named, rng.random() < shuffled
    if named:
        values = [[int(k) + 200, int(k) + 220] for k in keys]
    else:
        firsts = rng.choice(range(30, 130) if wide else first, WAYS)
        values = [[int(a), int(b)] for a, b in zip(firsts, rng.choice(SECOND, WAYS))]
    ids, labels, seen, repeats = [1], [-100], set(), []
    for _ in range(PAIRS):
        k = int(rng.integers(WAYS))
        asked = support is None or (k in seen and rng.random() < 0.5)
        context = [int(keys[k])] + PROMPT[:prompt if asked else support]
        if k in seen and asked and not named and not wide:
            repeats.append(len(ids) + len(context))
        ids += context + values[k]
        labels += [-100] * len(context) + (values[k] if named or k in seen else [-100, -100])
        seen.add(k)
    return ids, labels, repeats


def copy_lesson(rng: np.random.Generator, length: int = 96) -> tuple[list[int], list[int], list[int]]:
    """The plainest form of the skill (``--copy STEPS``): ``length`` random tokens in which a chunk of 4 to
    ``length / 2`` tokens repeats at once, from a random place; the loss and the report are on the
    repeat's tokens after its first.  The repeat's offset varies, so only matching on content (an
    induction head) predicts it; a copy at a fixed offset is learnt by position in 100 steps."""
    ids = [1] + [int(t) for t in rng.integers(2, 260, length)]  # every token a lesson uses, keys included
    n = int(rng.integers(4, length // 2 + 1))
    start = int(rng.integers(1, length + 2 - 2 * n))
    ids[start + n:start + 2 * n] = ids[start:start + n]
    repeats = list(range(start + n + 1, start + 2 * n))
    labels = [-100] * len(ids)
    labels[start + n + 1:start + 2 * n] = ids[start + n + 1:start + 2 * n]
    return ids, labels, repeats


def main() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first-tokens", type=int, default=100, help="how many tokens a value can start with")
    parser.add_argument("--shuffled", type=float, default=0.0)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--named", type=float, default=0.3, help="share of lessons where keys keep fixed values")
    parser.add_argument("--prompt", type=int, default=5, help="tokens between key and value (0 to 5)")
    parser.add_argument("--support-prompt", type=int, default=None, metavar="N",
                        help="a key's first pair, and half its repeats, with N prompt tokens (few-shot support "
                             "as the APT paper lays it out: the label right after its clip, N=0)")
    parser.add_argument("--after-copy", metavar="PATH",
                        help="the model after the copy steps: loaded from PATH if it exists, else saved there")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--grow", type=int, default=0, metavar="STEPS",
                        help="after the copy steps, start with no prompt tokens and add one every STEPS steps")
    parser.add_argument("--copy", type=int, default=0, metavar="STEPS",
                        help="train (and report) on copy_lesson for the first STEPS steps, then on recall")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    first = range(30, 30 + args.first_tokens)
    lm = LlamaForCausalLM(LlamaConfig(vocab_size=260, hidden_size=128, intermediate_size=512,
                                      num_hidden_layers=args.layers,
                                      num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=True))
    optimizer = torch.optim.AdamW(lm.parameters(), lr=args.lr, weight_decay=0.01)
    start = time.perf_counter()
    loaded = bool(args.after_copy) and Path(args.after_copy).exists()
    if loaded:  # the weights only: the optimizer starts afresh, so the numbers differ a little from one run
        lm.load_state_dict(torch.load(args.after_copy))
    for step in range(args.copy + 1 if loaded else 1, args.steps + 1):
        if args.after_copy and not loaded and step == args.copy + 1:
            torch.save(lm.state_dict(), args.after_copy)
        copying = step <= args.copy
        prompt = min(args.prompt, (step - args.copy - 1) // args.grow) if args.grow and not copying else args.prompt
        batch = [copy_lesson(rng) if copying else lesson(rng, first, args.shuffled, args.named, prompt, args.support_prompt)
                 for _ in range(32)]
        width = max(len(b[0]) for b in batch)  # right padding: a causal model's earlier positions never see it
        ids = torch.tensor([b[0] + [0] * (width - len(b[0])) for b in batch])
        loss = lm(input_ids=ids, labels=torch.tensor([b[1] + [-100] * (width - len(b[1])) for b in batch])).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 250 == 0:
            hits, probe = [], np.random.default_rng(7)
            with torch.no_grad():
                for ids, _, repeats in (copy_lesson(probe) if copying else lesson(probe, first, 0.0, 0.0, prompt, args.support_prompt)
                                        for _ in range(40)):
                    guess = lm(torch.tensor([ids])).logits[0].argmax(-1)
                    hits += [int(guess[p - 1]) == ids[p] for p in repeats]
            what = "repeated tokens" if copying else f"repeated values' first tokens ({prompt}-token prompt)"
            print(f"step {step}: loss {loss.item():.3f}, {what} guessed {np.mean(hits):.2f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
