"""Plugin discovery: entry points, broken plugins, wrapper models, plugin-provided tasks."""

import sys
import textwrap

import numpy as np
import pytest

from alm_bench import Capabilities, Model, hookimpl
from alm_bench.errors import UsageError
from alm_bench.plugins import build_registry
from alm_bench.runner import RunConfig, run


def test_builtin_models_and_tasks_arrive_through_entry_points(registry):
    assert registry.models["oracle"].plugin == "reference-models"
    assert registry.models["chance"].capabilities.score
    assert "synth-events" in registry.tasks


def test_autoload_switch_loads_no_entry_points(monkeypatch):
    monkeypatch.setenv("ALM_BENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    registry = build_registry()
    assert not registry.models and "text_matching" in registry.methods


def _install_fake_distribution(tmp_path, monkeypatch, module_source: str, ep_target: str):
    """A real installed distribution (dist-info + module) with an alm_bench entry point."""
    site = tmp_path / "site"
    (site / "fake_alm_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "fake_alm_plugin-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-alm-plugin\nVersion: 0.1\n")
    (site / "fake_alm_plugin-0.1.dist-info" / "entry_points.txt").write_text(f"[alm_bench]\nfake = {ep_target}\n")
    (site / "fake_alm_plugin.py").write_text(textwrap.dedent(module_source))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "fake_alm_plugin", raising=False)


def test_a_plugin_that_fails_to_import_is_reported_and_the_others_load(tmp_path, monkeypatch):
    _install_fake_distribution(tmp_path, monkeypatch, "raise ImportError('no module named torchvision')\n",
                               "fake_alm_plugin")
    registry = build_registry()
    assert any(e.startswith('Error importing plugin "fake"') and "torchvision" in e for e in registry.errors)
    assert "oracle" in registry.models and "synth-events" in registry.tasks


def test_a_third_party_model_registers_through_its_entry_point(tmp_path, monkeypatch):
    _install_fake_distribution(tmp_path, monkeypatch, """
        import numpy as np
        from alm_bench import AudioFormat, Capabilities, Model, hookimpl

        class Loudness(Model):
            '''RMS loudness as a 1-d embedding.'''
            name = "loudness"
            capabilities = Capabilities(embed=True)
            audio_format = AudioFormat(sample_rate=8000)

            def embed(self, clips):
                return np.array([[float(np.sqrt(np.mean(c.waveform ** 2)))] for c in clips])

        @hookimpl
        def alm_bench_models():
            return [Loudness]
    """, "fake_alm_plugin")
    registry = build_registry()
    info = registry.models["loudness"]
    assert info.plugin == "fake" and info.capabilities.names() == ["embed"]
    assert info.description == "RMS loudness as a 1-d embedding."


class _NoEmbed(Model):
    name = "liar"
    capabilities = Capabilities(embed=True)


class _Crashes:
    @hookimpl
    def alm_bench_models(self):
        raise RuntimeError("boom")


def test_invalid_registrations_are_reported_by_plugin_name():
    class Bad:
        @hookimpl
        def alm_bench_models(self):
            return [_NoEmbed]

    registry = build_registry(extra_plugins=(("bad-plugin", Bad()), ("crashing", _Crashes())))
    assert any('"bad-plugin"' in e and "does not implement embed()" in e for e in registry.errors)
    assert any('"crashing"' in e and "boom" in e for e in registry.errors)
    assert "liar" not in registry.models and "oracle" in registry.models


class Reranker(Model):
    """Wraps another registered model: re-ranks its log-likelihoods (like the RPG variant wraps Pengi).
    It wraps the oracle, so it is a reference model too and passes the ground truth on."""

    name = "reranker"
    capabilities = Capabilities(score=True, reference=True)

    def __init__(self, base: str = "oracle", registry=None):
        self.base = (registry or _REGISTRY[0]).load_model(base)
        self.audio_format = self.base.audio_format

    def score(self, requests, answers=None):
        return [-np.asarray(s) for s in self.base.score(requests, answers=answers)]  # worst first: inverted


_REGISTRY = []


def test_a_model_can_wrap_another_registered_model(cache_dir, tmp_path):
    class Wrapper:
        @hookimpl
        def alm_bench_models(self):
            return [Reranker]

    registry = build_registry(extra_plugins=(("wrapper", Wrapper()),))
    _REGISTRY[:] = [registry]
    summary = run(RunConfig(model="reranker", tasks="synth-events", output_dir=tmp_path, cache_dir=cache_dir,
                            limit=50), registry)
    (result,) = summary.results  # only log_likelihood: the wrapper declares score alone
    assert result.method == "log_likelihood" and result.metrics["accuracy"] == 0.0  # the oracle, inverted
    assert {s.method for s in summary.skipped} == {"text_matching", "zero_shot_embedding", "linear_probe"}


def test_plugins_may_add_tasks(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(textwrap.dedent("""
        id: plugin-task
        domain: sound events
        type: multiclass
        description: a task from a plugin
        dataset: {loader: synth, args: {dataset: events}, source: generated, licence: CC0}
        splits: {test: test}
        folds: 5
        metric: accuracy
        methods: {linear_probe: {}}
    """))

    class Tasks:
        @hookimpl
        def alm_bench_tasks(self):
            return [str(spec)]

    registry = build_registry(extra_plugins=(("tasks", Tasks()),))
    assert registry.tasks["plugin-task"].methods == {"linear_probe": {}}


def test_model_arguments_are_checked(registry):
    with pytest.raises(UsageError, match="takes no argument 'colour'.*seed"):
        registry.load_model("chance", {"colour": "red"})
    assert registry.load_model("chance", {"seed": 3}).seed == 3
