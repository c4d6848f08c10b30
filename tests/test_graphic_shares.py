"""benchmarks.graphic_shares: the graphic check's shares, file by file, summarized per group and save."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.graphic_shares import markdown, shares, summarize
from restore_core.graphics_drawn import screen


@pytest.fixture(scope="module")
def restorer():
    from runtime import Restorer

    return Restorer(device="cpu", graphic_check=False)


def test_a_screen_reads_as_a_graphic_in_every_save(restorer):
    shot = screen(np.random.default_rng(1))
    for save in ("png", "jpeg-75", "webp-90"):
        row = shares(restorer, shot, save)
        assert row["found"] and row["graphic"] and row["flat"] >= 0.25 and row["top"] >= 0.35, (save, row)
    assert shares(restorer, np.full((64, 64, 3), 128, np.uint8), "png") == {"found": False, "outer": 1.0, "corners": None}


def test_the_corners_of_a_frame_and_of_a_pages_margins(restorer):
    """Where two opposite sides read as a frame's, the corners in its colour: four in a frame all
    round; two where a page's margins end at a band across its top (the top corners' 8-pixel
    squares, the sides' width, hold 2 rows of the page's colour under the 6 of the band)."""
    rng = np.random.default_rng(3)
    framed = np.full((96, 96, 3), 255, np.uint8)
    framed[8:-8, 8:-8] = rng.integers(0, 256, (80, 80, 3))
    page = framed.copy()
    page[:6] = (20, 60, 160)  # a bar across the top: 6 of 96 rows, the side columns still hold 94 %
    assert shares(restorer, framed, "png")["corners"] == 4
    assert shares(restorer, page, "png")["corners"] == 2


def test_the_summary_counts_and_ranges():
    rows = [{"group": "g", "save": "png", "found": True, "flat": 0.1, "texture": 0.9, "coarse_flat": 0.2, "coarse_texture": 0.9, "top": 0.2, "others": 0.1, "inset_top": 0.3, "inset_others": 0.1, "inset_read": 40, "graphic": False, "outer": 0.3, "corners": 0},
            {"group": "g", "save": "png", "found": True, "flat": 0.8, "texture": 0.0, "coarse_flat": 0.8, "coarse_texture": 0.0, "top": 0.9, "others": 0.5, "inset_top": 0.9, "inset_others": 0.6, "inset_read": 900, "graphic": True, "outer": 0.9, "corners": None},
            {"group": "g", "save": "png", "found": False, "outer": 1.0, "corners": 3}]
    s = summarize(rows)["g, png"]
    assert (s["files"], s["found"], s["graphics"]) == (3, 2, 1)
    assert (s["flat_min"], s["flat_max"], s["others_min"], s["others_max"]) == (0.1, 0.8, 0.1, 0.5)
    assert (s["inset_top_min"], s["inset_top_max"], s["inset_others_min"], s["inset_others_max"]) == (0.3, 0.9, 0.1, 0.6)
    assert (s["inset_read_min"], s["inset_read_max"]) == (40, 900)
    assert (s["outer_min"], s["outer_max"]) == (0.3, 1.0)  # every file, found or not
    assert (s["sides"], s["corners_min"], s["corners_max"]) == (2, 0, 3)  # the files whose sides read
    table = markdown({"photos": "selection", "summary": {"g, png": s}})
    assert "| g, png | 3 | 2 | 1 | 0.10–0.80 |" in table and table.rstrip().endswith("| 40–900 | 0.30–1.00 | 2 | 0–3 |")
