"""Drawing a cluster: a PNG comes out, headless (no pyplot, no display)."""

from __future__ import annotations

from matplotlib.figure import Figure

from topologies.draw import draw_cluster, layered_positions, speed_label

from .helpers import cluster

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_draw_cluster_writes_a_png(tmp_path):
    g = cluster("dgx1", {}, nodes=2, gpus=8, fabric="leaf_spine",
                fabric_params={"switch_latency": 0.0, "nodes_per_leaf": 1, "spines": 2}).graph
    fig = draw_cluster(g, title="2 x DGX-1")
    assert isinstance(fig, Figure)
    out = tmp_path / "cluster.png"
    fig.savefig(out)
    data = out.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 10_000


def test_draw_into_given_axes_and_label_every_node(tmp_path):
    g = cluster("nvswitch", {"nvlink_bandwidth": 300e9}, nodes=1, gpus=4, dedicated_ps=1).graph
    fig = Figure()
    ax = fig.add_subplot()
    assert draw_cluster(g, ax) is fig
    texts = {t.get_text() for t in ax.texts}
    assert {"gpu0", "gpu3", "nvswitch0", "nic0", "cpu", "cpu1", "switch0"} <= texts
    assert "300" in texts and "12.5" in texts  # NVLink and a 100 Gb/s NIC, both in GB/s
    assert not any("Gb/s" in t for t in texts)  # one unit system
    assert "GB/s" in ax.get_legend().get_title().get_text()
    fig.savefig(tmp_path / "one.png")


def test_layers_put_fabric_above_nics_above_cpus_above_gpus():
    g = cluster("pcie_tree", {"pcie_switches": 2}, nodes=2, gpus=4).graph
    pos = layered_positions(g)
    y = {n: pos[n][1] for n in ("switch0", "n0.nic0", "n0.cpu", "n0.pcie0", "n0.gpu0")}
    assert y["switch0"] > y["n0.nic0"] > y["n0.cpu"] > y["n0.pcie0"] > y["n0.gpu0"]
    assert max(pos[f"n0.gpu{i}"][0] for i in range(4)) < min(pos[f"n1.gpu{i}"][0] for i in range(4))


def test_speed_labels_use_one_unit():
    assert speed_label(12.5e9, "network") == "12.5"
    assert speed_label(50e9, "nvlink", 2) == "50 x2"
    assert speed_label(15.75e9, "pcie", unit=True) == "15.8 GB/s"


def test_text_is_readable_at_saved_size_and_inside_the_figure():
    from tests.figure_checks import assert_readable, drawn_texts

    g = cluster("dgx1", {}, nodes=4, gpus=8, fabric="leaf_spine",
                fabric_params={"switch_latency": 0.0, "nodes_per_leaf": 2, "spines": 2}).graph
    fig = draw_cluster(g, title="4 x DGX-1")
    assert_readable(fig)
    texts = drawn_texts(fig)
    assert len(texts) > 100
    assert min(t.get_fontsize() for t in texts) >= 8  # points: 13 px at the CLI's 120 dpi
