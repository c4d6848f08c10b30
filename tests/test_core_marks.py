"""benchmarks.core_marks: how much of a mark's core lies near its few colours, and what a rule on it drops."""

from __future__ import annotations

import numpy as np

from benchmarks.core_marks import CORE, LEVELS, core_share, markdown, solid_share, summarize


def test_the_share_counts_pixels_near_up_to_three_colours():
    rng = np.random.default_rng(0)
    two = np.concatenate([np.full((60, 3), (200, 30, 30)), np.full((40, 3), (20, 20, 220))])
    noisy = np.clip(two + rng.integers(-LEVELS // 2, LEVELS // 2 + 1, two.shape), 0, 255)
    assert solid_share(noisy) == 1.0  # two touching shapes, each within the levels of its colour
    ramp = np.stack([np.arange(100) * 2] * 3, axis=1)  # a gradient: 200 levels over 100 pixels
    # three colours, each the median of the commonest bin left (7, 39, 71), take 12, 16 and 16 pixels
    assert solid_share(ramp) == 0.44
    far = np.concatenate([np.full((95, 3), 100), rng.integers(0, 256, (5, 3))])
    assert solid_share(far) == 0.95  # the scattered five add under a tenth each: the reading ends


def test_the_core_leaves_the_edge_out():
    rgb = np.zeros((20, 20, 3), np.uint8)
    mark = np.zeros((20, 20), bool)
    mark[2:18, 2:18] = True
    rgb[mark] = (250, 250, 0)
    rgb[2:2 + CORE, 2:18] = (0, 0, 250)  # the top edge's rows another colour: not read
    assert core_share(rgb, mark) == 1.0
    thin = np.zeros((20, 20), bool)
    thin[5:5 + 2 * CORE, 2:18] = True  # no pixel lies CORE + 1 in from both edges
    assert core_share(rgb, thin) is None


def test_the_summary_counts_marks_under_each_threshold_by_hand():
    rows = [{"pixels": 100, "damage": 1.0, "core": 0.95},  # paint, solid
            {"pixels": 50, "damage": 0.0, "core": 0.62},  # photo, under 0.65 and up
            {"pixels": 200, "damage": 0.6, "core": 0.72},  # mostly paint, 120 pixels of damage
            {"pixels": 10, "damage": 0.0, "core": None}]  # no core: never dropped
    s = summarize(rows)
    assert s["0.6"] == {"marks": 0, "paint_marks": 0, "damage_pixels": 0, "photo_pixels": 0}
    assert s["0.65"] == {"marks": 1, "paint_marks": 0, "damage_pixels": 0, "photo_pixels": 50}
    assert s["0.75"] == {"marks": 2, "paint_marks": 1, "damage_pixels": 120, "photo_pixels": 130}
    assert s["all"] == {"marks": 4, "paint_marks": 2, "damage_pixels": 220, "photo_pixels": 140}
    table = markdown({"photos": "selection", "per_photo": 4, "clean_per_photo": 24, "summary": s})
    assert "| 0.75 | 2 | 1 | 120 | 130 |" in table and "4 marks, 2 of them mostly paint" in table
