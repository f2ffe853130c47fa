"""rag: retrieval-augmented captioning around any suite model (the pair-to-pair RAG paper).

Modules: ``kb`` (knowledge-base sources -> audio-caption pairs + content hash), ``encoders`` (the
retrieval encoders, suite models by name), ``index`` (the faiss index, cached by KB and encoders),
``retrieval`` (the five modes, self-exclusion), ``context`` (how pairs enter the base model's input),
``model`` (the ``rag`` wrapper), ``refine`` (the refined KB of section 3.5, a command).
Usage: ``plugins/rag/README.md``.
"""

from alm_bench import hookimpl

from .model import RagModel

__all__ = ["RagModel"]


@hookimpl
def alm_bench_models():
    return [RagModel]
