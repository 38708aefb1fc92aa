"""Every stored fit is one that can be trusted, physically (#17, item 11): pieces span at
least 3 measured sizes, latencies and intercepts are >= 0, a bandwidth is finite and
positive or null (latency-only), and exact-by-construction fits say so. numpy only."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from calibration.fit import (
    MIN_PIECE_SIZES,
    fit_alpha_beta,
    fit_alpha_beta_pieces,
    fit_collectives,
    fit_linear,
    fit_throughput,
    refit,
)
from simulator.cli import main
from simulator.engine import build
from simulator.loading import load_scenario
from simulator.profile import (
    AlphaBetaFit,
    CollectiveFit,
    Profile,
    Timing,
    TrainingSteps,
    WholeModelSample,
    load_profile,
    parse_profile,
)

from ..conftest import REPO_ROOT
from . import synthetic

SHIPPED = sorted((REPO_ROOT / "calibration" / "profiles").glob("*.json"))
SIZES = np.array([4096 * 2**k for k in range(17)], dtype=float)  # 4 KB .. 256 MB

#: Above this a "bandwidth" is a stand-in for "none" (the old 1e18 B/s sentinel), not a
#: measurement: 10 TB/s is above any link or memory these profiles can measure.
SENTINEL_BYTES_PER_S = 1e13


def assert_trusted_piece(piece: AlphaBetaFit) -> None:
    assert piece.points >= MIN_PIECE_SIZES
    assert piece.alpha_s >= 0
    assert piece.beta_bytes_per_s is None or 0 < piece.beta_bytes_per_s < SENTINEL_BYTES_PER_S
    assert not piece.exact and math.isfinite(piece.max_rel_error)


def test_alpha_beta_recovers_alpha_and_beta_within_1_percent():
    for seed, (alpha, beta) in enumerate([(25e-6, 10e9), (2e-3, 1.2e9), (40e-6, 2.5e9)]):
        times = synthetic.noisy(alpha + SIZES / beta, 0.002, seed=seed)
        fit = fit_alpha_beta(SIZES, times)
        assert fit.alpha_s == pytest.approx(alpha, rel=0.01)
        assert fit.beta_bytes_per_s == pytest.approx(beta, rel=0.01)
        assert fit.max_rel_error < 0.005 and not fit.exact


def test_pieces_recover_each_regime_within_1_percent():
    # 20 us + n / 1 GB/s up to 1 MiB, then 1 ms + n / 8 GB/s; 0.2% noise
    times = synthetic.noisy(np.where(SIZES <= 2**20, 20e-6 + SIZES / 1e9, 1e-3 + SIZES / 8e9), 0.002, seed=3)
    small, large = fit_alpha_beta_pieces(SIZES, times)
    assert (small.max_bytes, large.min_bytes) == (2**20, 2**21)
    assert small.alpha_s == pytest.approx(20e-6, rel=0.01) and small.beta_bytes_per_s == pytest.approx(1e9, rel=0.01)
    assert large.alpha_s == pytest.approx(1e-3, rel=0.01) and large.beta_bytes_per_s == pytest.approx(8e9, rel=0.01)


def test_a_negative_free_alpha_is_refitted_through_the_origin():
    sizes = np.array([1e6, 2e6, 4e6, 8e6])
    times = -2e-4 + sizes * 1.2e-9  # an exact line with a negative intercept
    fit = fit_alpha_beta(sizes, times)
    w = sizes / times
    assert fit.alpha_s == 0.0
    assert fit.beta_bytes_per_s == pytest.approx(np.sum(w * w) / np.sum(w), rel=1e-12)  # 1 / slope
    assert fit.max_rel_error == pytest.approx(np.max(np.abs(sizes / fit.beta_bytes_per_s - times) / times))
    assert 0.05 < fit.max_rel_error < 0.25  # the miss is reported, not hidden


def test_time_that_does_not_grow_with_size_is_latency_only_never_a_sentinel():
    sizes, times = np.array([4096.0, 8192, 16384]), np.array([1.2e-3, 1.1e-3, 1.0e-3])
    fit = fit_alpha_beta(sizes, times)
    assert fit.beta_bytes_per_s is None
    assert fit.alpha_s == pytest.approx(np.sum(1 / times) / np.sum(1 / times**2))  # best constant, relative error
    assert fit(1e9) == fit.alpha_s
    assert fit.max_rel_error == pytest.approx(max(abs(fit.alpha_s - t) / t for t in times))
    assert '"beta_bytes_per_s":null' in fit.model_dump_json()


def test_two_sizes_are_an_exact_fit_that_says_so():
    fit = fit_alpha_beta([4096, 8192], [1e-4, 1.5e-4])
    assert fit.exact and fit.max_rel_error == 0.0 and fit.points == 2
    assert fit.alpha_s == pytest.approx(5e-5) and fit.beta_bytes_per_s == pytest.approx(4096 / 5e-5)


@pytest.mark.parametrize("n", range(1, 25))
def test_no_piece_has_fewer_than_3_sizes_on_noisy_data(n):
    rng = np.random.default_rng(n)
    sizes = SIZES[:n] if n <= len(SIZES) else np.geomspace(1e3, 1e9, n)
    # a protocol switch in the middle, and 30% noise: the greedy split made 2-point pieces of such data
    times = np.where(sizes < np.median(sizes), 3e-4 + sizes / 1e8, 2e-3 + sizes / 2e9)
    times = times * (1 + rng.uniform(-0.3, 0.3, n))
    pieces = fit_alpha_beta_pieces(sizes, times)
    if n < MIN_PIECE_SIZES:
        assert pieces == []
        return
    assert sum(p.points for p in pieces) == n  # every size in exactly one piece, in order
    assert pieces[0].min_bytes == int(sizes.min()) and pieces[-1].max_bytes == int(sizes.max())
    assert all(a.max_bytes < b.min_bytes for a, b in zip(pieces, pieces[1:]))
    assert len(pieces) <= n // MIN_PIECE_SIZES
    for piece in pieces:
        assert_trusted_piece(piece)


def test_pieces_prefer_the_fewest_within_tolerance():
    times = 40e-6 + SIZES / 2.5e9  # one line holds everywhere
    (piece,) = fit_alpha_beta_pieces(SIZES, times)
    assert piece.points == 17 and piece.max_rel_error < 1e-9


def test_a_latency_only_last_piece_extrapolates_at_the_overall_bandwidth():
    flat = AlphaBetaFit(alpha_s=1e-3, beta_bytes_per_s=None, min_bytes=4096, max_bytes=16384, points=3,
                        max_rel_error=0.1)
    overall = AlphaBetaFit(alpha_s=5e-4, beta_bytes_per_s=1e9, min_bytes=4096, max_bytes=16384, points=3,
                           max_rel_error=0.3)
    fit = CollectiveFit(collective="allreduce", world_size=2, fit=overall, pieces=[flat])
    assert fit.time_s(1024) == 1e-3 and fit.time_s(8192) == 1e-3
    assert fit.time_s(16384 + 1e9) == pytest.approx(1e-3 + 1.0)


def test_layer_fit_intercept_is_never_negative():
    # superlinear in batch (cache effects): the free line through both points has a < 0
    fit = fit_linear([2, 8], [1e-3, 6e-3])
    assert fit.intercept_s == 0.0 and not fit.exact
    # through the origin on relative error: slope = sum(x/t) / sum((x/t)^2); misses of +2/13 and -3/13
    assert fit.slope_s == pytest.approx((2e3 + 8 / 6e-3) / (4e6 + (8 / 6e-3) ** 2), rel=1e-12)
    assert fit(2) == pytest.approx(1e-3 * 15 / 13) and fit(8) == pytest.approx(6e-3 * 10 / 13)
    assert fit.max_rel_error == pytest.approx(3 / 13)
    # a layer slower at the smaller batch (noise): no negative slope either; the best constant
    flat = fit_linear([2, 8], [2e-4, 1.8e-4])
    assert flat.slope_s == 0.0 and flat.intercept_s > 0 and flat.max_rel_error > 0


def test_a_two_batch_layer_fit_is_exact_by_construction_and_says_so():
    fit = fit_linear([2, 8], [1e-3, 3.4e-3])
    assert fit.exact and fit.max_rel_error == 0.0 and fit.points == 2
    assert fit.intercept_s == pytest.approx(2e-4) and fit.slope_s == pytest.approx(4e-4)
    one = fit_linear([4], [2e-3])  # one batch: a line through the origin, exact too
    assert one.exact and one.intercept_s == 0.0 and one.slope_s == pytest.approx(5e-4)
    many = fit_linear([1, 2, 4, 8], [3e-4, 5e-4, 9e-4, 1.7e-3])  # four batches test the line
    assert not many.exact and many.max_rel_error < 1e-9


def test_throughput_fit_keeps_a_finite_peak_on_noise():
    flops, times = np.array([5.2e5, 3.4e7, 2.1e9]), np.array([3e-2, 2e-2, 1e-2])  # slower small sizes: loaded
    fit = fit_throughput("matmul", flops, times)
    w = flops / times  # neither a negative overhead nor an infinite peak: the best line through the origin
    assert fit.overhead_s == 0.0 and fit.peak_flops_per_s == pytest.approx(np.sum(w * w) / np.sum(w), rel=1e-12)
    assert math.isfinite(fit.peak_flops_per_s) and fit.max_rel_error > 0.5


def test_fits_need_positive_times():
    with pytest.raises(ValueError, match="not positive"):
        fit_alpha_beta([4096, 8192, 16384], [1e-4, 0.0, 2e-4])


def _old_form(profile: Profile) -> str:
    """The synthetic profile as the previous fitter wrote it: a 2-point exact piece with a
    negative alpha, a 1e18 B/s 'no bandwidth' piece, a negative layer intercept, no
    `exact` keys."""
    data = json.loads(refit(profile).to_json())
    fit = data["collectives"]["fits"][0]
    fit["pieces"] = [
        {"alpha_s": 1e-4, "beta_bytes_per_s": 9.999999999999999e17, "min_bytes": 4096, "max_bytes": 65536,
         "points": 2, "max_rel_error": 0.12},
        {"alpha_s": -0.0299, "beta_bytes_per_s": 8.55e8, "min_bytes": 65536, "max_bytes": 268435456, "points": 2,
         "max_rel_error": 3.9e-16},
    ]
    for f in [fit["fit"], *(f["fit"] for f in data["models"][0]["fits"])]:
        f.pop("exact")
    data["models"][0]["fits"][0]["fit"]["intercept_s"] = -1e-4
    return json.dumps(data)


def test_a_profile_of_the_older_form_still_loads_and_refits_trusted():
    old = parse_profile(_old_form(synthetic.profile()), "old.json")
    fit = old.collectives.fit("allreduce", 2)
    assert [p.points for p in fit.pieces] == [2, 2] and fit.pieces[1].alpha_s == -0.0299
    assert fit.time_s(8192) == pytest.approx(1e-4 + 8192 / 1e18)  # read as written
    assert old.models[0].fits[0].fit.intercept_s == -1e-4 and not old.models[0].fits[0].fit.exact
    new = refit(old)
    for piece in new.collectives.fit("allreduce", 2).pieces:
        assert_trusted_piece(piece)
    assert min(f.fit.intercept_s for f in new.models[0].fits) >= 0


def test_collectives_with_two_sizes_get_no_pieces():
    samples = [s for s in synthetic.profile().collectives.samples if s.bytes in (4096, 65536)]
    (fit,) = fit_collectives(samples)
    assert fit.pieces == [] and fit.fit.exact and fit.fit.points == 2
    assert fit.time_s(4096) == pytest.approx(synthetic.ALPHA_S + 4096 / synthetic.BETA)


def _dump(part):
    return part.model_dump() if hasattr(part, "model_dump") else [p.model_dump() for p in part]


def _same_to_rounding(a, b, rel=1e-9) -> bool:
    """Equal structures whose floats agree to ``rel`` (booleans and counts exactly)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=rel, abs_tol=1e-300)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_to_rounding(a[k], b[k], rel) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_to_rounding(x, y, rel) for x, y in zip(a, b))
    return a == b


def test_same_to_rounding_tells_a_last_bit_from_a_real_change():
    assert _same_to_rounding({"a": [0.1 + 0.2, 2]}, {"a": [0.3, 2]})
    assert not _same_to_rounding({"a": [0.3001, 2]}, {"a": [0.3, 2]})
    assert not _same_to_rounding({"a": [0.3, 3]}, {"a": [0.3, 2]})
    assert not _same_to_rounding({"exact": True}, {"exact": False})


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_fit_of_a_shipped_profile_is_trusted_and_current(path):
    profile = load_profile(path)
    pieces = [p for f in profile.collectives.fits for p in f.pieces]
    assert pieces  # the shipped profiles have piecewise collective fits
    for piece in pieces:
        assert_trusted_piece(piece)
    for f in profile.collectives.fits:
        assert f.fit.alpha_s >= 0 and 0 < f.fit.beta_bytes_per_s < SENTINEL_BYTES_PER_S
    layer_fits = [f.fit for m in profile.models for t in [m, *m.threads_sweep] for f in t.fits]
    assert layer_fits and all(f.intercept_s >= 0 and f.slope_s >= 0 for f in layer_fits)
    for f in layer_fits:  # exact fits report 0, the others a real miss: no 1e-16 "errors"
        assert (f.exact and f.max_rel_error == 0.0 and f.points == 2) or (not f.exact and f.max_rel_error > 1e-9)
    assert all(f.overhead_s >= 0 for f in profile.efficiency.fits)
    # the committed fits are what today's fitter makes of the committed samples, up to the
    # last bits a least-squares solve may differ in between CPUs (AMD and Intel hosts differ)
    fitted = refit(profile)
    for part in ("collectives", "models", "efficiency"):
        assert _same_to_rounding(_dump(getattr(fitted, part)), _dump(getattr(profile, part))), part
    assert "Fits recomputed from the raw samples on " in profile.provenance.notes


def test_calibrate_records_the_refit_in_the_provenance_notes(tmp_path):
    raw = tmp_path / "raw.json"
    base = synthetic.profile()
    raw.write_text(base.model_copy(update={"provenance": base.provenance.model_copy(
        update={"notes": "probed on a quiet machine"})}).to_json())
    out = tmp_path / "fitted.json"
    with pytest.raises(SystemExit, match=r"^0?$"):
        main(["calibrate", str(raw), "-o", str(out)])
        raise SystemExit(0)
    provenance = load_profile(out).provenance
    assert provenance.command == "synthetic"  # the probe's command stays
    assert provenance.notes.startswith("probed on a quiet machine Fits recomputed from the raw samples on ")
    assert f"calibrate {raw} -o {out}`" in provenance.notes


def test_a_measured_iteration_still_fixes_the_compute_when_layer_fits_are_constrained(tmp_path):
    # Every layer superlinear in batch (x 1.5 at batch 8: caches), so no line with a
    # non-negative intercept passes through its medians; the layers are scaled to the
    # measured iteration by the sum of their fits, so compute is the measurement.
    base = synthetic.profile(batches=(2, 8))
    samples = [s.model_copy(update={"timing": Timing(times_s=[t * 1.5 for t in s.timing.times_s])})
               if s.batch == 8 else s for s in base.models[0].samples]
    medians = {b: sum(s.timing.median_s for s in samples if s.batch == b) for b in (2, 8)}
    steps = TrainingSteps(threads=2, samples=[
        WholeModelSample(batch=b, timing=Timing(times_s=[1.3 * medians[b] + 0.003])) for b in (2, 8)])
    model = base.models[0].model_copy(update={"samples": samples, "threads": 2, "training_step": steps})
    path = tmp_path / "superlinear.json"
    fitted = refit(base.model_copy(update={"models": [model]}))
    assert sum(f.fit.intercept_s == 0 and not f.fit.exact for f in fitted.models[0].fits) > 20
    path.write_text(fitted.to_json())
    for batch in (2, 8):
        sim = build(load_scenario({"calibration": str(path), "cluster": {"nodes": 1, "gpus_per_node": 1},
                                   "workload": {"model": "alexnet", "batch_per_gpu": batch}}))
        compute = float(sim.costs.forward_s.sum() + sim.costs.backward_s.sum())
        assert compute == pytest.approx(1.3 * medians[batch], rel=1e-9)
