"""The refined knowledge base (the paper's section 3.5): pair-to-pair retrieval for every training
pair over a large KB, keeping the union of what is retrieved.  Written as a CSV KB that ``kb=`` takes.

    python -m alm_bench_plugins.rag.refine --kb LARGE_SOURCE --train TRAIN_SOURCE --output refined.csv

Each training pair ``(A_j, T_j)`` queries with ``[W Enc_A(A_j) ; (1 - W) Enc_T(T_j)]`` (eq. 4 and 9);
a pair never retrieves its own clip.  Both indexes are the ``rag`` model's (cached the same way).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from alm_bench.errors import UsageError
from alm_bench.protocol import RunEnvironment

from .encoders import Encoders
from .index import PairIndex, load_or_build
from .kb import Entry, KnowledgeBase, load_kb, write_csv
from .retrieval import query_rows, search


def refine(large: KnowledgeBase, large_index: PairIndex, train: KnowledgeBase, train_index: PairIndex,
           k: int, w: float) -> list[Entry]:
    """The pairs of ``large`` that some training pair retrieves among its top ``k``, in order of first retrieval."""
    rows = train_index.rows
    audio, text = rows[:, : train_index.audio_dim], rows[:, train_index.audio_dim :]
    queries = query_rows("pair-to-pair", audio, text, w, text.shape[1])
    kept: dict[int, None] = {}
    for start in range(0, len(queries), 256):
        window = slice(start, start + 256)
        shas = [e.sha for e in train.entries[window]]
        for hits in search(large_index, large, queries[window], audio[window], text[window], shas, k):
            kept.update((h.entry, None) for h in hits)
    return [large.entries[i] for i in kept]


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    kb: str = typer.Option(..., "--kb", help="the knowledge base to refine (TASK:SPLIT, folder or CSV)"),
    train: str = typer.Option(..., "--train", help="the training pairs that pick what is kept (same forms)"),
    output: Path = typer.Option(..., "--output", help="the refined KB, a CSV file (pass it as kb=)"),
    k: int = typer.Option(4, "--k", min=1, help="pairs retrieved per training pair"),
    w: float = typer.Option(0.5, "--w", min=0.0, max=1.0, help="weight of the audio score (eq. 4)"),
    audio_encoder: str = typer.Option("clap-tiny", "--audio-encoder"),
    text_encoder: str = typer.Option("clap-tiny", "--text-encoder"),
    kb_limit: Optional[int] = typer.Option(None, "--kb-limit", min=1, help="use the KB's first N clips"),
    train_limit: Optional[int] = typer.Option(None, "--train-limit", min=1, help="use the first N training clips"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir"),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="default: $ALM_BENCH_CACHE or ~/.cache/alm-bench"),
) -> None:
    """Write the refined knowledge base of section 3.5 as a CSV file."""
    from alm_bench.plugins import default_registry
    from alm_bench.runner import default_cache_dir

    registry = default_registry()
    environment = RunEnvironment(cache_dir or default_cache_dir(), data_dir, registry)
    encoders = Encoders.load(registry, audio_encoder, text_encoder)
    large, small = load_kb(kb, environment, kb_limit), load_kb(train, environment, train_limit)
    kept = refine(large, load_or_build(large, encoders, environment.cache_dir),
                  small, load_or_build(small, encoders, environment.cache_dir), k, w)
    write_csv(output, kept)
    clips = len({e.sha for e in kept})
    typer.echo(f"refined KB: {len(kept)} of {len(large.entries)} pairs ({clips} clips) -> {output}; pass kb={output}")


def run(argv: list[str] | None = None) -> None:
    try:
        app(args=argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    run()
