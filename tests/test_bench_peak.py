"""The fp32 matmul peak: measured in rounds, merged before/after the rows, compared with fp32 rows only."""

import pytest

from benchmarks.peak import matmul_peak, merge_peaks
from benchmarks.report import _peak_note
from benchmarks.runner import attach_peak


def _row(backend, precision, gflops, device="cpu", status="ok"):
    return {"backend": backend, "precision": precision, "gflops_per_s": gflops, "device": device, "status": status}


def test_peak_is_the_best_round_and_reports_the_spread():
    peak = matmul_peak("cpu", n=64, rounds=3, round_seconds=0.01, threads=1)
    assert len(peak["rounds_gflops"]) == 3 and peak["threads"] == 1
    assert peak["gflops"] == pytest.approx(max(peak["rounds_gflops"]), abs=0.06)  # rounds are rounded to 0.1
    assert 0 <= peak["spread"] < 1


def test_merge_takes_the_best_of_all_rounds():
    before = {"device": "cpu", "n": 8, "threads": 2, "gflops": 100.04, "rounds_gflops": [100.0, 80.0], "spread": 0.2}
    after = {"device": "cpu", "n": 8, "threads": 2, "gflops": 150.0, "rounds_gflops": [150.0, 120.0], "spread": 0.2}
    merged = merge_peaks(before, after)
    assert merged["gflops"] == 150.0 and merged["rounds_gflops"] == [100.0, 80.0, 150.0, 120.0]
    assert merged["spread"] == pytest.approx(70 / 150)


def test_fraction_of_peak_for_fp32_rows_only():
    rows = [_row("eager", "fp32", 50.0), _row("ort-cpu-int8", "int8", 300.0), _row("eager-bf16", "bf16", 120.0),
            {**_row("x", "fp32", 0), "status": "skipped"}]
    peaks = {"cpu": {"gflops": 100.0, "rounds_gflops": [100.0], "threads": 2, "spread": 0.0}}
    attach_peak(rows, peaks)
    assert [r.get("fraction_of_peak") for r in rows] == [0.5, None, None, None]
    assert peaks["cpu"]["under_measured"] is False


def test_a_peak_slower_than_an_fp32_row_is_flagged_and_not_used():
    rows = [_row("eager", "fp32", 50.0), _row("ort-cpu", "fp32", 190.0)]
    peaks = {"cpu": {"gflops": 88.0, "rounds_gflops": [88.0, 80.0], "threads": 2, "spread": 0.09}}
    attach_peak(rows, peaks)
    assert peaks["cpu"]["under_measured"] is True
    assert [r["fraction_of_peak"] for r in rows] == [None, None]
    note = _peak_note(peaks)
    assert "best of 2 rounds" in note and "80-88, spread 9 %" in note and "no % of peak" in note
