"""What a run skips at start-up (issue 19, item 5), checked as facts, never timed.

A quiet simulation (``simulate -q``, or ``--json``) prints no table, so it does not load
rich; a scenario without a framework preset reads no preset file (``none`` sets nothing);
the zoo loads the transformer builders when one is built. The count limits, checked by a
validator on each section's limited fields alone, still refuse every limited field.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from simulator.errors import ScenarioError
from simulator.frameworks import get_preset
from simulator.loading import load_scenario
from simulator.schema_base import LIMITS


def loaded_after(code: str) -> set[str]:
    """Every module loaded by ``code`` in a fresh interpreter."""
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_a_quiet_simulation_loads_no_rich(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text("cluster: {nodes: 1, gpus_per_node: 2}\n")
    code = ("from simulator.cli.app import main\n"
            f"try:\n    main(['simulate', {str(scenario)!r}, '-q'])\nexcept SystemExit as exc:\n"
            "    assert not exc.code, exc.code")
    loaded = loaded_after(code)
    assert "simulator.engine" in loaded  # it did simulate
    assert not {m for m in loaded if m.partition(".")[0] in ("rich", "pandas", "pyarrow", "matplotlib")}
    assert "simulator.trace" not in loaded  # only with --trace


def test_the_default_preset_sets_nothing_and_is_not_read():
    assert get_preset("none")["sets"] == {}  # what lets the schema skip the preset files
    assert "simulator.frameworks" not in loaded_after(
        "from simulator import load_scenario\nload_scenario(None, ['training.framework=none'])")


def test_a_named_preset_still_fills_in_the_training_section():
    preset = get_preset("horovod")["sets"]["training"]
    training = load_scenario(None, ["training.framework=horovod"]).training
    assert preset and all(getattr(training, key) == value for key, value in preset.items()
                          if not isinstance(value, dict))


def test_the_zoo_loads_the_transformer_builders_when_one_is_built():
    code = "import simulator.zoo as zoo\nassert 'bert_base' in zoo.list_models()"
    assert "simulator.zoo.transformer" not in loaded_after(code)
    assert "simulator.zoo.transformer" in loaded_after(code + "\nzoo.get_model('bert_base')")


SCENARIO_LIMITS = sorted(path for path in LIMITS
                         if path.split(".")[0] in ("cluster", "workload", "training", "simulation")
                         and path not in ("cluster.total_gpus",) and not path.startswith("training.parallelism"))


@pytest.mark.parametrize("path", SCENARIO_LIMITS)
def test_every_limited_field_is_refused_above_its_limit(path):
    with pytest.raises(ScenarioError, match=rf"{path}: [\d,]+ is above the limit of {LIMITS[path]:,}"):
        load_scenario(None, [f"{path}={LIMITS[path] + 1}"])
