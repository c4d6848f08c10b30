"""benchmarks.gutter_shares: the runs of one colour across a picture, each with its neighbours' share."""

from __future__ import annotations

import numpy as np

from benchmarks.gutter_shares import drawn_lines, markdown, runs, summarize


def test_the_runs_on_a_gutter_and_elsewhere():
    """Two noise photos, 6 white columns between them, and one red column inside the left photo
    beside columns mostly of its red: the gutter is listed and taken, the red column listed, not,
    across the picture and again across the left panel the gutter bounds."""
    rng = np.random.default_rng(5)
    img = np.full((80, 166, 3), 255, np.uint8)
    img[:, :80], img[:, 86:] = rng.integers(0, 256, (80, 80, 3)), rng.integers(0, 256, (80, 80, 3))
    clean = img.copy()  # the collage as drawn
    assert not drawn_lines(clean).any() and np.array_equal(np.flatnonzero(drawn_lines(clean.transpose(1, 0, 2))),
                                                           np.arange(80, 86))
    img[:, 38:42] = (200, 0, 0)  # then the photo's
    img[:60, 35:37] = img[:60, 43:45] = (200, 0, 0)  # 75 % of the columns 2 and 3 beyond the red one of its colour
    found = runs(img, clean)
    assert [(r["axis"], r["depth"], r["start"], r["end"], r["gutter"], r["taken"]) for r in found] == [
        ("columns", 0, 38, 42, False, False), ("columns", 0, 80, 86, True, True), ("columns", 1, 38, 42, False, False)]
    assert found[0]["share"] == 0.75 and found[1]["share"] == 0.0 and found[2]["panel"] == [0, 80, 0, 80]


def test_a_gutter_across_a_panel_is_on_the_collage_s_lines():
    """One photo beside two stacked: the rows between the two cross the right panel alone, drawn
    in the collage's white there: listed at depth 1, on a gutter, taken."""
    rng = np.random.default_rng(6)
    img = np.full((86, 166, 3), 255, np.uint8)
    img[:, :80] = rng.integers(0, 256, (86, 80, 3))
    img[:40, 86:], img[46:, 86:] = rng.integers(0, 256, (40, 80, 3)), rng.integers(0, 256, (40, 80, 3))
    found = [(r["axis"], r["depth"], r["start"], r["end"], r["gutter"], r["taken"]) for r in runs(img, img)]
    assert found == [("columns", 0, 80, 86, True, True), ("rows", 1, 40, 46, True, True)]
    assert runs(img, None)[1]["gutter"] is False  # a photo file: no lines drawn


def test_the_summary_counts_and_ranges():
    rows = [{"group": "g", "save": "png", "runs": [
        {"axis": "rows", "start": 5, "end": 6, "share": 0.2, "gutter": False, "taken": False},
        {"axis": "rows", "start": 9, "end": 12, "share": 0.5, "gutter": False, "taken": False},
        {"axis": "columns", "start": 40, "end": 46, "share": 0.1, "gutter": True, "taken": True},
        {"axis": "rows", "depth": 1, "start": 7, "end": 9, "share": 0.0, "gutter": True, "taken": True}]}]
    s = summarize(rows)
    assert s["g, png, elsewhere"] == {"runs": 2, "taken": 0, "lines_taken": 0, "share_min": 0.2, "share_max": 0.5,
                                      "wide_share_min": 0.5, "wide_share_max": 0.5}
    assert s["g, png, on a gutter"]["taken"] == 1 and s["g, png, on a gutter"]["lines_taken"] == 6
    assert s["g, png, on a gutter, across a panel"]["runs"] == 1
    assert "| g, png, elsewhere | 2 | 0 | 0 | 0.20–0.50 | 0.50–0.50 |" in markdown({"photos": "selection", "summary": s})
    assert "| g, png, on a gutter | 1 | 1 | 6 | 0.10–0.10 | 0.10–0.10 |" in markdown({"photos": "selection", "summary": s})
