"""The catalog's data files (``simulator/data/catalog/*.yaml``): every entry is validated
when read, and a wrong one fails naming the file, the entry and the field."""

from __future__ import annotations

import pytest

from simulator.catalog import GPUSpec, LinkSpec
from simulator.catalog.datafile import CatalogFileError, entries_by_name
from simulator.catalog.links import link_families

GOOD = dict(name="X", architecture="Volta", year=2017, peak_tflops={"fp32": 1.0}, memory_gib=1.0,
            memory_bandwidth_gbytes_s=1.0, pcie_gen=3, nvlink_gbytes_s=None, source="doc")


def test_a_good_row_becomes_a_spec():
    table = entries_by_name("gpus", [GOOD], GPUSpec)
    assert table["X"] == GPUSpec(**GOOD)


@pytest.mark.parametrize(("row", "message"), [
    ({**GOOD, "colour": "green"}, "entry 0 ('X'): colour: Unexpected keyword argument"),
    ({**GOOD, "memory_gib": "16"}, "entry 0 ('X'): memory_gib: Input should be a valid number"),
    ({**GOOD, "pcie_gen": 2}, "entry 0 ('X'): (entry): Value error, GPU 'X': pcie_gen must be 3, 4 or 5"),
    ({k: v for k, v in GOOD.items() if k != "source"}, "entry 0 ('X'): source: Field required"),
])
def test_a_wrong_row_names_file_entry_and_field(row, message):
    with pytest.raises(CatalogFileError, match=r"^simulator/data/catalog/gpus\.yaml: ") as info:
        entries_by_name("gpus", [row], GPUSpec)
    assert message in str(info.value)


def test_a_name_listed_twice_is_refused():
    with pytest.raises(CatalogFileError, match=r"entry 1 \('X'\): 'X' is listed twice"):
        entries_by_name("gpus", [GOOD, GOOD], GPUSpec)


def test_links_take_their_familys_shared_figures():
    families = link_families()
    assert set(families) == {"pcie", "ethernet-tcp", "roce", "infiniband", "nvlink"}
    row = {**families["nvlink"].model_dump(exclude_none=True), "name": "l", "line_rate_gbps": 8.0, "source": "doc"}
    link = entries_by_name("links", [row], LinkSpec)["l"]
    assert (link.kind, link.efficiency, link.latency_us) == ("nvlink", 0.9, 1.5)
