"""The accuracy ratchet: the dev set's error figures may only improve.

Recomputes the deterministic dev-set figures (``benchmarks/accuracy_validation.py
--ratchet``) and compares them with ``benchmarks/results/dev_set_record.json``. When a
change makes them better, record the new figures with ``--ratchet --record``; a change
that makes any of them worse fails here."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _benchmark():
    spec = importlib.util.spec_from_file_location("accuracy_validation", ROOT / "benchmarks" / "accuracy_validation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def figures_and_record(dev_set_validation):
    bench = _benchmark()
    files = [str(p.relative_to(ROOT)) for p in bench.DEV_SET]
    assert sorted(files) == sorted(dev_set_validation), "the ratchet and the shared fixture list different files"
    figures = bench.dev_set_figures([dev_set_validation[f] for f in files])
    return figures, json.loads(bench.RECORD.read_text()), bench.RATCHETED


def test_dev_set_is_as_large_as_recorded(figures_and_record):
    figures, record, _ = figures_and_record
    for key in ("training_n", "training_hard_n", "collectives_n", "llm_n"):
        assert figures[key] >= record[key], key


def test_no_error_figure_got_worse(figures_and_record):
    figures, record, ratcheted = figures_and_record
    worse = {k: (figures[k], record[k]) for k in ratcheted if figures[k] > record[k] + 1e-9}
    assert not worse, f"worse than recorded (now, recorded): {worse}"
