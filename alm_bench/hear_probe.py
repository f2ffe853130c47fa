"""The HEAR 2021 probe protocol (hear-eval-kit ``heareval/predictions/task_predictions.py``), beside
alm-bench's own (:mod:`alm_bench.probe`), so probe numbers compare with the HEAR tables the Pengi paper
quotes (Table 9).

HEAR's default grid: 1 or 2 hidden layers of 1024 (Linear, BatchNorm1d, Dropout 0.1, ReLU), learning
rates 3.2e-3, 1e-3, 3.2e-4 and 1e-4, Xavier uniform or normal initialisation (gain for the previous
activation), Adam, batches of 1024, validation every 3 epochs, early stopping after 20 checks without
improvement, at most 500 epochs; the model of the best validation check is kept.  The 16 points are
shuffled (seeded) and the first ``grid_points`` (8, HEAR's default) are trained on the first split
only; the best by validation score is retrained on every other split (test fold i, validation fold
i+1, as :func:`alm_bench.probe.fold_splits`).  Embeddings are not standardised (HEAR's
``embedding_norm`` is the identity).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import random
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .probe import FoldResult, _fold_parts, _metric, _split_parts

INITIALISATIONS = {"xavier_uniform": nn.init.xavier_uniform_, "xavier_normal": nn.init.xavier_normal_}


@dataclass(frozen=True)
class HearGrid:
    hidden_layers: tuple[int, ...] = (1, 2)
    hidden_dim: int = 1024
    dropout: float = 0.1
    learning_rates: tuple[float, ...] = (3.2e-3, 1e-3, 3.2e-4, 1e-4)
    initialisations: tuple[str, ...] = ("xavier_uniform", "xavier_normal")
    max_epochs: int = 500
    check_every: int = 3
    patience: int = 20  # validation checks
    batch_size: int = 1024
    grid_points: int = 8
    seed: int = 42  # HEAR seeds everything with 42

    def points(self) -> list[dict]:
        """The grid in HEAR's order, shuffled with the seed; the first ``grid_points`` are tried."""
        confs = [{"hidden_layers": h, "lr": lr, "initialization": init} for h, lr, init in
                 itertools.product(self.hidden_layers, self.learning_rates, self.initialisations)]
        random.Random(self.seed).shuffle(confs)
        return confs[: self.grid_points]


def network(n_in: int, n_out: int, conf: dict, grid: HearGrid) -> nn.Sequential:
    init = INITIALISATIONS[conf["initialization"]]
    layers: list[nn.Module] = []
    dim, activation = n_in, "linear"
    for _ in range(conf["hidden_layers"]):
        linear = nn.Linear(dim, grid.hidden_dim)
        init(linear.weight, gain=nn.init.calculate_gain(activation))
        layers += [linear, nn.BatchNorm1d(grid.hidden_dim), nn.Dropout(grid.dropout), nn.ReLU()]
        dim, activation = grid.hidden_dim, "relu"
    projection = nn.Linear(dim, n_out)
    init(projection.weight, gain=nn.init.calculate_gain(activation))
    return nn.Sequential(*layers, projection)


def _scores(net: nn.Module, x: torch.Tensor, multilabel: bool) -> np.ndarray:
    net.eval()
    with torch.no_grad():
        logits = net(x)
    return (torch.sigmoid(logits) if multilabel else torch.softmax(logits, -1)).numpy()


def _predictions(scores: np.ndarray, ok: np.ndarray, multilabel: bool) -> np.ndarray:
    """Class indices (-1 for failed rows) or per-label scores (-inf for failed rows), like alm-bench's probe."""
    if multilabel:
        out = np.full((len(ok), scores.shape[1]), -np.inf)
        out[ok] = scores
        return out
    out = np.full(len(ok), -1, dtype=int)
    out[ok] = scores.argmax(1)
    return out


def train_one(conf: dict, grid: HearGrid, train: tuple, valid: tuple, n_out: int, multilabel: bool):
    """(best validation score, its epoch, the network of that check)."""
    torch.manual_seed(grid.seed)
    (tx, ty), (vx, vy) = train, valid
    net = network(tx.shape[1], n_out, conf, grid)
    optimiser = torch.optim.Adam(net.parameters(), lr=conf["lr"])
    loss_fn = nn.BCEWithLogitsLoss() if multilabel else nn.CrossEntropyLoss()
    target = torch.from_numpy(ty).float() if multilabel else torch.from_numpy(ty).long()
    generator = torch.Generator().manual_seed(grid.seed)
    best, best_epoch, best_net, checks_since = -np.inf, 0, copy.deepcopy(net), 0
    for epoch in range(1, grid.max_epochs + 1):
        net.train()
        for batch in torch.randperm(len(tx), generator=generator).split(grid.batch_size):
            if len(batch) < 2 and conf["hidden_layers"]:
                continue  # BatchNorm cannot train on one row
            optimiser.zero_grad()
            loss_fn(net(tx[batch]), target[batch]).backward()
            optimiser.step()
        if epoch % grid.check_every and epoch != grid.max_epochs:
            continue
        score = _metric(vy, _predictions(_scores(net, vx, multilabel), np.ones(len(vx), bool), multilabel), multilabel)
        if score > best:
            best, best_epoch, best_net, checks_since = score, epoch, copy.deepcopy(net), 0
        else:
            checks_since += 1
            if checks_since >= grid.patience:
                break
    return best, best_epoch, best_net


def _rows(part: np.ndarray) -> np.ndarray:
    """Row indices of a part given as a mask (folds) or as indices (a train/valid/test split)."""
    return np.flatnonzero(part) if part.dtype == bool else part


def _part(x: np.ndarray, y: np.ndarray, rows: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    keep = rows[np.isfinite(x[rows]).all(axis=1)]
    return torch.from_numpy(x[keep]).float(), y[keep]


def run_hear_probe(x: np.ndarray, y: np.ndarray, groups: Sequence[str | int], *, multilabel: bool, folds: bool,
                   grid: HearGrid = HearGrid(), seed: int = 0) -> tuple[list[FoldResult], dict]:
    """Every fold's result, and the grid point chosen on the first split."""
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=int)
    groups = np.asarray(groups)
    parts = _fold_parts(groups) if folds else _split_parts(groups, x, y, seed)
    n_out = y.shape[1] if multilabel else int(y.max()) + 1
    torch_threads = torch.get_num_threads()
    results, chosen = [], None
    try:
        torch.set_num_threads(1)  # small matrices: more threads only add synchronisation
        for name, tr, va, te in parts:
            train, valid = _part(x, y, _rows(tr)), _part(x, y, _rows(va))
            if not len(train[1]) or not len(valid[1]):
                raise ValueError(f"fold {name}: no usable train or validation rows")
            if chosen is None:  # the grid search runs on the first split only
                tried = [(train_one(conf, grid, train, valid, n_out, multilabel), i, conf)
                         for i, conf in enumerate(grid.points())]
                (_, epoch, net), _, chosen = max(tried, key=lambda t: (t[0][0], -t[1]))
            else:
                _, epoch, net = train_one(chosen, grid, train, valid, n_out, multilabel)
            test_rows = _rows(te)
            ok = np.isfinite(x[test_rows]).all(axis=1)
            scores = _scores(net, torch.from_numpy(x[test_rows][ok]).float(), multilabel)
            pred = _predictions(scores, ok, multilabel)
            results.append(FoldResult(name, _metric(y[test_rows], pred, multilabel), chosen["lr"], epoch,
                                      pred.tolist()))
    finally:
        torch.set_num_threads(torch_threads)
    return results, {"protocol": "hear", "chosen": chosen, "grid": dataclasses.asdict(grid)}
