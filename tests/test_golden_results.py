"""Speed work changes no prediction: results are byte-identical to the stored golden JSON.

The golden files under ``tests/golden/`` hold the JSON of every example scenario, of
probe scenarios covering every engine path (fast and detailed, every allreduce
algorithm, parameter-server options, leaf-spine ECMP, rails, host staging,
variability) and the predictions of the dev validation set. When the model changes on
purpose, regenerate them (``python tests/golden/regenerate.py``) and review the diff.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))
import regenerate  # noqa: E402

sys.path.remove(str(GOLDEN))

HOW = "the model changed; if on purpose, run `python tests/golden/regenerate.py` and review the diff"


def stored(kind: str) -> dict:
    return json.loads((GOLDEN / f"{kind}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", regenerate.example_scenarios(), ids=lambda p: p.name)
def test_example_scenarios_unchanged(path):
    from simulator import load_scenario, simulate

    key = str(path.relative_to(regenerate.ROOT))
    assert regenerate.result_text(simulate(load_scenario(path))) == stored("scenarios")[key], HOW


@pytest.mark.parametrize("name", sorted(regenerate.PROBES))
def test_probe_scenarios_unchanged(name):
    assert regenerate.probe_result(name) == stored("probes")[name], HOW


def test_every_example_scenario_has_a_golden_result():
    keys = {str(p.relative_to(regenerate.ROOT)) for p in regenerate.example_scenarios()}
    assert keys == set(stored("scenarios")), HOW
    assert set(regenerate.PROBES) == set(stored("probes")), HOW


def test_validation_predictions_unchanged(dev_set_validation):
    table = dev_set_validation["scenarios/validation/published_cases.csv"]
    now = json.loads(json.dumps(regenerate.validation_predictions(table), sort_keys=True))
    golden = stored("validation")
    assert set(now) == set(golden), HOW
    changed = {case: (golden[case], now[case]) for case in golden if golden[case] != now[case]}
    assert not changed, f"{len(changed)} validation predictions changed, e.g. {next(iter(changed.items()))}; {HOW}"
