"""clap: contrastive audio-text models, the baseline the Pengi paper compares with.

- ``clap``: LAION-CLAP through transformers' ``ClapModel`` (``laion``; ``checkpoint=`` a Hub id or folder).
- ``msclap``: Microsoft CLAP 2023 from its released checkpoint (``msclap``), the Pengi paper's CLAP.
- ``clap-tiny``: a small contrastive model alm-bench trains on its synthetic suite and ships (``tiny``,
  made by ``training``), so zero-shot classification by embeddings runs offline.

Each declares ``embed``, ``embed_text`` (``text_encoder``) and ``shared_space``: it runs
``zero_shot_embedding`` on classification tasks, ``retrieval_embedding`` on retrieval tasks and the
linear probes.  Weights come from the Hugging Face Hub through its cache (``weights``), or a local path.
"""

from alm_bench import hookimpl

from .laion import LaionClap
from .msclap import MsClap
from .tiny import ClapTinyModel

__all__ = ["ClapTinyModel", "LaionClap", "MsClap"]


@hookimpl
def alm_bench_models():
    return [LaionClap, MsClap, ClapTinyModel]
