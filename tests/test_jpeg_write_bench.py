"""benchmarks/jpeg_write.py on a tiny photo: every step timed, the sizes it reports consistent."""

from __future__ import annotations

import pytest

from benchmarks import jpeg_write

pytest.importorskip("jpeglib")


def test_each_step_is_timed_and_the_sizes_hold(tmp_path):
    got = jpeg_write.measure(0.05, 2.0, 1, tmp_path)
    steps = got["steps"]
    assert {"block-by-block write, sequential", "block-by-block write, progressive", "the photo's end found",
            "a 160×120 EXIF thumbnail made again"} <= set(steps)
    assert all(row["median_s"] >= 0 for row in steps.values() if "median_s" in row)
    assert steps["entropy coding, tables made for them"]["bytes"] < steps["entropy coding, standard tables"]["bytes"]
    assert steps["lossless transcoding to progressive"]["bytes"] < steps["entropy coding, standard tables"]["bytes"]
    text = jpeg_write.to_markdown({"machine": {"cpu": "x", "cpu_features": "y", "usable_cpus": 2}, "noise": 2.0,
                                   "repeats": 1, "sizes": [got], "command": "c"})
    assert "| the photo's end found |" in text and f"Mpx ({got['width']}×{got['height']}, " in text
