"""``pengi-tiny``: Pengi's architecture at two million parameters, trained by alm-bench on its
synthetic suite and shipped inside the package, so a machine with no network runs a real
audio-language model end to end.

It is the ``pengi`` model with other defaults: the ``tiny`` configuration, the shipped weights and
decoder tokenizer (``weights/tiny/``, made by ``python -m alm_bench_plugins.pengi.training``; the
run is recorded in ``weights/tiny/training.json``), 40 new tokens (its longest captions need 36), and
all-MiniLM-L6-v2 as the text encoder of text matching and retrieval.
Every ``pengi`` model argument still applies.  It knows only the synthetic suite's sounds and words:
on real recordings its outputs are the nearest synthetic description, not an audio understanding.
"""

from __future__ import annotations

import json
from pathlib import Path

from .model import PengiModel

WEIGHTS = Path(__file__).resolve().parent / "weights" / "tiny"
#: its text encoder: its own 3-layer GPT-2, mean-pooled, matches captions poorly (synth-retrieval
#: t2a R@10 0.235 against 0.463 with MiniLM, which ships offline with the package's dependencies)
TEXT_ENCODER = "sentence-transformers:all-MiniLM-L6-v2"


def training_record() -> dict:
    """What ``training.json`` says about how the shipped weights were made (empty when absent)."""
    path = WEIGHTS / "training.json"
    return json.loads(path.read_text()) if path.is_file() else {}


class PengiTinyModel(PengiModel):
    name = "pengi-tiny"
    description = "Pengi's architecture at 2M parameters, trained by alm-bench on its synthetic suite (shipped, offline)"

    def __init__(self, checkpoint: str | None = None, config: str = "tiny", decoder_tokenizer: str | None = None,
                 max_new_tokens: int = 40, text_encoder: str = TEXT_ENCODER, **args) -> None:
        self.shipped = checkpoint is None
        super().__init__(checkpoint=checkpoint or str(WEIGHTS / "model.pt"), config=config,
                         decoder_tokenizer=decoder_tokenizer or str(WEIGHTS / "tokenizer"),
                         max_new_tokens=max_new_tokens, text_encoder=text_encoder, **args)

    def config(self) -> dict:
        config = super().config()
        if self.shipped:  # the same on every machine, wherever the package is installed
            config["checkpoint"] = "shipped: alm_bench_plugins/pengi/weights/tiny/model.pt"
            config["tokenizers"]["decoder"] = "shipped: alm_bench_plugins/pengi/weights/tiny/tokenizer"
            record = training_record()
            config["training"] = {k: record.get(k) for k in ("command", "recipe", "steps", "seconds", "torch")}
        return config
