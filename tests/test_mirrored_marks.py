"""benchmarks.mirrored_marks: which views find each mark again, and what each way of reading them drops."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from benchmarks.mirrored_marks import RULES, markdown, marks, summarize


def test_the_summary_counts_marks_and_their_pixels_by_hand():
    rows = [{"pixels": 100, "damage": 1.0, "lr": 80, "tb": 90},  # paint, found again both ways
            {"pixels": 50, "damage": 0.0, "lr": 0, "tb": 0},  # photo, found again neither way
            {"pixels": 200, "damage": 0.4, "lr": 0, "tb": 12},  # mostly photo, 80 pixels of damage
            {"pixels": 30, "damage": 1.0, "lr": 0, "tb": 0},  # paint the views miss
            {"pixels": 900, "damage": 0.0, "lr": None, "tb": None}]  # too large to be read
    s = summarize(rows)
    assert s["neither view"] == {"marks": 2, "paint_marks": 1, "damage_pixels": 30, "photo_pixels": 50}
    assert s["not left-right"] == {"marks": 3, "paint_marks": 1, "damage_pixels": 110, "photo_pixels": 170}
    assert s["not top-bottom"] == s["neither view"]
    assert s["read"]["marks"] == 4 and s["all"] == {"marks": 5, "paint_marks": 2, "damage_pixels": 210,
                                                   "photo_pixels": 1070}
    table = markdown({"photos": "selection", "per_photo": 4, "max_side": 256, "summary": s})
    assert "| not left-right | 3 | 1 | 110 | 170 |" in table and "5 marks, 2 of them mostly paint" in table
    assert set(RULES) == {"neither view", "not left-right", "not top-bottom", "not both"}


def test_each_view_is_read_on_the_mark_flipped_back():
    """With a restorer whose mask is given and a graph that finds the red pixels of a view: the
    red square is found again both ways, the grey one neither, and a mark wider than the bound
    is not read."""
    rgb = np.full((64, 300, 3), 100, np.uint8)
    rgb[4:10, 2:12] = (255, 0, 0)
    mask = np.zeros((64, 300), np.uint8)
    mask[4:10, 2:12] = 255
    mask[40:46, 20:28] = 255
    mask[58:60, 40:290] = 255
    damage = np.zeros((64, 300), bool)
    damage[4:10, 2:12] = True

    class Given:
        def restore(self, pil, predicted=False):
            return type("R", (), {"mask": Image.fromarray(mask)})()

        def masks(self, views):
            return (views == (255, 0, 0)).all(axis=-1)

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    rows = marks(Given(), buf.getvalue(), damage, 64)
    assert [(r["pixels"], r["damage"], r["lr"], r["tb"]) for r in rows] == [
        (60, 1.0, 60, 60), (48, 0.0, 0, 0), (500, 0.0, None, None)]
