"""Profiles: validated on load with clear errors; the engine uses them and says so."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from calibration.fit import refit
from simulator.cli import main
from simulator.engine import build, simulate
from simulator.errors import CalibrationError
from simulator.loading import load_scenario
from simulator.profile import load_profile

from ..conftest import REPO_ROOT
from . import synthetic

SHIPPED = sorted((REPO_ROOT / "calibration" / "profiles").glob("*.json"))


@pytest.fixture
def profile_path(tmp_path) -> Path:
    path = tmp_path / "synthetic.json"
    path.write_text(refit(synthetic.profile()).to_json())
    return path


def _scenario(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


def test_profile_round_trips(profile_path):
    loaded = load_profile(profile_path)
    assert loaded.schema_version == 3
    assert loaded.collectives.fit("allreduce", 2).fit.beta_bytes_per_s == pytest.approx(synthetic.BETA)


@pytest.mark.parametrize("damage,message", [
    (lambda text: text[: len(text) // 2], "not valid JSON (truncated?)"),
    (lambda text: "{ this is not json", "not valid JSON"),
    (lambda text: text.replace('"schema_version": 3', '"schema_version": 99'), "schema_version: profile is version 99"),
    (lambda text: text.replace('"schema_version": 3,', ''), "schema_version: missing"),
    (lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "environment"}), "environment: Field required"),
    (lambda text: text.replace('"backend": "gloo"', '"backend": "gloo", "colour": "red"'), "collectives.colour: unknown key"),
    (lambda text: text.replace('"wall_s": 0.0', '"wall_s": "soon"'), "provenance.wall_s"),
    (lambda text: "[1, 2]", "must be a JSON object"),
])
def test_a_damaged_profile_is_a_located_calibration_error(profile_path, damage, message):
    profile_path.write_text(damage(profile_path.read_text()))
    with pytest.raises(CalibrationError, match=re.escape(message)) as info:
        load_profile(profile_path)
    assert str(profile_path.resolve()) in str(info.value)


def test_missing_profile_is_a_calibration_error(tmp_path):
    with pytest.raises(CalibrationError, match="no such calibration profile"):
        load_profile(tmp_path / "nope.json")


def test_bad_profile_in_a_scenario_exits_2_with_one_line(tmp_path, capsys):
    (tmp_path / "bad.json").write_text('{"format": "clustersim-profile", "schema_version": 1, "environ')
    path = _scenario(tmp_path, "calibration: bad.json\n")
    with pytest.raises(SystemExit, match=r"^2$") as info:  # a SystemExit's message is its code
        main(["simulate", str(path)])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.startswith("error: ") and "bad.json" in err and "Traceback" not in err


def test_calibrated_layers_are_the_fit_at_the_scenario_batch(tmp_path, profile_path):
    path = _scenario(tmp_path, f"calibration: {profile_path.name}\nworkload: {{model: alexnet, batch_per_gpu: 6}}\n")
    sim = build(load_scenario(path))  # relative path resolved against the scenario's folder
    for i in range(len(sim.model.layers)):
        af, bf, ab, bb = synthetic.layer_params(i)
        assert sim.costs.forward_s[i] == pytest.approx(af + 6 * bf, rel=1e-9)
        assert sim.costs.backward_s[i] == pytest.approx(ab + 6 * bb, rel=1e-9)
    assert sim.costs.optimizer_s == pytest.approx(0.003)
    report = sim.calibration.report
    assert report["layers_calibrated"] == 21 and report["layers_estimated"] == 0
    assert "stands in for cluster.gpu" in report["device"]


def test_calibrated_allreduce_time_is_the_alpha_beta_fit(tmp_path, profile_path):
    path = _scenario(tmp_path, f"calibration: {profile_path}\ncluster: {{nodes: 1, gpus_per_node: 2}}\n"
                               "workload: {model: alexnet, batch_per_gpu: 4}\n")
    sim = build(load_scenario(path))
    for nbytes, key in ((1e6, (0, 0)), (1e8, (0, 1))):
        start = sim.env.now
        sim.env.run(until=sim.sync.ready(0, key, nbytes))
        assert sim.env.now - start == pytest.approx(synthetic.ALPHA_S + nbytes / synthetic.BETA, rel=1e-6)
    result = simulate(load_scenario(path))
    assert result.extra["calibration"]["communication"].startswith("calibrated")


def test_uncovered_world_size_and_model_fall_back_to_estimates_and_say_so(tmp_path, profile_path):
    path = _scenario(tmp_path, f"calibration: {profile_path}\ncluster: {{nodes: 2, gpus_per_node: 2}}\n"
                               "workload: {model: resnet18, batch_per_gpu: 4}\n")
    report = simulate(load_scenario(path)).extra["calibration"]
    assert report["layers_calibrated"] == 0 and report["layers_estimated"] == 68
    assert report["communication"].startswith("estimated (network model)")
    assert report["optimizer_step"].startswith("estimated")


def test_a_profile_of_another_catalog_gpu_is_refused(tmp_path):
    path = tmp_path / "a100.json"
    path.write_text(refit(synthetic.profile(catalog_gpu="A100-SXM4-40GB")).to_json())
    scenario = load_scenario({"calibration": str(path), "cluster": {"gpu": "V100-PCIe-16GB"}})
    with pytest.raises(CalibrationError, match="measured on 'A100-SXM4-40GB'"):
        build(scenario)
    ok = load_scenario({"calibration": str(path), "cluster": {"gpu": "A100-SXM4-40GB"},
                        "workload": {"model": "alexnet"}})
    assert build(ok).calibration.report["device"].endswith("= catalog A100-SXM4-40GB")


def test_other_precisions_are_refused(profile_path):
    with pytest.raises(CalibrationError, match="fp32 timings"):
        build(load_scenario({"calibration": str(profile_path), "workload": {"precision": "amp"}}))


def test_calibrate_command_refits_raw_samples(tmp_path, capsys):
    raw = tmp_path / "raw.json"
    raw.write_text(synthetic.profile().to_json())  # samples only, no fits
    out = tmp_path / "fitted.json"
    with pytest.raises(SystemExit, match=r"^0?$") as info:  # success: code 0 (or None, which reads as "")
        main(["calibrate", str(raw), "-o", str(out)])
        raise SystemExit(0)
    assert (info.value.code or 0) == 0
    fitted = load_profile(out)
    assert len(fitted.models[0].fits) == 2 * 21
    assert fitted.collectives.fit("allreduce", 2).fit.alpha_s == pytest.approx(synthetic.ALPHA_S, rel=1e-6)
    raw.write_text(raw.read_text()[:100])
    with pytest.raises(SystemExit, match=r"^2$") as info:
        main(["calibrate", str(raw), "-o", str(out)])
    assert info.value.code == 2 and "truncated" in capsys.readouterr().err


def test_scenario_without_calibration_reports_none(capsys):
    with pytest.raises(SystemExit, match=r"^0?$"):  # success: main returns, or exits 0
        main(["simulate", "--set", "cluster.nodes=1"])
        raise SystemExit(0)
    assert "calibration: none" in capsys.readouterr().out


@pytest.mark.skipif(not SHIPPED, reason="no shipped profile yet")
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_profiles_load_and_carry_provenance(path):
    profile = load_profile(path)
    assert profile.provenance.complete and profile.provenance.command.startswith(("clustersim probe", "clustersim selfcheck"))
    assert profile.environment.device_kind == "cpu"  # no GPU was lent: no GPU profile is shipped
    assert "No GPU was lent" in profile.provenance.notes
    assert profile.models and profile.collectives and profile.collectives.fits
