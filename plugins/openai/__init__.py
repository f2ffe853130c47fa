"""openai: a model served behind an OpenAI-compatible chat-completions endpoint that takes audio.

``--model openai --model-args base_url=http://localhost:8000/v1,model=NAME[,api_key_env=VAR,prompt_logprobs=true]``.
Modules: ``model`` (the alm-bench model), ``client`` (concurrent requests with retries and back-off)
and ``serve`` (any suite model behind the same protocol: ``python -m alm_bench_plugins.openai.serve``).
"""

from alm_bench import hookimpl

from .model import OpenAIChat

__all__ = ["OpenAIChat"]


@hookimpl
def alm_bench_models():
    return [OpenAIChat]
