"""``hear:<module>``: any module implementing the HEAR 2021 API as an embed-only model.

The HEAR challenge (Turian et al., 2022) fixed one interface that dozens of audio encoders implement::

    model = module.load_model(model_file_path)        # model.sample_rate, model.scene_embedding_size
    embeddings = module.get_scene_embeddings(audio, model)   # audio: float32 [n_sounds, n_samples]

so ``--model hear:hearbaseline --model-args weights=PATH`` runs the linear probes (and anything else that
needs only ``embed``) on any of them; ``seconds=S`` cuts or zero-pads every clip to S seconds, as HEAR
gives each task one duration (some modules only work on such input).  The module must be importable: install it yourself (the HEAR
2021 baselines pin numpy 1.19 and numba 0.48, which do not build on current Pythons; ``pip install
--no-deps hearbaseline`` and then what its code imports, e.g. ``librosa``, is the way around).  Clips are embedded in batches of equal length only (HEAR takes
one padded tensor; padding a clip to its batch mates' length would make its embedding depend on them).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from alm_bench import AudioFormat, Capabilities, Model, hookimpl
from alm_bench.errors import UsageError
from alm_bench_plugins.weights import sha256_file

API = "https://hearbenchmark.com/hear-api.html"
MODULE_FUNCTIONS = ("load_model", "get_scene_embeddings")
MODEL_ATTRIBUTES = ("sample_rate", "scene_embedding_size")


class HearModel(Model):
    """A HEAR 2021 API module's scene embeddings."""

    capabilities = Capabilities(embed=True)
    module: ClassVar[ModuleType]

    def __init__(self, weights: str = "", seconds: float | None = None) -> None:
        self.weights, self.seconds = str(weights), seconds
        try:
            self.net = self.module.load_model(self.weights) if self.weights else self.module.load_model()
        except Exception as exc:  # a module written against older libraries fails here: say so in one line
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise UsageError(f"{self.name}: load_model() raised {type(exc).__name__}: {reason[:200]} (check the "
                             f"module's weights and the library versions it was written for)") from None
        missing = [a for a in MODEL_ATTRIBUTES if not hasattr(self.net, a)]
        if missing:
            raise UsageError(f"{self.name}: the model load_model() returns lacks {', '.join(missing)} "
                             f"(the HEAR API requires them: {API})")
        # HEAR gives every clip of a task one duration (cut or zero-padded); ``seconds`` does the same, for
        # modules that only work on, or were tuned to, fixed-length input
        rate = int(self.net.sample_rate)
        self.audio_format = AudioFormat(rate, max_seconds=seconds, min_seconds=seconds or 0.0)
        self.device = "cpu"

    def config(self) -> dict[str, Any]:
        path = Path(self.weights).expanduser()
        return {"module": self.module.__name__, "version": _version(self.module), "weights": self.weights,
                "weights_sha256": sha256_file(path) if self.weights and path.is_file() else None,
                "sample_rate": int(self.net.sample_rate), "seconds": self.seconds,
                "scene_embedding_size": int(self.net.scene_embedding_size)}

    def to(self, device: str) -> "HearModel":
        if hasattr(self.net, "to"):
            self.net = self.net.to(device)
        self.device = device
        return self

    def embed(self, clips):
        import torch

        out: list[np.ndarray | None] = [None] * len(clips)
        by_length: dict[int, list[int]] = {}
        for i, clip in enumerate(clips):
            by_length.setdefault(len(clip.waveform), []).append(i)
        with torch.no_grad():
            for rows in by_length.values():
                audio = torch.from_numpy(np.stack([clips[i].waveform for i in rows]).astype(np.float32))
                vectors = self.module.get_scene_embeddings(audio.to(self.device), self.net)
                for i, vector in zip(rows, vectors.detach().cpu().numpy()):
                    out[i] = vector
        return np.stack(out).astype(np.float32)


def _version(module: ModuleType) -> str | None:
    top = module.__name__.split(".")[0]
    try:
        return importlib.metadata.version(top)
    except importlib.metadata.PackageNotFoundError:
        return getattr(module, "__version__", None)


def hear_model_class(module_name: str) -> type[HearModel]:
    """A model class for the HEAR module ``module_name``; one line naming what is missing otherwise."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import HEAR module {module_name!r} ({exc}); install it, "
                         f"e.g. pip install {module_name.split('.')[0]}") from None
    missing = [f for f in MODULE_FUNCTIONS if not callable(getattr(module, f, None))]
    if missing:
        raise UsageError(f"module {module_name!r} does not implement the HEAR API: it lacks "
                         f"{', '.join(missing)} (see {API})")
    return type(f"Hear[{module_name}]", (HearModel,), {
        "name": f"hear:{module_name}", "module": module,
        "description": f"HEAR API module {module_name}: scene embeddings"})


@hookimpl
def alm_bench_model_prefixes():
    return {"hear": hear_model_class}
