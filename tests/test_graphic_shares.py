"""benchmarks.graphic_shares: the graphic check's shares, file by file, summarized per group and save."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.graphic_shares import markdown, shares, summarize
from restore_core.graphics import screen


@pytest.fixture(scope="module")
def restorer():
    from runtime import Restorer

    return Restorer(device="cpu", graphic_check=False)


def test_a_screen_reads_as_a_graphic_in_every_save(restorer):
    shot = screen(np.random.default_rng(1))
    for save in ("png", "jpeg-75", "webp-90"):
        row = shares(restorer, shot, save)
        assert row["found"] and row["graphic"] and row["flat"] >= 0.25 and row["top"] >= 0.35, (save, row)
    assert shares(restorer, np.full((64, 64, 3), 128, np.uint8), "png") == {"found": False, "outer": 1.0}


def test_the_summary_counts_and_ranges():
    rows = [{"group": "g", "save": "png", "found": True, "flat": 0.1, "texture": 0.9, "coarse_flat": 0.2, "coarse_texture": 0.9, "top": 0.2, "others": 0.1, "inset_top": 0.3, "inset_others": 0.1, "inset_read": 40, "graphic": False, "outer": 0.3},
            {"group": "g", "save": "png", "found": True, "flat": 0.8, "texture": 0.0, "coarse_flat": 0.8, "coarse_texture": 0.0, "top": 0.9, "others": 0.5, "inset_top": 0.9, "inset_others": 0.6, "inset_read": 900, "graphic": True, "outer": 0.9},
            {"group": "g", "save": "png", "found": False, "outer": 1.0}]
    s = summarize(rows)["g, png"]
    assert (s["files"], s["found"], s["graphics"]) == (3, 2, 1)
    assert (s["flat_min"], s["flat_max"], s["others_min"], s["others_max"]) == (0.1, 0.8, 0.1, 0.5)
    assert (s["inset_top_min"], s["inset_top_max"], s["inset_others_min"], s["inset_others_max"]) == (0.3, 0.9, 0.1, 0.6)
    assert (s["inset_read_min"], s["inset_read_max"]) == (40, 900)
    assert (s["outer_min"], s["outer_max"]) == (0.3, 1.0)  # every file, found or not
    table = markdown({"photos": "selection", "summary": {"g, png": s}})
    assert "| g, png | 3 | 2 | 1 | 0.10–0.80 |" in table and table.rstrip().endswith("| 40–900 | 0.30–1.00 |")
