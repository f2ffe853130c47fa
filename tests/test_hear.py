"""``hear:<module>`` models (the HEAR 2021 API) and the HEAR probe protocol."""

from __future__ import annotations

import dataclasses
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from alm_bench.errors import UsageError
from alm_bench.hear_probe import HearGrid, run_hear_probe
from alm_bench.runner import RunConfig, run

FSDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd"

#: a HEAR 2021 module: log-mel band means and deviations of 16 kHz audio (HEAR's own naive baseline kind)
HEAR_MODULE = '''
import torch

class LogMel(torch.nn.Module):
    sample_rate = 16000
    scene_embedding_size = 64
    timestamp_embedding_size = 32

    def __init__(self):
        super().__init__()
        self.register_buffer("window", torch.hann_window(400))
        self.register_buffer("bands", torch.rand(201, 32, generator=torch.Generator().manual_seed(0)))

    def forward(self, audio):
        spec = torch.stft(audio, 400, 160, window=self.window, return_complex=True).abs().pow(2)
        return torch.log(spec.transpose(1, 2) @ self.bands + 1e-6)

def load_model(model_file_path=""):
    model = LogMel()
    if model_file_path:
        model.load_state_dict(torch.load(model_file_path))
    return model

def get_scene_embeddings(audio, model):
    frames = model(audio)
    return torch.cat([frames.mean(1), frames.std(1)], dim=1)

def get_timestamp_embeddings(audio, model):
    return model(audio), None
'''


@pytest.fixture
def hear_module(tmp_path, monkeypatch):
    (tmp_path / "hear_logmel_test.py").write_text(HEAR_MODULE)
    (tmp_path / "not_hear_test.py").write_text("def load_model(model_file_path=''):\n    return object()\n\n"
                                               "def get_scene_embeddings(audio, model):\n    return audio\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "hear_logmel_test"
    for name in ("hear_logmel_test", "not_hear_test"):
        sys.modules.pop(name, None)


def test_a_hear_module_is_a_model_whose_embeddings_are_the_modules(registry, hear_module, tmp_path):
    import torch

    module = __import__(hear_module)
    torch.save(module.load_model().state_dict(), tmp_path / "weights.pt")
    model = registry.load_model(f"hear:{hear_module}", {"weights": str(tmp_path / "weights.pt")})
    assert model.capabilities.names() == ["embed"] and model.audio_format.sample_rate == 16000
    config = model.config()
    assert config["module"] == hear_module and config["scene_embedding_size"] == 64 and config["weights_sha256"]
    from alm_bench.protocol import Clip

    rng = np.random.default_rng(0)
    clips = [Clip(rng.standard_normal(n).astype(np.float32), str(n)) for n in (8000, 12000, 8000)]
    expected = module.get_scene_embeddings(torch.from_numpy(clips[1].waveform[None]), module.load_model())
    np.testing.assert_allclose(model.embed(clips)[1], expected[0].numpy(), rtol=1e-5, atol=1e-5)


def test_hear_models_run_linear_probes_on_fsdd_with_either_protocol(registry, hear_module, tmp_path):
    spec = registry.tasks["fsdd-digits"]
    # short versions of both protocols: the grids' sizes, not their code, differ from a real run
    quick = dataclasses.replace(spec, methods={"linear_probe": {"max_epochs": 30, "learning_rates": [1e-2]}})
    hear = dataclasses.replace(spec, id="fsdd-digits-hear", methods={"linear_probe": {
        "protocol": "hear", "hear_grid": {"hidden_dim": 32, "max_epochs": 12, "grid_points": 2}}})
    both = dataclasses.replace(registry, tasks={**registry.tasks, spec.id: quick, hear.id: hear})
    summary = run(RunConfig(model=f"hear:{hear_module}", tasks="fsdd-digits,fsdd-digits-hear", data_dir=FSDD,
                            methods=("linear_probe",), limit=60, output_dir=tmp_path / "out",
                            cache_dir=tmp_path / "cache"), both)
    results = {r.task: r for r in summary.results}
    assert set(results) == {"fsdd-digits", "fsdd-digits-hear"}, summary.skipped
    assert results["fsdd-digits"].details["protocol"] == "alm-bench"
    details = results["fsdd-digits-hear"].details
    assert details["protocol"] == "hear" and details["chosen"]["hidden_layers"] in (1, 2)
    assert details["grid"]["hidden_dim"] == 32 and len(details["folds"]) == 6
    assert {f["learning_rate"] for f in details["folds"]} == {details["chosen"]["lr"]}  # chosen once, reused
    for result in results.values():
        assert 0.0 <= result.metrics["accuracy"] <= 1.0
        assert result.provenance["model_config"]["module"] == hear_module


def test_a_module_without_the_hear_api_is_one_line_exit_2(hear_module, monkeypatch, capsys):
    from alm_bench import cli

    monkeypatch.setattr(sys, "argv", ["alm-bench", "run", "--model", "hear:json", "--task", "fsdd-digits"])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == ["error: module 'json' does not implement the HEAR API: it lacks load_model, "
                     "get_scene_embeddings (see https://hearbenchmark.com/hear-api.html)"]


def test_a_hear_model_without_its_attributes_or_an_absent_module_is_one_line(registry, hear_module):
    with pytest.raises(UsageError, match=r"^hear:not_hear_test: .* lacks sample_rate, scene_embedding_size"):
        registry.load_model("hear:not_hear_test")
    with pytest.raises(UsageError, match=r"cannot import HEAR module 'no_such_hear_module'.*pip install"):
        registry.model_info("hear:no_such_hear_module")


def test_the_hear_grid_is_searched_on_the_first_split_and_reused():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    x = rng.standard_normal((60, 8)) + 6 * np.eye(8)[y]
    folds = np.tile(np.arange(1, 5), 15)
    grid = HearGrid(hidden_dim=16, max_epochs=30, grid_points=3, batch_size=16)
    assert len(grid.points()) == 3 and len(HearGrid().points()) == 8
    assert {p["hidden_layers"] for p in HearGrid(grid_points=16).points()} == {1, 2}
    results, setup = run_hear_probe(x, y, folds, multilabel=False, folds=True, grid=grid)
    assert [r.test_fold for r in results] == ["1", "2", "3", "4"]
    assert setup["protocol"] == "hear" and setup["chosen"] in grid.points()
    assert np.mean([r.metric for r in results]) > 0.7  # chance: 1/3


def test_hearbaseline_from_pypi_when_installed(registry):
    """HEAR's own VQT baseline (pip install --no-deps hearbaseline librosa): the model's embeddings of real
    fsdd clips, decoded by the runner, are the module's."""
    import torch

    from alm_bench.audio import decode
    from alm_bench.protocol import Clip

    vqt = pytest.importorskip("hearbaseline.vqt")
    model = registry.load_model("hear:hearbaseline.vqt")
    assert model.audio_format.sample_rate == 44100 and model.config()["version"] == "2021.1.1"
    paths = sorted((FSDD / "recordings").glob("*_jackson_0.wav"))[:2]
    clips = [Clip(decode(p, model.audio_format), p.name) for p in paths]
    expected = vqt.get_scene_embeddings(torch.from_numpy(clips[0].waveform[None]), vqt.load_model())
    np.testing.assert_allclose(model.embed(clips)[0], expected[0].numpy(), rtol=1e-5, atol=1e-6)
