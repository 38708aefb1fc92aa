"""Schemas editors can use: the committed schemas/ files are what `clustersim schema`
prints, carry $schema/$id and the registries' names as enums, and accept every
scenario and sweep file in the repository while refusing a misspelt name."""

from __future__ import annotations

import json

import pytest
import yaml

from simulator import catalog, zoo
from simulator.collectives.backend import list_backends
from simulator.editor_schema import DRAFT, SCHEMA_FILES, scenario_field_paths
from simulator.frameworks import list_frameworks
from topologies import FABRICS, SERVER_LAYOUTS

from .conftest import REPO_ROOT
from .test_cli import run_main

jsonschema = pytest.importorskip("jsonschema")

SCHEMAS = REPO_ROOT / "schemas"


def committed(kind: str) -> dict:
    return json.loads((SCHEMAS / SCHEMA_FILES[kind]).read_text())


@pytest.mark.parametrize("kind", sorted(SCHEMA_FILES))
def test_committed_schema_matches_clustersim_schema(capsys, kind):
    args = ["schema"] if kind == "scenario" else ["schema", kind]
    code, out, _ = run_main(capsys, *args)
    assert code == 0
    assert (SCHEMAS / SCHEMA_FILES[kind]).read_text() == out, (
        f"schemas/{SCHEMA_FILES[kind]} is out of date: regenerate it with "
        f"`clustersim {' '.join(args)} > schemas/{SCHEMA_FILES[kind]}`")


@pytest.mark.parametrize("kind", sorted(SCHEMA_FILES))
def test_schema_declares_its_draft_and_id_and_is_valid(kind):
    schema = committed(kind)
    assert schema["$schema"] == DRAFT and schema["$id"].endswith(kind)
    jsonschema.Draft202012Validator.check_schema(schema)


def _string_enum(prop: dict) -> list[str]:
    if "enum" in prop:
        return prop["enum"]
    return next(b["enum"] for b in prop["anyOf"] if b.get("type") == "string")


def test_every_registry_name_is_an_enum():
    defs = committed("scenario")["$defs"]
    expected = {
        ("ClusterSpec", "gpu"): catalog.list_gpus(),
        ("NICSpec", "link"): catalog.list_links(),
        ("WorkloadSpec", "model"): zoo.list_models(),
        ("ServerSpec", "layout"): list(SERVER_LAYOUTS),
        ("FabricSpec", "topology"): list(FABRICS),
        ("CollectivesSpec", "backend"): list_backends(),
        ("TrainingSpec", "framework"): list_frameworks(),
    }
    for (model, field), names in expected.items():
        assert _string_enum(defs[model]["properties"][field]) == sorted(names), (model, field)
    # Literal fields (strategy, precision...) were enums already.
    assert "parameter_server" in defs["TrainingSpec"]["properties"]["strategy"]["enum"]


def _repository_files(kind: str):
    files = sorted((REPO_ROOT / "scenarios").rglob("*.yaml"))
    return [p for p in files if ("sweeps" in p.parts) == (kind == "sweep")]


@pytest.mark.parametrize("kind", sorted(SCHEMA_FILES))
def test_every_repository_file_is_valid_against_its_schema(kind):
    validator = jsonschema.Draft202012Validator(committed(kind))
    files = _repository_files(kind)
    assert files
    for path in files:
        errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
        assert not errors, (path, errors[:3])


@pytest.mark.parametrize("data,field", [
    ({"cluster": {"gpu": "V100-PCIe-16G"}}, "gpu"),
    ({"cluster": {"nic": {"link": "IB-EDRR"}}}, "link"),
    ({"workload": {"model": "resnet5"}}, "model"),
    ({"cluster": {"server": {"layout": "dgx-1"}}}, "layout"),
    ({"cluster": {"fabric": {"topology": "fat-tree"}}}, "topology"),
    ({"training": {"collectives": {"backend": "NCCL"}}}, "backend"),
    ({"training": {"framework": "pytorch"}}, "framework"),
    ({"variability": {"gpu_speed_factors": {"one": 0.5}}}, "gpu_speed_factors"),
])
def test_schema_refuses_a_misspelt_registry_name(data, field):
    errors = list(jsonschema.Draft202012Validator(committed("scenario")).iter_errors(data))
    assert errors and field in errors[0].absolute_path


def test_sweep_schema_knows_axis_paths_and_their_values():
    schema = committed("sweep")
    validator = jsonschema.Draft202012Validator(schema)
    assert schema["$defs"]["AxisValues"]["propertyNames"]["enum"] == scenario_field_paths()
    good = {"base": {"cluster": {"gpu": "A100-SXM4-80GB"}}, "axes": {
        "grid": {"cluster.nodes": [1, 2]}, "zip": {"workload.model": ["resnet50"]},
        "random": {"samples": 2, "params": {"workload.precision": ["fp32", "fp16"],
                                            "cluster.nic.bandwidth_gbps": {"loguniform": [10, 100]}}}}}
    assert not list(validator.iter_errors(good))
    for bad in ({"axes": {"grid": {"cluster.node": [1, 2]}}},  # unknown path
                {"axes": {"grid": {"cluster.gpu": ["V100"]}}},  # unknown GPU in an axis
                {"axes": {"random": {"samples": 1, "params": {"workload.batch": {"randint": [1, 2]}}}}},
                {"base": {"cluster": {"gpu": "V100"}}}):  # an inline base is a scenario
        assert list(validator.iter_errors(bad)), bad


def test_field_paths_are_the_sweep_checks_paths():
    from simulator.sweep.spec import check_path

    paths = scenario_field_paths()
    assert "cluster.nic.bandwidth_gbps" in paths and "training.parameter_servers.count" in paths
    assert all(check_path(p) is None for p in paths)
