"""Loading, overrides and validation: every mistake names the file and field."""

from __future__ import annotations

import json
import re

import pytest
from pydantic import ValidationError

from simulator import Scenario, ScenarioError, load_scenario, simulate
from simulator.loading import apply_overrides

from .conftest import REPO_ROOT


def write(tmp_path, text: str, name: str = "s.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_scenario_file_loads_and_runs():
    files = sorted((REPO_ROOT / "scenarios").glob("*.yaml"))
    assert len(files) >= 3
    for path in files:
        result = simulate(load_scenario(path))
        assert result.iteration_time_s > 0
        assert 0 < result.scaling_efficiency <= 1.0 + 1e-9, path


def test_default_scenario_is_embedded_and_valid():
    s = load_scenario()
    assert s.cluster.total_gpus == 8 and s.workload.model == "resnet50"


def test_json_and_yaml_give_the_same_scenario(tmp_path):
    yaml_s = load_scenario(REPO_ROOT / "scenarios" / "ps_4x4_10gbe.yaml")
    json_path = write(tmp_path, json.dumps(yaml_s.model_dump()), "s.json")
    assert load_scenario(json_path) == yaml_s


def test_scenario_is_frozen():
    s = load_scenario()
    with pytest.raises(ValidationError, match="Instance is frozen"):
        s.cluster.nodes = 3  # type: ignore[misc]


def test_overrides_parse_yaml_scalars_and_create_sections():
    data = apply_overrides({"cluster": {"nodes": 1}}, ["cluster.nodes=4", "training.overlap=false",
                                                       "cluster.nic.link=IB-EDR"], "f")
    assert data == {"cluster": {"nodes": 4, "nic": {"link": "IB-EDR"}}, "training": {"overlap": False}}


def test_overrides_apply_before_validation_so_errors_are_the_same(tmp_path):
    path = write(tmp_path, "cluster:\n  nodes: 0\n")
    nodes_zero = r"cluster\.nodes: Input should be greater than or equal to 1 \(got 0\)"
    with pytest.raises(ScenarioError, match=nodes_zero) as from_file:
        load_scenario(path)
    with pytest.raises(ScenarioError, match=nodes_zero) as from_set:
        load_scenario(write(tmp_path, "cluster:\n  nodes: 2\n"), ["cluster.nodes=0"])
    assert str(from_file.value) == str(from_set.value)


@pytest.mark.parametrize(
    "text,message",
    [
        ("cluster: [1\n", "line 2: malformed YAML"),
        ("cluster:\n  nodez: 2\n", "cluster.nodez: unknown key"),
        ("cluster:\n  nodes: two\n", "cluster.nodes: Input should be a valid integer"),
        ("cluster:\n  gpus_per_node: 0\n", "cluster.gpus_per_node: Input should be greater than or equal to 1"),
        ("cluster:\n  nic:\n    bandwidth_gbps: -10\n", "cluster.nic.bandwidth_gbps: Input should be greater than 0"),
        ("cluster:\n  gpu: V200\n", "cluster.gpu: unknown GPU 'V200'"),
        ("workload:\n  model: resnet5\n", "workload.model: unknown model 'resnet5' (did you mean 'resnet50'"),
        ("cluster:\n  nic:\n    link: 7GbE\n", "cluster.nic.link: unknown link '7GbE'"),
        ("training:\n  strategy: gossip\n", "training.strategy: Input should be"),
        ("cluster:\n  gpus_per_node: 6\n  server:\n    pcie_switches: 4\n", "cannot be spread evenly"),
        ("cluster:\n  gpu: K80\nworkload:\n  precision: bf16\n", "K80 does not support bf16"),
        ("workload:\n  model: resnet50\n  sequence_length: 128\n", "workload.sequence_length"),
        ("- a\n- b\n", "a scenario must be a mapping"),
    ],
)
def test_bad_input_names_the_file_and_field(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError, match=re.escape(message)) as err:
        load_scenario(path)
    assert str(err.value).startswith(str(path) + ": ")
    assert message in str(err.value)


@pytest.mark.parametrize(
    "override,message",
    [
        ("cluster.nodes", "expected dotted.path=value"),
        ("cluster..nodes=3", "expected dotted.path=value"),
        ("cluster.nodes.count=3", "cluster.nodes is a value, not a section"),
        ("cluster.colour=blue", "cluster.colour: unknown key"),
    ],
)
def test_bad_override_names_the_path(override, message):
    with pytest.raises(ScenarioError, match="<default scenario>: .*" + message.replace(".", r"\.")):
        load_scenario(None, [override])


def test_every_field_has_a_description():
    def walk(schema_model):
        for name, field in schema_model.model_fields.items():
            assert field.description, f"{schema_model.__name__}.{name} has no description"
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, Scenario.__mro__[1]):
                walk(annotation)

    walk(Scenario)
    assert Scenario.model_json_schema()["additionalProperties"] is False
