"""Evaluation methods; each is a :class:`Method` registered through the ``alm_bench_methods`` hook."""

from .base import EvalContext, Method, MethodResult, Metric
from .classification import LinearProbe, LogLikelihood, TextMatching, ZeroShotEmbedding
from .fewshot import InContextFewShot, PrototypeFewShot
from .generation import Captioning, QuestionAnswering, TwoClipReasoning
from .retrieval import EmbeddingRetrieval, GenerativeRetrieval

BUILTIN_METHODS = (
    TextMatching(), LogLikelihood(), ZeroShotEmbedding(), LinearProbe(), Captioning(), QuestionAnswering(),
    TwoClipReasoning(), GenerativeRetrieval(), EmbeddingRetrieval(), InContextFewShot(), PrototypeFewShot(),
)

__all__ = ["EvalContext", "Method", "MethodResult", "Metric", "BUILTIN_METHODS"]
