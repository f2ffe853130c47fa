"""Task specs: every shipped spec validates; invalid specs name the file, the field and the problem."""

import textwrap

import pytest
import yaml

from alm_bench.errors import SpecError
from alm_bench.specs import load_spec

VALID = textwrap.dedent("""
    id: my-task
    domain: sound events
    type: multiclass
    description: test
    dataset: {loader: synth, args: {dataset: events}, source: generated, licence: CC0}
    splits: {test: test}
    folds: 5
    metric: accuracy
    prompts: ["this is a sound of"]
    methods:
      text_matching: {}
      log_likelihood: {template: "a {label}"}
""")


def test_every_shipped_spec_validates(registry):
    assert not registry.errors, registry.errors
    synthetic = {t for t in registry.tasks if t.startswith("synth-")}
    assert {"synth-events", "synth-tagging", "synth-count", "synth-caption", "synth-retrieval",
            "synth-compare", "synth-fewshot"} <= synthetic


def _write(tmp_path, text):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def test_valid_spec_parses_into_typed_objects(tmp_path, registry):
    spec = load_spec(_write(tmp_path, VALID), registry.methods)
    assert spec.id == "my-task" and spec.folds == 5 and spec.prompts == ("this is a sound of",)
    assert spec.methods["log_likelihood"] == {"template": "a {label}"}


@pytest.mark.parametrize("change, field, phrase", [
    (lambda d: d.update(colour="red"), "colour", "unknown key"),
    (lambda d: d.pop("metric"), "metric", "required"),
    (lambda d: d.update(folds="five"), "folds", "expected int"),
    (lambda d: d.update(type="regression"), "type", "not one of"),
    (lambda d: d.update(domain="cooking"), "domain", "not one of"),
    (lambda d: d["dataset"].update(url="x"), "dataset.url", "unknown key"),
    (lambda d: d["methods"].update(telepathy={}), "methods.telepathy", "unknown method"),
    (lambda d: d["methods"].update(captioning={}), "methods.captioning", "does not apply"),
    (lambda d: d["methods"]["log_likelihood"].update(temperature=2), "methods.log_likelihood.temperature",
     "unknown option"),
    (lambda d: d["methods"]["log_likelihood"].update(template=3), "methods.log_likelihood.template", "expected str"),
    (lambda d: d.update(prompts=[]), "prompts", "at least one prompt"),
    (lambda d: d.update(labels=["dog", "dog"]), "labels", "repeat"),
    (lambda d: d.update(references=[{"model": "Pengi", "metric": "accuracy", "value": "high", "source": "x"}]),
     "references[0].value", "expected a number"),
])
def test_invalid_spec_names_file_field_and_problem(tmp_path, registry, change, field, phrase):
    data = yaml.safe_load(VALID)
    change(data)
    path = _write(tmp_path, yaml.safe_dump(data))
    with pytest.raises(SpecError) as info:
        load_spec(path, registry.methods)
    message = str(info.value)
    assert str(path) in message and f"'{field}'" in message and phrase in message


def test_broken_yaml_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(_write(tmp_path, "id: [unclosed"))
