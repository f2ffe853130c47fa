"""``apt-tiny``: APT's architecture at a size that trains on a CPU, trained by alm-bench on its synthetic
suite (``training``) and shipped inside the package, as ``pengi-tiny`` is.

It is the ``apt`` model with other defaults: the ``tiny`` configuration, the shipped checkpoint
(Audio-MAE included), the shipped language model (pretrained on the suite's texts, then frozen) whose
tokenizer the Q-Former shares, and greedy decoding of at most 40 new tokens with no repetition
penalty (the public code's beam 5 and penalty 1.5 suit Vicuna; a 2-layer model's answers repeat kind
names legitimately, and greedy is five times cheaper).  Every ``apt`` model argument applies, the
public code's decoding included (``num_beams=5,repetition_penalty=1.5``).
"""

from __future__ import annotations

import json
from pathlib import Path

from alm_bench.errors import UsageError

from .model import AptModel

WEIGHTS = Path(__file__).resolve().parent / "weights" / "tiny"
CHECKPOINT, LLM = WEIGHTS / "model.pt", WEIGHTS / "llm"
TRAIN_COMMAND = "python -m alm_bench_plugins.apt.training --output plugins/apt/weights/tiny"


def training_record() -> dict:
    path = WEIGHTS / "training.json"
    return json.loads(path.read_text()) if path.is_file() else {}


class AptTinyModel(AptModel):
    name = "apt-tiny"
    description = "APT's architecture at CPU size, trained by alm-bench on its synthetic suite and shipped"

    def __init__(self, checkpoint: str | None = None, llm: str | None = None, config: str = "tiny",
                 qformer_tokenizer: str = "llm", max_new_tokens: int = 40, num_beams: int = 1,
                 repetition_penalty: float = 1.0, **args) -> None:
        self.shipped = checkpoint is None
        if self.shipped and not CHECKPOINT.is_file():
            raise UsageError(f"apt-tiny's weights are missing from this installation ({CHECKPOINT}); reinstall "
                             f"alm-bench, or make them with `{TRAIN_COMMAND}`")
        super().__init__(checkpoint=checkpoint or str(CHECKPOINT), llm=llm or str(LLM), config=config,
                         qformer_tokenizer=qformer_tokenizer, max_new_tokens=max_new_tokens, num_beams=num_beams,
                         repetition_penalty=repetition_penalty, **args)

    def config(self) -> dict:
        config = super().config()
        if self.shipped:  # the same on every machine, wherever the package is installed
            config["checkpoint"] = "shipped: alm_bench_plugins/apt/weights/tiny/model.pt"
            config["llm"] = "shipped: alm_bench_plugins/apt/weights/tiny/llm"
            record = training_record()
            config["training"] = {k: record.get(k) for k in ("command", "stages", "seconds", "torch")}
        return config
