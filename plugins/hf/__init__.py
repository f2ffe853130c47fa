"""hf: transformers' audio chat models (Qwen2-Audio, Audio Flamingo 3, GLM-ASR, ...) as one model.

``--model hf --model-args checkpoint=Qwen/Qwen2-Audio-7B-Instruct[,dtype=,device_map=,system_prompt=]``.
Modules: ``model`` (the alm-bench model: the chat prompt, generate, score, embed) and ``adapters``
(what an architecture does differently, one adapter per ``model_type``).  Usage: plugins/hf/README.md.
"""

from alm_bench import hookimpl

from .adapters import ADAPTERS, Adapter
from .model import HFChat

__all__ = ["ADAPTERS", "Adapter", "HFChat"]


@hookimpl
def alm_bench_models():
    return [HFChat]
