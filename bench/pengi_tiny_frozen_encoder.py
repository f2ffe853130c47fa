"""Why pengi-tiny's stage 2 keeps HTS-AT fixed: the counting study behind ``freeze_audio_encoder``.

Stage 1 of the training recipe (``alm_bench_plugins.pengi.training``) runs as shipped: HTS-AT tagging
on the synthetic suite's single-event clips (events and count train splits).  Then two arms continue
from the same weights with the same seeded batches of counting questions only ("question: how many
times does the beep sound?" -> "3"), for ``--steps`` steps of the recipe's optimiser:

- ``HTS-AT trained``: the caption loss reaches HTS-AT too (the recipe before this study);
- ``HTS-AT fixed``: the loss stops at its latent (the recipe now).

At each checkpoint the script reports, on the count valid split, the question's validation loss
(text-only level: ln(4)/2 = 0.69, a uniform guess of the digit plus a free stop token) and how well a
logistic regression reads the count from the audio prefix the language model sees (trained on half
the train clips).  The tokenizer is the shipped one.

    /work/venv/bin/python bench/pengi_tiny_frozen_encoder.py --threads 2     # about 5 minutes
"""

from __future__ import annotations

import argparse
import copy
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def count_of(clip) -> int:
    from alm_bench_plugins.pengi.training import TAGS

    return int(clip.tags[[TAGS.index(n) for n in "1234"]].argmax()) + 1


def audio_projection(network, clips, fixed: bool) -> torch.Tensor:
    if fixed:
        return network.audio_encoder.projection(torch.stack([c.latent for c in clips]))
    return network.audio_encoder.from_front_end(torch.stack([c.mel for c in clips]))[1]


def evaluate(network, batcher, train, valid, questions, fixed: bool) -> tuple[float, float]:
    """(validation loss of the count questions, count accuracy of a probe on the audio prefix)"""
    from sklearn.linear_model import LogisticRegression

    network.eval()
    with torch.no_grad():
        loss = float(np.mean([question_loss(network, batcher, valid, questions[i : i + 64], fixed).item()
                              for i in range(0, len(questions), 64)]))
        prefix = [network.caption_decoder.audio_project(F.normalize(audio_projection(network, clips, fixed), dim=-1))
                  .flatten(1).numpy() for clips in (train[::2], valid)]
    network.train()
    probe = LogisticRegression(max_iter=2000).fit(prefix[0], [count_of(c) for c in train[::2]])
    return loss, probe.score(prefix[1], [count_of(c) for c in valid])


def question_loss(network, batcher, clips, examples, fixed: bool) -> torch.Tensor:
    prompt_ids, prompt_mask, target, target_mask = batcher.tokens(examples)
    audio = audio_projection(network, [clips[i] for i, _, _ in examples], fixed)
    return network.caption_loss(audio, prompt_ids, prompt_mask, target, target_mask, batcher.prompts.eos_token_id)


def questions(clips):
    return [(i, p, t) for i, c in enumerate(clips) for p, t in c.pairs if p.startswith("question:")]


def main(argv: list[str] | None = None) -> int:
    from transformers import AutoTokenizer

    from alm_bench_plugins.pengi import training as T
    from alm_bench_plugins.pengi.config import CONFIGS
    from alm_bench_plugins.pengi.model import build_network
    from alm_bench_plugins.pengi.tiny import WEIGHTS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.time()
    recipe, cfg = T.Recipe(), CONFIGS["tiny"]
    network = build_network(cfg, recipe.seed).train()
    torch.manual_seed(recipe.seed)
    front_end = network.audio_encoder.base.htsat.front_end
    train, valid = ([c for d in ("events", "count") for c in T.render_clips(d, s, front_end, cfg.audio.clip_samples, 0)]
                    for s in ("train", "valid"))
    batcher = T.Batcher(cfg, AutoTokenizer.from_pretrained(WEIGHTS / "tokenizer"))
    with T._progress(False) as bar:
        T.tag_audio_encoder(network, train, valid, recipe, np.random.default_rng(recipe.seed), bar)
    tagged = copy.deepcopy(network.state_dict())
    trainable = {name: p.requires_grad for name, p in network.named_parameters()}
    examples, valid_questions = questions(train), questions(valid)
    print(f"stage 1 done in {time.time() - started:.0f} s; {len(examples)} training questions", flush=True)

    rows = []
    for fixed in (False, True):
        network.load_state_dict(tagged)
        for name, p in network.train().named_parameters():
            p.requires_grad = trainable[name]
        if fixed:
            T.freeze_audio_encoder(network, train + valid, recipe.batch_size)
        params = [p for p in network.parameters() if p.requires_grad]
        optimizer, schedule = T._optimizer(params, recipe, args.steps)
        rng = np.random.default_rng(1)
        torch.manual_seed(1)
        arm = "HTS-AT fixed" if fixed else "HTS-AT trained"
        rows.append((arm, 0, *evaluate(network, batcher, train, valid, valid_questions, fixed)))
        for step in range(1, args.steps + 1):
            part = [examples[j] for j in rng.choice(len(examples), recipe.batch_size, replace=False)]
            T._step(question_loss(network, batcher, train, part, fixed), params, optimizer, schedule, recipe)
            if step % args.every == 0:
                rows.append((arm, step, *evaluate(network, batcher, train, valid, valid_questions, fixed)))
                print(f"{arm}, step {step}: loss {rows[-1][2]:.3f}, prefix probe {rows[-1][3]:.3f}", flush=True)

    print("\n| stage 2 | steps | count question valid loss | count read from the audio prefix |")
    print("|---|---:|---:|---:|")
    for arm, step, loss, probe in rows:
        print(f"| {arm} | {step} | {loss:.3f} | {probe:.3f} |")
    print(f"\n{time.time() - started:.0f} s, torch {torch.__version__}, {torch.get_num_threads()} threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
