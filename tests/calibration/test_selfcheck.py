"""`clustersim selfcheck` plumbing on a stubbed tiny matrix: rows, summary, --json,
Ctrl-C keeping what finished. No torch, no real runs, no timing."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from calibration import selfcheck as sc
from calibration.fit import refit

from . import synthetic


@dataclass
class FakeMeasurement:
    throughput_samples_per_s: float
    median_s: float
    threads: int = 1


def _measure_stub(interrupt_at: int | None = None):
    calls = []

    def measure(config, model, procs, batch):
        calls.append((model, procs, batch))
        if interrupt_at is not None and len(calls) == interrupt_at:
            raise KeyboardInterrupt
        return FakeMeasurement(throughput_samples_per_s=10.0 * procs, median_s=batch / 10.0)

    return measure, calls


def _predict(measurement, profile, csv_path, command, load_before):
    # +10% on one process, -20% on two: the summary's median and max are known.
    factor = 1.1 if measurement.throughput_samples_per_s == 10.0 else 0.8
    return f"case-{measurement.throughput_samples_per_s:g}", measurement.throughput_samples_per_s * factor


@pytest.fixture
def profile(tmp_path):
    path = tmp_path / "profile.json"
    path.write_text(refit(synthetic.profile()).to_json())
    return path


CONFIG = sc.SelfcheckConfig(models=("alexnet",), procs=(1, 2), batches=(2, 4))


def test_every_run_is_measured_predicted_and_summarized(tmp_path, profile):
    measure, calls = _measure_stub()
    report = sc.run_selfcheck(CONFIG, tmp_path / "out", profile=profile, show_progress=False, echo=lambda _: None,
                              measure_fn=measure, predict_fn=_predict)
    assert calls == [("alexnet", 1, 2), ("alexnet", 1, 4), ("alexnet", 2, 2), ("alexnet", 2, 4)]
    assert [round(r.rel_error, 9) for r in report.rows] == [0.1, 0.1, -0.2, -0.2]
    s = report.summary()
    assert s["n"] == 4 and s["median_ape"] == pytest.approx(15.0) and s["max_ape"] == pytest.approx(20.0)
    assert report.interrupted_during is None
    text = sc.format_report(report)
    assert "alexnet 2 procs, batch 4" in text and "-20.0%" in text and "median 15.0%, max 20.0%" in text


def test_ctrl_c_keeps_what_finished(tmp_path, profile):
    measure, calls = _measure_stub(interrupt_at=3)
    report = sc.run_selfcheck(CONFIG, tmp_path / "out", profile=profile, show_progress=False, echo=lambda _: None,
                              measure_fn=measure, predict_fn=_predict)
    assert len(calls) == 3 and len(report.rows) == 2
    assert report.interrupted_during == "alexnet 2 procs, batch 2"
    assert "interrupted during alexnet 2 procs, batch 2" in sc.format_report(report)


def test_a_failed_run_is_reported_and_the_others_still_run(tmp_path, profile):
    measure, _ = _measure_stub()

    def predict(measurement, *args):
        if measurement.median_s == 0.4:
            raise RuntimeError("no\nway")
        return _predict(measurement, *args)

    report = sc.run_selfcheck(CONFIG, tmp_path / "out", profile=profile, show_progress=False, echo=lambda _: None,
                              measure_fn=measure, predict_fn=predict)
    assert [r.error for r in report.rows] == [None, "no way", None, "no way"]
    assert report.summary()["failed"] == 2 and report.summary()["n"] == 2


def test_an_interrupted_probe_stops_before_any_run(tmp_path):
    def probe(config, output, show_progress, echo):
        raise KeyboardInterrupt

    measure, calls = _measure_stub()
    report = sc.run_selfcheck(CONFIG, tmp_path / "out", show_progress=False, echo=lambda _: None, probe_fn=probe,
                              measure_fn=measure, predict_fn=_predict)
    assert report.interrupted_during == "probe" and report.rows == [] and calls == []


def test_command_line_json_and_exit_130_on_ctrl_c(tmp_path, profile, monkeypatch, capsys):
    measure, _ = _measure_stub(interrupt_at=2)
    monkeypatch.setattr(sc, "default_measure", measure)
    monkeypatch.setattr(sc, "default_predict", _predict)
    code = sc.main(["--profile", str(profile), "--models", "alexnet", "--procs", "1,2", "--batches", "2",
                    "--no-progress", "-o", str(tmp_path / "out"), "--json", "-"])
    assert code == 130
    out = capsys.readouterr()
    data = json.loads(out.out)  # the JSON alone on standard output; the table on standard error
    assert [r["procs"] for r in data["runs"]] == [1] and data["interrupted_during"] == "alexnet 2 procs, batch 2"
    assert data["summary"]["n"] == 1 and data["summary"]["max_ape"] == pytest.approx(10.0)
    assert data["runs"][0]["load_before"] is None or data["runs"][0]["load_before"] >= 0
    assert "interrupted during" in out.err


def test_command_line_writes_a_json_file_and_refuses_unknown_models(tmp_path, profile, monkeypatch, capsys):
    measure, _ = _measure_stub()
    monkeypatch.setattr(sc, "default_measure", measure)
    monkeypatch.setattr(sc, "default_predict", _predict)
    target = tmp_path / "report.json"
    assert sc.main(["--profile", str(profile), "--models", "alexnet", "--procs", "1", "--batches", "2,4",
                    "--no-progress", "-o", str(tmp_path / "out"), "--json", str(target)]) == 0
    assert len(json.loads(target.read_text())["runs"]) == 2
    assert sc.main(["--profile", str(profile), "--models", "alexnett", "-o", str(tmp_path / "out")]) == 2
    assert "did you mean 'alexnet'" in capsys.readouterr().err


def test_the_report_prints_the_machines_own_drift_beside_the_errors(tmp_path):
    """The probe's one-process step times (the profile's training_step) against the same
    steps timed by the runs: |0.4 - 0.5| / 0.5 = 20% at batch 4, 0% at batch 2; the
    two-process runs are not the probe's (its two-process steps have no allreduce)."""
    from simulator.profile_schema import Timing, TrainingSteps, WholeModelSample

    base = synthetic.profile()
    steps = TrainingSteps(threads=2, processes=1, samples=[WholeModelSample(batch=b, timing=Timing(times_s=[t]))
                                                           for b, t in ((2, 0.2), (4, 0.5))])
    model = base.models[0].model_copy(update={"threads": 2, "training_step": steps})
    path = tmp_path / "profile.json"
    path.write_text(refit(base.model_copy(update={"models": [model]})).to_json())

    def measure(config, model, procs, batch):
        return FakeMeasurement(throughput_samples_per_s=10.0 * procs, median_s=batch / 10.0, threads=2 // procs)

    report = sc.run_selfcheck(CONFIG, tmp_path / "out", profile=path, show_progress=False, echo=lambda _: None,
                              measure_fn=measure, predict_fn=_predict)
    assert [r.probe_step_s for r in report.rows] == [0.2, 0.5, None, None]
    s = report.summary()
    assert s["noise_n"] == 2
    assert s["noise_median_pct"] == pytest.approx(10.0) and s["noise_max_pct"] == pytest.approx(20.0)
    assert "differs by median 10.0%, max 20.0% (2 runs)" in sc.format_report(report)
    assert json.loads(json.dumps(report.to_json_dict()))["summary"]["noise_max_pct"] == pytest.approx(20.0)
