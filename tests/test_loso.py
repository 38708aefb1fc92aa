"""The leave-one-source-out selection of the accuracy scripts (benchmarks/loso.py): a
held-out source never sees its own cases, and every source weighs the same however many
rows it has."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from .conftest import REPO_ROOT


@pytest.fixture(scope="module")
def loso():
    spec = importlib.util.spec_from_file_location("loso", REPO_ROOT / "benchmarks" / "loso.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Three sources: "big" (8 rows) is predicted exactly by grid point 0, "a" and "b" (1 row
# each) by grid point 1. Every prediction is measured x e^(0 or 0.5).
MEASURED = np.ones(10)
SOURCES = np.array(["big"] * 8 + ["a", "b"])
PREDICTIONS = np.vstack([
    np.r_[np.ones(8), np.full(2, np.e ** 0.5)],  # point 0: right for big only
    np.r_[np.full(8, np.e ** 0.5), np.ones(2)],  # point 1: right for a and b only
])
COMBOS = [(0,), (1,)]


def test_every_source_counts_once_whatever_its_number_of_rows(loso):
    _, fitted = loso.leave_one_source_out(PREDICTIONS, MEASURED, SOURCES, ["p"], COMBOS)
    # Without "a": big (mean 0 at point 0) and b (0 at point 1) tie at 0.25 -> the first.
    assert fitted["a"] == {"p": 0}
    # Without "big": a and b both prefer point 1.
    assert fitted["big"] == {"p": 1}
    # All sources: point 0 costs (0 + 0.5 + 0.5) / 3, point 1 (0.5 + 0 + 0) / 3.
    assert fitted["(all sources)"] == {"p": 1}


def test_case_weighting_lets_the_largest_source_decide(loso):
    _, fitted = loso.leave_one_source_out(PREDICTIONS, MEASURED, SOURCES, ["p"], COMBOS, weighting="case")
    assert fitted["(all sources)"] == {"p": 0}  # 8 rows at 0 against 2 rows at 0.5
    assert fitted["a"] == {"p": 0}


def test_the_held_out_source_is_predicted_with_parameters_fitted_without_it(loso):
    cv, fitted = loso.leave_one_source_out(PREDICTIONS, MEASURED, SOURCES, ["p"], COMBOS)
    assert fitted["big"] == {"p": 1}
    np.testing.assert_allclose(cv[:8], np.e ** 0.5)  # big predicted by point 1, its worse point


def test_an_unknown_weighting_is_refused(loso):
    with pytest.raises(ValueError, match="weighting must be"):
        loso.leave_one_source_out(PREDICTIONS, MEASURED, SOURCES, ["p"], COMBOS, weighting="rows")


# Two parameters; q only moves source "c". Without "c", points (0, 0) and (1, 0) cost
# 0.100 and 0.101 over "a" and "b" (the runner-up 1% behind); c is predicted exactly by
# p = 1 and e^0.4 off by p = 0.
TIE_MEASURED = np.ones(3)
TIE_SOURCES = np.array(["a", "b", "c"])
TIE_NAMES = ["p", "q"]
TIE_COMBOS = [(0, 0), (0, 1), (1, 0), (1, 1)]
_TIE_LOGERR = {0: [0.1, 0.1, 0.4], 1: [0.101, 0.101, 0.0]}
TIE_PREDICTIONS = np.exp(np.array([_TIE_LOGERR[p] for p, _ in TIE_COMBOS]))


def _tie_calls(loso, within):
    return loso.close_calls(TIE_PREDICTIONS, TIE_MEASURED, TIE_SOURCES, TIE_NAMES, TIE_COMBOS, within=within)


def test_a_fold_decided_by_a_hair_is_named_with_what_the_runner_up_would_have_predicted(loso):
    [call] = [c for c in _tie_calls(loso, 0.02) if c["source"] == "c"]
    assert call["chosen"] == {"p": 0, "q": 0}  # q does not move the other sources: the first point
    assert call["runner_up"] == {"p": 1}
    assert call["margin"] == pytest.approx(0.01)
    assert call["held_out_logerr"] == pytest.approx(0.4) and call["runner_up_held_out_logerr"] == pytest.approx(0.0)
    # a 0.5% tolerance no longer counts it; nor do folds whose runner-up is far behind
    assert not [c for c in _tie_calls(loso, 0.005) if c["source"] == "c"]


def test_flipping_the_close_calls_predicts_each_such_source_with_its_runner_up(loso):
    cv, _ = loso.leave_one_source_out(TIE_PREDICTIONS, TIE_MEASURED, TIE_SOURCES, TIE_NAMES, TIE_COMBOS)
    np.testing.assert_allclose(cv, np.exp([0.101, 0.101, 0.4]))  # a, b held out: p = 1 fits the rest
    calls = _tie_calls(loso, 0.02)
    assert [c["source"] for c in calls] == ["c"]
    np.testing.assert_allclose(loso.with_runners_up(TIE_PREDICTIONS, cv, TIE_SOURCES, TIE_NAMES, TIE_COMBOS, calls),
                               np.exp([0.101, 0.101, 0.0]))


def test_groups_hold_out_one_system_and_keep_its_siblings_in_the_fit(loso):
    # Source "s" measured two systems (s1, s2); "a" and "c" one each. Point 0 is exact for
    # s and c and e^1 off for a; point 1 is exact for a, e^0.5 off for c and e^1 off for s.
    measured = np.ones(6)
    sources = np.array(["s", "s", "s", "s", "a", "c"])
    systems = np.array(["s1", "s1", "s2", "s2", "a", "c"])
    predictions = np.vstack([np.r_[np.ones(4), np.e, 1.0], np.r_[np.full(4, np.e), 1.0, np.e ** 0.5]])
    # Leaving the source out: a and c only, point 0 costs (1 + 0) / 2, point 1 (0 + 0.5) / 2.
    cv, fitted = loso.leave_one_source_out(predictions, measured, sources, ["p"], [(0,), (1,)])
    assert fitted["s"] == {"p": 1}
    np.testing.assert_allclose(cv[:4], np.e)
    # Leaving s1 out: s2 keeps source s in the fit (once), point 0 costs (0 + 1 + 0) / 3,
    # point 1 (1 + 0 + 0.5) / 3.
    cv, fitted = loso.leave_one_source_out(predictions, measured, sources, ["p"], [(0,), (1,)], groups=systems)
    assert fitted["s1"] == {"p": 0} and "s" not in fitted
    np.testing.assert_allclose(cv[:2], 1.0)
