"""``import-trace``: per-layer times from a PyTorch profiler (Kineto) trace.

The trace is real: ``torch.profiler`` on the CPU around a few training iterations of a
small residual CNN written as a plain ``nn.Module`` (the model file
``scenarios/models/tiny_resnet.yml``, layer for layer), exported with
``export_chrome_trace``, at two batch sizes. The import must time every layer, leave
little of the forward span between its layers, make a profile ``simulate`` takes and
whose prediction is near the traced iterations; bad traces exit 2 with one line naming
the file. A hand-written GPU trace checks the device-kernel attribution on the format's
facts (no GPU is lent to the tests).
"""

from __future__ import annotations

import json
import shutil
import statistics

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from calibration.kineto import import_trace  # noqa: E402
from calibration.kineto_profile import build_profile  # noqa: E402
from calibration.kineto_trace import load_trace  # noqa: E402
from simulator.engine import simulate  # noqa: E402
from simulator.loading import load_model_file, load_scenario  # noqa: E402
from simulator.profile import load_profile  # noqa: E402
from simulator.zoo.model_file import model_from_data  # noqa: E402

from ..conftest import REPO_ROOT  # noqa: E402
from ..test_cli import run_main  # noqa: E402

MODEL_FILE = REPO_ROOT / "scenarios" / "models" / "tiny_resnet.yml"
BATCHES = (1, 2)
STEPS = 3
#: The forward layers' operators hold at least this share of the forward span (first
#: layer's start to the last's end; the best of the steps): what is left is Python
#: between the modules, the BatchNorm buffer updates and time off the core. 88-99.5%
#: measured on a loaded 2-core machine in one session; in another the best step of a
#: clean-copy suite run reached 79.6% and the median step at load 3-4 64%. A layer left
#: unattributed takes over a tenth of the span away.
FORWARD_SPAN_SHARE = 0.7
#: Layers' forward + backward hold at least this share of a step (the best of the steps;
#: the rest: loss, optimizer, AccumulateGrad, zero_grad, time off the core). 89-95% on
#: a quiet 2-core machine; the median over steps fell to 67% with four other busy
#: processes on it and below 60% in a loaded full-suite run, where most steps lost the
#: core at some point: the best step is what measures the importer, not the machine.
STEP_SHARE = 0.6


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                           if stride != 1 else None)

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class TinyResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32)
        self.block1, self.block2 = Block(32, 32, 1), Block(32, 64, 2)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.block2(self.block1(F.relu(self.bn1(self.conv1(x)))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def _profile_training(path, batch: int) -> None:
    torch.manual_seed(0)
    model = TinyResNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    schedule = torch.profiler.schedule(wait=0, warmup=1, active=STEPS, repeat=1)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], schedule=schedule,
                                record_shapes=True, on_trace_ready=lambda p: p.export_chrome_trace(str(path))) as prof:
        for _ in range(1 + STEPS):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            prof.add_metadata("torch_version", torch.__version__)
            prof.step()


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kineto")
    paths = {b: folder / f"trace_b{b}.json" for b in BATCHES}
    for batch, path in paths.items():
        _profile_training(path, batch)
    return paths


def run(capsys, *args) -> tuple[int, str, str]:
    """`clustersim import-trace ARGS` in-process (the console script's path)."""
    return run_main(capsys, "import-trace", *map(str, args))


def test_every_layer_gets_a_time_that_fills_the_forward_span(traces):
    model = load_model_file(MODEL_FILE, register=False)
    for batch, path in traces.items():
        imported = import_trace(load_trace(path), model)
        assert imported.batch == batch and len(imported.steps) == STEPS
        assert imported.unmatched_layers() == []
        for i, layer in enumerate(model.layers):
            assert len(imported.layer_times(i, "forward")) == STEPS, layer.name
            assert len(imported.layer_times(i, "backward")) == STEPS, layer.name
        for step in imported.steps:
            assert sum(step.forward.values()) <= step.forward_span_s < step.whole_s < step.step_s, step.name
            assert step.attributed_s <= step.step_s and step.optimizer == "SGD" and 0 < step.optimizer_s < step.step_s
        # the best step: a step in which the process lost its core (a loaded 2-core
        # machine) has a gap no operator covers, and under a load of 3-4 most steps did
        # (median 0.64 seen); the importer's attribution is what is checked here
        assert max(sum(s.forward.values()) / s.forward_span_s for s in imported.steps) >= FORWARD_SPAN_SHARE
        assert max(s.attributed_s / s.step_s for s in imported.steps) >= STEP_SHARE
        assert 0 < imported.share("attributed") <= 1  # the median a user is shown


def test_the_profile_has_both_batches_provenance_and_simulates_the_traced_step(traces, tmp_path, capsys):
    out = tmp_path / "traced.json"
    code, stdout, err = run(capsys, *traces.values(), "--model-file", MODEL_FILE, "-o", out,
                            "--cpu-count", 2, "--threads", 2)
    assert code == 0, err
    assert "21/21 layers timed" in stdout and "attributed to layers" in stdout
    profile = load_profile(out)
    measured = profile.model("tiny_resnet")
    assert measured is not None and measured.batches == list(BATCHES)
    assert len(measured.fits) == 2 * 21 and all(f.fit.points == 2 for f in measured.fits)
    assert {len(s.timing.times_s) for s in measured.samples} == {STEPS}
    assert measured.optimizer == "momentum" and measured.optimizer_step is not None
    assert profile.environment.torch == torch.__version__ and profile.environment.device_kind == "cpu"
    notes = profile.provenance.notes
    assert notes.startswith("source: kineto trace; trace trace_b1.json") and "trace_b2.json" in notes
    assert profile.efficiency.fit("conv") is not None and profile.efficiency.memory_bandwidth_bytes_per_s

    # simulate takes it, and predicts the traced iteration within 30% (the layers are
    # scaled to the whole forward + backward, the optimizer step added; zero_grad and
    # time between steps' operators are not simulated; a loaded machine's steps vary)
    shutil.copy(MODEL_FILE, tmp_path / "tiny_resnet.yml")
    scenario = tmp_path / "traced.yaml"
    scenario.write_text("cluster: {nodes: 1, gpus_per_node: 1}\n"
                        f"workload: {{model_file: tiny_resnet.yml, batch_per_gpu: {BATCHES[-1]}}}\n"
                        "calibration: traced.json\nsimulation: {iterations: 2, warmup_iterations: 0}\n")
    result = simulate(load_scenario(scenario))
    report = result.extra["calibration"]
    assert report["layers_calibrated"] == 21 and report["layers_estimated"] == 0
    traced = statistics.median(s.step_s for s in import_trace(load_trace(traces[BATCHES[-1]]),
                                                              load_model_file(MODEL_FILE, register=False)).steps)
    # (flaky in 2 of 5 full-suite CI runs, 1.5-1.9x over, never alone: the report says which
    # correction the simulation applied when it fails)
    assert result.iteration_time_s == pytest.approx(traced, rel=0.30), report


def _edited(path, target, keep):
    data = json.loads(path.read_text())
    data["traceEvents"] = [e for e in data["traceEvents"] if keep(e)]
    target.write_text(json.dumps(data))
    return target


@pytest.mark.parametrize("case, message", [
    ("no_steps", "no ProfilerStep#N annotation"),
    ("truncated", "not valid JSON (truncated?)"),
    ("other_model", "not a trace of resnet18: 0 of its"),
    ("inference", "no ProfilerStep holds a backward pass"),
    ("no_shapes", "records no operator shapes: profile with torch.profiler.profile(record_shapes=True"),
    ("not_a_trace", "no \"traceEvents\" list"),
    ("missing", "no such file"),
])
def test_bad_traces_exit_2_with_one_line_naming_the_file(traces, tmp_path, capsys, case, message):
    real = traces[BATCHES[-1]]
    model = ["--model-file", MODEL_FILE]
    if case == "no_steps":
        path = _edited(real, tmp_path / "nosteps.json", lambda e: "ProfilerStep" not in e.get("name", ""))
    elif case == "truncated":
        path = tmp_path / "cut.json"
        path.write_text(real.read_text()[: real.stat().st_size // 2])
    elif case == "other_model":
        path, model = real, ["--model", "resnet18"]
    elif case == "inference":
        path = _edited(real, tmp_path / "fwd.json", lambda e: not e.get("name", "").startswith("autograd::engine"))
    elif case == "no_shapes":
        data = json.loads(real.read_text())
        for event in data["traceEvents"]:
            event.get("args", {}).pop("Input Dims", None)
        path = tmp_path / "noshapes.json"
        path.write_text(json.dumps(data))
    elif case == "not_a_trace":
        path = tmp_path / "profile.json"
        path.write_text('{"format": "clustersim-profile"}')
    else:
        path = tmp_path / "absent.json"
    code, out, err = run(capsys, path, *model, "-o", tmp_path / "out.json")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and str(path) in err and message in err, err
    assert not (tmp_path / "out.json").exists()


def test_gpu_kernels_go_to_the_operator_or_node_that_launched_them(tmp_path):
    """A hand-written trace in Kineto's GPU format: kernels find their launch by
    ``correlation``, the launch its operator (forward) or autograd node (backward) by
    thread and time; NCCL and unlaunched time is reported, not attributed."""
    model = model_from_data({"name": "two", "input_shape": [3, 8, 8], "layers": [
        {"name": "conv", "kind": "conv", "out_channels": 8, "kernel": 3, "padding": 1},
        {"name": "relu", "kind": "relu"}]})
    main_t, bwd_t, gpu = {"pid": 1, "tid": 1}, {"pid": 1, "tid": 2}, {"pid": 0, "tid": 7}

    def op(name, ts, dur, where=main_t, **args):
        return {"ph": "X", "cat": "cpu_op", "name": name, "ts": ts, "dur": dur, **where, "args": args}

    def launch(ts, corr, where=main_t):
        return {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "ts": ts, "dur": 2, **where,
                "args": {"correlation": corr}}

    def kernel(name, ts, dur, corr):
        return {"ph": "X", "cat": "kernel", "name": name, "ts": ts, "dur": dur, **gpu, "args": {"correlation": corr}}

    events = [
        {"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#7", "ts": 0, "dur": 1000, **main_t, "args": {}},
        op("aten::conv2d", 10, 100, **{"Input Dims": [[2, 3, 8, 8], [8, 3, 3, 3], [], [], [], [], []],
                                       "Concrete Inputs": ["", "", "", "[1, 1]", "[1, 1]", "[1, 1]", "1"],
                                       "Input type": ["float", "float"], "Sequence number": 5}),
        launch(50, 1), kernel("implicit_gemm", 60, 40, 1),
        op("aten::relu", 120, 30, **{"Input Dims": [[2, 8, 8, 8]], "Sequence number": 6}), launch(130, 2),
        kernel("relu_kernel", 140, 10, 2),
        op("aten::nll_loss", 160, 20, **{"Input Dims": [[2, 10], [2]], "Sequence number": 7}), launch(165, 3),
        kernel("nll_kernel", 170, 3, 3),
        op("autograd::engine::evaluate_function: ReluBackward0", 200, 50, bwd_t, **{"Sequence number": 6}),
        launch(210, 4, bwd_t), kernel("relu_bwd", 215, 20, 4),
        op("autograd::engine::evaluate_function: ConvolutionBackward0", 300, 100, bwd_t, **{"Sequence number": 5}),
        launch(310, 5, bwd_t), kernel("conv_bwd", 320, 80, 5),
        op("autograd::engine::evaluate_function: torch::autograd::AccumulateGrad", 420, 10, bwd_t),
        launch(421, 6, bwd_t), kernel("add_", 425, 5, 6), launch(440, 8, bwd_t),
        kernel("ncclKernel_AllReduce_RING", 445, 200, 8),
    ]
    path = tmp_path / "gpu.json"
    path.write_text(json.dumps({"deviceProperties": [{"name": "NVIDIA A100-SXM4-80GB"}], "traceEvents": events}))
    imported = import_trace(load_trace(path), model)
    (step,) = imported.steps
    assert imported.batch == 2 and imported.trace.on_device
    assert step.forward == pytest.approx({0: 40e-6, 1: 10e-6}) and step.backward == pytest.approx({0: 80e-6, 1: 20e-6})
    assert step.device_busy_s == pytest.approx(358e-6)
    assert step.unattributed["communication kernels (NCCL)"] == pytest.approx(200e-6)
    assert step.unattributed["device time of no layer (loss, AccumulateGrad, views)"] == pytest.approx(8e-6)
    assert step.forward_span_s == pytest.approx(90e-6)  # first forward kernel's start to the last's end
    profile, _ = build_profile([imported], command="test")
    assert profile.environment.device_kind == "cuda" and profile.environment.device_name == "NVIDIA A100-SXM4-80GB"
    assert profile.environment.catalog_gpu == "A100-SXM4-80GB"
