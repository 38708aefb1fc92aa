"""Validation against measured runs: row errors, JSON keys, a self-consistent case,
the shipped dataset, CLI exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator import load_scenario, simulate
from simulator.catalog import get_link
from simulator.cli import main
from simulator.validation import read_cases, summarize, to_json_dict, validate
from simulator.validation.cases import COLUMNS, MeasuredCase
from simulator.validation.run import SIMULATION, case_scenario, predict_case

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = REPO_ROOT / "scenarios" / "validation" / "published_cases.csv"
HEADER = ",".join(COLUMNS)


def _row(**kw) -> str:
    return ",".join(str(kw.get(c, "")) for c in COLUMNS)


def _write(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "cases.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


GOOD = dict(case_id="good", source="test", model="resnet50", gpu="V100-SXM2-16GB", nodes=1, gpus_per_node=8,
            intra_node="nvlink", strategy="ring_allreduce", batch_per_gpu=64, precision="fp32",
            metric="throughput_samples_per_s", value=2000)


def test_malformed_rows_get_their_own_error_and_the_others_run(tmp_path):
    path = _write(
        tmp_path,
        _row(**GOOD),
        _row(**{**GOOD, "case_id": "bad-value", "value": "fast"}),
        _row(**{**GOOD, "case_id": "bad-gpu", "gpu": "GPU-9000"}),
        _row(**{**GOOD, "case_id": "no-model", "model": ""}),
        _row(**{**GOOD, "case_id": "good"}),  # duplicate id
    )
    cases, errors = read_cases(path)
    assert [c.case_id for c in cases] == ["good", "bad-gpu"]
    assert {e.case_id for e in errors} == {"bad-value", "no-model", "good"}
    assert any("value" in e.message for e in errors)
    df = validate(path).set_index("case_id")
    assert df.loc["bad-gpu", "error"] and "GPU-9000" in df.loc["bad-gpu", "error"]
    good = df[df["error"].isna()]
    assert len(good) == 1 and good["predicted"].iloc[0] > 0
    assert summarize(validate(path))["n"] == 1


def test_json_has_the_documented_keys(tmp_path):
    d = to_json_dict(validate(_write(tmp_path, _row(**GOOD))))
    assert set(d) == {"cases", "summary"}
    assert {"case_id", "measured", "predicted", "rel_error", "error"} <= set(d["cases"][0])
    assert {"n", "median_ape", "mean_ape", "max_ape"} <= set(d["summary"])
    json.dumps(d)  # serializable


def test_a_case_made_from_a_simulated_result_validates_with_zero_error(tmp_path):
    data = {
        "cluster": {"nodes": 2, "gpus_per_node": 4, "gpu": "V100-PCIe-16GB",
                    "server": {"layout": "pcie_tree"}, "nic": {"link": None, "bandwidth_gbps": 25, "latency_us": 20}},
        "workload": {"model": "resnet50", "batch_per_gpu": 32},
        "training": {"strategy": "ring_allreduce"},
        "simulation": SIMULATION,
    }
    r = simulate(load_scenario(data))
    row = dict(case_id="self", source="sim", model="resnet50", gpu="V100-PCIe-16GB", nodes=2, gpus_per_node=4,
               intra_node="pcie", network="ethernet", network_gbps=25, strategy="ring_allreduce",
               batch_per_gpu=32, precision="fp32")
    path = _write(
        tmp_path,
        _row(**row, metric="throughput_samples_per_s", value=repr(r.throughput_samples_per_s)),
        _row(**{**row, "case_id": "self-speedup"}, metric="speedup", value=repr(r.speedup)),
    )
    df = validate(path)
    assert df["error"].isna().all()
    assert df["rel_error"].abs().max() < 1e-9


def test_a_measured_baseline_calibrates_compute_exactly_on_one_gpu(tmp_path):
    one = {**GOOD, "gpus_per_node": 1, "intra_node": "pcie", "value": 300, "baseline_throughput_samples_per_s": 300}
    df = validate(_write(tmp_path, _row(**one)))
    assert df["predicted"].iloc[0] == pytest.approx(300, rel=1e-9)


def test_ring_allreduce_collective_case_matches_the_closed_form(tmp_path):
    # Two GPUs on one NVSwitch at 50 GB/s (the given figure is the usable one):
    # ring = 2(N-1)/N x S / B + latencies = S / B for N = 2.
    (tmp_path / "pair.yaml").write_text(
        "cluster: {nodes: 1, gpus_per_node: 2, gpu: RTX-2080Ti, server: {layout: nvswitch, "
        "nvlink_bandwidth_gbytes_s: 50}}\ntraining: {collectives: {backend: ideal}}\n", encoding="utf-8")
    path = _write(tmp_path, _row(case_id="c", source="t", metric="collective_time_s", value=1e-3,
                                 scenario="pair.yaml", collective="allreduce", message_bytes=1e8))
    p = validate(path)["predicted"].iloc[0]
    assert p == pytest.approx(1e8 / 50e9, rel=0.01)


def test_shipped_dataset_has_40_cases_from_4_sources_and_runs():
    cases, errors = read_cases(SHIPPED)
    assert not errors
    assert len(cases) >= 40
    assert len({c.source for c in cases}) >= 4
    assert any(c.strategy == "parameter_server" for c in cases)
    assert {"pcie", "nvlink"} <= {c.intra_node for c in cases}
    assert any(c.nodes > 1 for c in cases) and any(c.nodes == 1 for c in cases)
    df = validate(SHIPPED)
    assert df["error"].isna().all(), df[df["error"].notna()][["case_id", "error"]]
    s = summarize(df)
    assert s["n"] == len(cases)


def test_cli_exit_codes(tmp_path, capsys):
    with pytest.raises(SystemExit, match=r"^2$") as exc:  # a SystemExit's message is its code
        main(["validate", str(tmp_path / "missing.csv")])
    assert exc.value.code == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("case_id,colour\nx,red\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"^2$") as exc:
        main(["validate", str(bad)])
    assert exc.value.code == 2
    assert "colour" in capsys.readouterr().err
    out = tmp_path / "out.json"
    main(["validate", str(_write(tmp_path, _row(**GOOD))), "--json", str(out), "--plot", str(tmp_path / "p.png")])
    assert json.loads(out.read_text())["summary"]["n"] == 1
    assert (tmp_path / "p.png").stat().st_size > 0


def test_a_measured_case_on_roce_gets_the_catalog_roce_latency() -> None:
    fields = dict(case_id="x", source="s", model="resnet50", gpu="V100-PCIe-16GB", nodes=2, gpus_per_node=1,
                  intra_node="pcie", network_gbps=25, strategy="ring_allreduce", batch_per_gpu=32, precision="fp32",
                  metric="throughput_samples_per_s", value=100.0)
    roce, _ = case_scenario(MeasuredCase(**fields, network="roce"), None)
    tcp, _ = case_scenario(MeasuredCase(**fields, network="ethernet"), None)
    assert roce.cluster.nic.latency_us == get_link("25GbE-RoCE").latency_us == 2.0
    assert tcp.cluster.nic.latency_us == 20.0
    # and the transport its library drives: verbs on RoCE and InfiniBand, sockets on Ethernet
    ib, _ = case_scenario(MeasuredCase(**fields, network="infiniband"), None)
    aries, _ = case_scenario(MeasuredCase(**fields, network="aries"), None)
    transports = (roce.cluster.nic.transport, ib.cluster.nic.transport, tcp.cluster.nic.transport)
    assert transports == ("rdma", "rdma", "socket")
    assert aries.cluster.nic.transport is None  # neither: the backend's general figure
    with pytest.raises(ValueError, match="network"):
        MeasuredCase(**fields, network="rdma")


def test_a_multi_node_row_without_bandwidth_gets_its_networks_typical_figure_or_is_refused() -> None:
    fields = dict(case_id="x", source="s", model="resnet50", gpu="V100-PCIe-16GB", nodes=2, gpus_per_node=1,
                  intra_node="pcie", strategy="ring_allreduce", batch_per_gpu=32, precision="fp32",
                  metric="throughput_samples_per_s", value=100.0)
    ib, note = case_scenario(MeasuredCase(**fields, network="infiniband"), None)
    # one NIC on a one-GPU PCIe server carries the node's typical IB-EDR 100 Gb/s
    assert ib.cluster.nic.bandwidth_gbps == get_link("IB-EDR").line_rate_gbps == 100.0
    assert "typical 100 Gb/s" in note
    assert ib.cluster.nic.latency_us == get_link("IB-EDR").latency_us == 1.1
    eth, note = case_scenario(MeasuredCase(**fields), None)  # no network named: Ethernet at 10GbE
    assert eth.cluster.nic.bandwidth_gbps == 10.0 and "ethernet at its typical 10 Gb/s" in note
    # Omni-Path has no typical figure here: the row must say its bandwidth
    with pytest.raises(ValueError, match="'network_gbps' is required for network 'omnipath'"):
        MeasuredCase(**fields, network="omnipath")
    assert MeasuredCase(**fields, network="omnipath", network_gbps=100).network_gbps == 100


@pytest.mark.parametrize(("strategy", "algorithm"), [
    ("ring_allreduce", "ring"), ("tree_allreduce", "tree"), ("hierarchical_allreduce", "hierarchical"),
    ("halving_doubling_allreduce", "halving_doubling"), ("parameter_server", "ring"), ("auto", "auto"),
    ("fastest", "auto"),
])
def test_a_rows_allreduce_algorithm_is_the_strategy_registrys(strategy: str, algorithm: str) -> None:
    from simulator.validation.run import allreduce_algorithm

    assert allreduce_algorithm(strategy) == algorithm


def test_a_baseline_at_another_batch_reaches_the_scenario_and_needs_its_throughput() -> None:
    fields = dict(case_id="x", source="s", model="googlenet", gpu="P100-PCIe-16GB", nodes=1, gpus_per_node=4,
                  intra_node="pcie", strategy="ring_allreduce", batch_per_gpu=36, precision="fp32",
                  metric="throughput_samples_per_s", value=700.0)
    case = MeasuredCase(**fields, baseline_throughput_samples_per_s=220.0, baseline_batch_per_gpu=144)
    scenario, _ = case_scenario(case, None)
    predicted = predict_case(case)
    assert predicted.reference == pytest.approx(4 * 220.0)  # the measured one-GPU run x GPUs
    assert predicted.measured_efficiency == pytest.approx(700.0 / 880.0)
    assert scenario.workload.batch_per_gpu == 36
    with pytest.raises(ValueError, match="'baseline_batch_per_gpu' is the batch of baseline_throughput"):
        MeasuredCase(**fields, baseline_batch_per_gpu=144)
