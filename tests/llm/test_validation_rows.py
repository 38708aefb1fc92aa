"""Measured LLM training rows through `clustersim validate`: shapes and parallelism in,
the row's metric out, the trivial reference beside it, and unsupported rows reported."""

from __future__ import annotations

import csv

import pytest

from simulator.validation import read_cases, validate
from simulator.validation.cases import COLUMNS

ROW = {
    "case_id": "t-llama2-7b-16", "source": "test", "model": "llama2-7b", "layers": "32", "hidden": "4096",
    "heads": "32", "kv_heads": "32", "ffn_hidden": "11008", "vocab": "32000", "seq_len": "4096",
    "gpu": "A100-SXM4-80GB", "nodes": "2", "gpus_per_node": "8", "intra_node": "nvswitch", "network": "infiniband",
    "network_gbps": "1600", "tp": "1", "pp": "1", "dp": "16", "micro_batch": "2", "global_batch": "64",
    "fsdp": "full_shard", "recompute": "none", "precision": "bf16", "metric": "tokens_per_s_per_gpu", "value": "3000",
}


def write(tmp_path, rows):
    path = tmp_path / "llm.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        w.writeheader()
        w.writerows(rows)
    return path


def test_a_row_is_simulated_in_its_metric_with_the_reference(tmp_path):
    rows = [ROW, {**ROW, "case_id": "t-tokens", "metric": "tokens_per_s", "value": "48000"},
            {**ROW, "case_id": "t-mfu", "metric": "mfu", "value": "0.5"},
            {**ROW, "case_id": "t-step", "metric": "iteration_time_s", "value": "5.0"}]
    df = validate(write(tmp_path, rows)).set_index("case_id")
    assert df["error"].isna().all(), df["error"].tolist()
    per_gpu, total = df.loc["t-llama2-7b-16", "predicted"], df.loc["t-tokens", "predicted"]
    assert total == pytest.approx(per_gpu * 16)
    assert df.loc["t-step", "predicted"] == pytest.approx(64 * 4096 / total)
    # the reference: 6 N FLOPs per token at 40% of the A100's 312 TFLOP/s dense bf16
    n = 6_738_415_616
    assert df.loc["t-llama2-7b-16", "reference"] == pytest.approx(0.4 * 312e12 / (6 * n))
    assert 0.2 < df.loc["t-mfu", "predicted"] < 0.8


def test_rows_the_model_cannot_run_are_reported_not_hidden(tmp_path):
    rows = [{**ROW, "case_id": "t-fp8", "precision": "fp8"},
            {**ROW, "case_id": "t-nobatch", "global_batch": ""},
            {**ROW, "case_id": "t-nolayout", "tp": "", "pp": "", "dp": "", "fsdp": ""}]
    df = validate(write(tmp_path, rows)).set_index("case_id")
    assert "fp8" in df.loc["t-fp8", "error"]
    assert "global_batch" in df.loc["t-nobatch", "error"]
    assert "parallel layout" in df.loc["t-nolayout", "error"]


def test_the_shipped_llm_dev_set_reads():
    cases, errors = read_cases("scenarios/validation/llm_cases.csv")
    assert len(cases) >= 100
    sources = {c.source for c in cases}
    assert len(sources) >= 10
    # rows without shapes are kept out as errors with their line, never dropped silently
    assert all(e.line > 1 for e in errors)


@pytest.mark.parametrize(("framework", "gather"), [
    ("DeepSpeed 0.3 ZeRO-3 (as baseline in the Megatron SC'21 paper)", "parameter"),
    ("Megatron-DeepSpeed + DeepSpeed 0.5.10 ZeRO-3", "parameter"),
    ("Megatron-DeepSpeed + DeepSpeed 0.6.2 ZeRO-3 (CPU offload)", "block"),
    ("PyTorch FSDP + SDPA flash-attention v2", "block"),
    ("DeepSpeed ZeRO-3", "block"),  # no version stated: today's behaviour
])
def test_a_zero3_row_gathers_as_the_deepspeed_version_it_names(tmp_path, framework, gather):
    from simulator.validation.llm_cases import llm_case_scenario

    (case,), errors = read_cases(write(tmp_path, [{**ROW, "framework": framework}]))
    assert not errors
    scenario, _ = llm_case_scenario(case)
    assert scenario.training.parallelism.zero_stage == 3
    assert scenario.training.parallelism.zero3_gather == gather


@pytest.mark.parametrize(("network", "transport"), [("", "rdma"), ("infiniband", "rdma"), ("roce", "rdma"),
                                                    ("ethernet", "socket"), ("efa", None)])
def test_a_transformer_row_drives_its_nics_with_its_networks_transport(tmp_path, network, transport):
    """InfiniBand when no network is named (the clusters these runs are published from);
    EFA (libfabric) is neither verbs nor sockets: the backend's general figure."""
    from simulator.validation.llm_cases import llm_case_scenario

    (case,), errors = read_cases(write(tmp_path, [{**ROW, "network": network, "network_gbps": "1600"}]))
    assert not errors
    scenario, _ = llm_case_scenario(case)
    assert scenario.cluster.nic.transport == transport
