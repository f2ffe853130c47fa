"""APT (Liang et al., 2023, "Acoustic Prompt Tuning"): several clips interleaved with text -> text.

``alm-bench run --model apt --model-args checkpoint=PATH_OR_URL,llm=HF_ID_OR_PATH`` builds the paper's
model around any causal language model; ``apt-tiny`` is the small configuration alm-bench trains on its
synthetic suite.  Usage and every model argument: ``plugins/apt/README.md``.  Modules: ``config`` (all
sizes, named configurations), ``audio_encoder`` (Kaldi fbank + Audio-MAE ViT), ``network`` (Q-Former,
projection, audio-indicator token), ``llm`` (loading the language model, shared-prefix scoring),
``checkpoint`` (the LAVIS layout), ``model`` (the alm-bench model), ``training`` (the curriculum),
``tiny`` (``apt-tiny``).
"""

from alm_bench import hookimpl

from .config import CONFIGS, AptConfig, register_config
from .model import AptModel, build_network
from .tiny import AptTinyModel

__all__ = ["CONFIGS", "AptConfig", "AptModel", "AptTinyModel", "build_network", "register_config"]


@hookimpl
def alm_bench_models():
    return [AptModel, AptTinyModel]
