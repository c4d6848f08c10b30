"""restore-bench on a tiny model at tiny sizes: report schema, parity on every row, reasons on
skipped rows, Markdown and --compare. No test asserts a speed."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from benchmarks.cli import main
from benchmarks.inputs import corrupted_batch
from benchmarks.report import ReportError, check_report, compare, load_report, markdown
from benchmarks.timing import MemoryProbe, Timing, TimingConfig, measure
from export.parity import FP32
from tests.conftest import CPU_BACKENDS, CUDA_BACKENDS, EXTRA_BACKENDS, SIZE


def test_report_schema_and_every_cell(bench_run):
    out, _ = bench_run
    report = load_report(out / "r.json")  # raises on any schema violation
    assert report["command"].startswith("restore-bench --model")
    assert report["matmul_peak"]["cpu"]["gflops"] > 0
    assert report["model"]["parameters"] == 10560  # the tiny config's, counted from the module
    cells = {(r["backend"], r["batch"], r["height"]) for r in report["rows"]}
    # Every requested backend appears at every batch size, skipped or not: nothing dropped.
    assert cells == {(b, n, SIZE) for b in CPU_BACKENDS + EXTRA_BACKENDS + CUDA_BACKENDS for n in (1, 2)}
    for row in report["rows"]:
        if row["backend"] in CPU_BACKENDS:
            assert row["status"] == "ok", row
            assert row["runs"] >= 2 and row["median_ms"] > 0 and row["p90_ms"] >= row["min_ms"]
            assert row["images_per_s"] == pytest.approx(row["batch"] / row["median_ms"] * 1e3)
            assert row["megapixels_per_s"] == pytest.approx(row["images_per_s"] * SIZE * SIZE / 1e6)
            # FLOPs are those of the padded 32x32 image the network really sees.
            assert row["flops_per_image"] == int(report["model"]["flops_per_image"][str(SIZE)])
            assert row["gflops_per_s"] == pytest.approx(row["flops_per_image"] * row["images_per_s"] / 1e9)
            assert row["peak_rss_mb"] > 0


def test_every_run_row_has_parity_and_skips_have_reasons(bench_run):
    out, _ = bench_run
    report = json.loads((out / "r.json").read_text())
    for row in report["rows"]:
        if row["status"] != "ok":
            assert row["reason"], row
            if not torch.cuda.is_available() and row["device"] == "cuda":
                assert row["status"] == "skipped" and row["reason"] == "no CUDA"
            continue
        p = row["parity"]
        assert p["outside_mask_exact"] is True, row["backend"]  # every backend, every precision
        if row["precision"] == "fp32":
            # The tiny model is calibrated so that many mask probabilities sit near the threshold;
            # a reordered sum may flip one of them, which at 30x30 already exceeds the share the
            # fp32 tolerance allows (1e-4 is one pixel in 10,000). Everything else must hold.
            assert [v for v in p["violations"] if not v.startswith("mask disagrees")] == [], (row["backend"], p)
            assert p["mask_disagreement"] <= 2 / (SIZE * SIZE)
            assert p["max_level_diff"] <= FP32.max_level_diff
            if p["float_parity"]:
                assert p["predicted_max_abs_diff"] <= FP32.max_float_abs_diff
        if row["backend"] not in ("torchscript", "openvino"):  # no tensor path (TorchScript: depends on the export)
            assert p["float_parity"] is True
        if row["backend"] in ("eager", "eager-channels-last"):
            # Same kernels as the reference (channels-last may reorder sums): tiny float differences only.
            assert p["predicted_max_abs_diff"] <= 1e-5
        if row["backend"] == "eager":
            assert p["max_level_diff"] == 0 and p["mask_disagreement"] == 0.0
        if row["backend"] == "eager-bf16":
            assert p["tolerance"] is None and p["violations"] is None  # no tolerance claimed for bf16
            assert p["predicted_max_abs_diff"] > 0  # bf16 really ran in bf16


def test_markdown_and_printed_table(bench_run):
    out, result = bench_run
    md = (out / "r.md").read_text()
    assert "| backend | precision | batch | size | median ms" in md
    for name in CPU_BACKENDS:
        assert f"| {name} |" in md
    if not torch.cuda.is_available():
        assert "| eager-cuda | skipped: no CUDA |" in md
    assert "eager fp32 on the CPU" in md and "GFLOP/s" in md
    assert "within fp32" in result.output  # the printed table ends the run


def test_compare_prints_change_per_row(bench_run, tmp_path):
    out, _ = bench_run
    new = load_report(out / "r.json")
    old = copy.deepcopy(new)
    for row in old["rows"]:
        if row["status"] == "ok":
            row["median_ms"] = row["median_ms"] * 2  # the new run is twice as fast
    old["rows"].append(dict(old["rows"][0], backend="gone-backend"))
    text = compare(old, new)
    lines = [ln for ln in text.splitlines() if ln.startswith("eager ")]
    assert len(lines) == 2 and all("-50.0%" in ln for ln in lines)
    assert "gone-backend" in text and "not in the new run" in text
    assert "skipped -> skipped" in text
    # And through the CLI, with a broken file refused in one line before any measuring.
    bad = tmp_path / "old.json"
    bad.write_text("{not json")
    result = CliRunner().invoke(main, ["--compare", str(bad), "--backends", "eager"])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "old.json" in result.output and "not JSON" in result.output


def test_check_report_rejects_incomplete_rows(bench_run):
    out, _ = bench_run
    report = load_report(out / "r.json")
    skipped = copy.deepcopy(report)
    row = next(r for r in skipped["rows"] if r["status"] == "skipped")
    row["reason"] = ""
    with pytest.raises(ReportError, match="has no reason"):
        check_report(skipped)
    no_parity = copy.deepcopy(report)
    del next(r for r in no_parity["rows"] if r["status"] == "ok")["parity"]["mask_disagreement"]
    with pytest.raises(ReportError, match="parity lacks mask_disagreement"):
        check_report(no_parity)
    with pytest.raises(ReportError, match="not a restore-bench/1 report"):
        check_report({"schema": "other"})
    assert "| backend | not run |" in markdown(report)


def test_cli_usage_errors():
    result = CliRunner().invoke(main, ["--backends", "eager,warp-drive"])
    assert result.exit_code == 2 and "warp-drive" in result.output
    result = CliRunner().invoke(main, ["--sizes", "0"])
    assert result.exit_code == 2


# ---------------------------------------------------------------------------------------------
# The harness alone, with a fake clock: counts and percentiles, computed by hand.


class FakeClock:
    def __init__(self, durations):
        self.durations = iter(durations)
        self.calls = 0

    def time(self, fn):
        fn()
        self.calls += 1
        return next(self.durations)


def test_measure_honours_min_runs_and_min_seconds():
    calls = []
    # first call 5 s, one warm-up, then 0.1 s each: min_seconds 1.0 needs 10 runs (> min_runs 3).
    clock = FakeClock([5.0, 0.2] + [0.1] * 100)
    t = measure(lambda: calls.append(1), clock, TimingConfig(warmup_runs=1, min_runs=3, min_seconds=0.95))
    assert t.first_call_s == 5.0 and t.runs == 10 and len(calls) == 12
    # min_runs dominates when runs are slow.
    t = measure(lambda: None, FakeClock([1.0] * 20), TimingConfig(warmup_runs=0, min_runs=4, min_seconds=0.5))
    assert t.runs == 4


def test_timing_summary_by_hand():
    t = Timing(first_call_s=2.0, samples_s=[0.1 * k for k in range(1, 11)])  # 0.1 .. 1.0 s
    s = t.summary(batch=4, height=100, width=50)
    assert s["median_ms"] == pytest.approx(550.0)
    assert s["p90_ms"] == pytest.approx(910.0)  # linear interpolation between 0.9 and 1.0
    assert s["p99_ms"] == pytest.approx(991.0)
    assert s["ms_per_image"] == pytest.approx(137.5)
    assert s["images_per_s"] == pytest.approx(4 / 0.55)
    assert s["megapixels_per_s"] == pytest.approx(4 * 5000 / 0.55 / 1e6)
    assert s["first_call_ms"] == 2000.0


def test_memory_probe_sees_an_allocation():
    probe = MemoryProbe()
    probe.reset()
    block = np.ones(64 * 2**20 // 8)  # 64 MB, touched
    got = probe.read()
    assert got["peak_rss_mb"] > 64
    if probe.resettable:
        assert got["rss_rise_mb"] >= 60
    del block


def test_inputs_are_corrupted_photos_and_seeded():
    a = corrupted_batch(3, 40, 56)
    assert a.shape == (3, 40, 56, 3) and a.dtype == np.uint8
    assert np.array_equal(a, corrupted_batch(3, 40, 56))  # same inputs on every run
    assert all(a[i].std() > 10 for i in range(3))  # photos, not flat fills
    assert not np.array_equal(a[0], a[1])


@pytest.mark.parametrize("flip_ensemble", [False, True])
def test_reference_is_both_signatures_from_one_pass(tiny_model, flip_ensemble, monkeypatch):
    """The eager reference runs the network once per cell and still equals what
    `pipeline(images)` and `pipeline.forward_tensor(x)` give, byte for byte."""
    from benchmarks.reference import reference
    from restore_core.img_utils import normalize
    from restore_core.pipeline import RestorationPipeline

    pipeline = RestorationPipeline(tiny_model, flip_ensemble=flip_ensemble).eval()
    images = corrupted_batch(2, 40, 56)
    calls = []
    monkeypatch.setattr(tiny_model, "forward", lambda x, f=tiny_model.forward: calls.append(x.shape) or f(x))
    ref = reference(pipeline, None, images)
    assert len(calls) == 1
    with torch.inference_mode():
        pixels = pipeline(torch.from_numpy(images))
        tensor = pipeline.forward_tensor(normalize(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()))
    for got, want in zip(ref["pixels"], pixels, strict=True):
        assert got.dtype == want.numpy().dtype and np.array_equal(got, want.numpy())
    for got, want in zip(ref["tensor"], tensor, strict=True):
        assert np.array_equal(got, want.numpy())
