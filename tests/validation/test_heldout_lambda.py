"""Held-out multi-GPU check (benchmarks/heldout_lambda_non_xla.py): Lambda's PCIe
servers without XLA, 80 runs not in the dev set, nothing refitted. The fp32 runs are
predicted within 6% at the median and 15% at p90, and better than "one-GPU x GPUs" on
the same rows. (The fp16 runs of the batch-norm models lose what the model does not
have: README, "Where the model is weak".)"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


@pytest.fixture(scope="module")
def frame():
    from heldout_lambda_non_xla import results

    return results()


def test_the_held_out_fp32_runs_are_predicted_better_than_linear_scaling(frame):
    assert len(frame) == 80 and frame.error.isna().all()
    fp32 = frame[frame.group == "fp32"]
    assert len(fp32) == 40
    ape, ref = fp32.rel_error.abs(), fp32.reference_rel_error.abs()
    assert ape.median() < 0.06 and ape.quantile(0.9) < 0.15
    assert ape.median() < ref.median() and ape.quantile(0.9) < ref.quantile(0.9)

