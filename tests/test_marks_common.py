"""benchmarks.marks_common: the parts the mark studies share (reading the marks, tallying them, the options)."""

from __future__ import annotations

import io

import click
import numpy as np
from PIL import Image

from benchmarks.marks_common import read_marks, study_options, tallies_under, tally_table, tally_words


def test_a_mark_at_a_threshold_is_dropped_only_at_or_under():
    """core_marks drops a share under a threshold (a rule keeps a mark that reaches it);
    surround_marks a ring at or under it (runtime/surround.py drops a ring within SAME)."""
    rows = [{"pixels": 10, "damage": 1.0, "x": 4}, {"pixels": 20, "damage": 0.0, "x": 8}, {"pixels": 5, "damage": 0.0, "x": None}]
    under = tallies_under(rows, "x", (4, 8))
    at_or_under = tallies_under(rows, "x", (4, 8), at_or_under=True)
    assert [under[k]["marks"] for k in ("4", "8", "all")] == [0, 1, 3]
    assert [at_or_under[k]["marks"] for k in ("4", "8", "all")] == [1, 2, 3]
    assert at_or_under["8"] == {"marks": 2, "paint_marks": 1, "damage_pixels": 10, "photo_pixels": 20}
    table = tally_table(f"Heading: {tally_words(under['all'])}.", "under", "---:", ((t, under[str(t)]) for t in (4, 8)))
    assert table == ("Heading: 3 marks, 1 of them mostly paint, 10 pixels of damage and 25 of photo in all.\n\n"
                     "| under | marks | mostly paint | their pixels of damage | of photo |\n"
                     "| ---: | ---: | ---: | ---: | ---: |\n| 4 | 0 | 0 | 0 | 0 |\n| 8 | 1 | 1 | 10 | 0 |\n")


def test_each_mark_is_read_in_its_box_grown_by_the_margin():
    mask = np.zeros((20, 30), np.uint8)
    mask[2:5, 3:9] = 255
    mask[12:18, 20:22] = 255

    class Given:
        def restore(self, pil, predicted=False):
            return type("R", (), {"mask": Image.fromarray(mask)})()

    buf = io.BytesIO()
    Image.fromarray(np.full((20, 30, 3), 50, np.uint8)).save(buf, "PNG")
    seen = []

    def measure(box, mark, rgb, whole):
        seen.append((box, mark.shape, rgb.shape, whole.shape))
        return {"box": [(s.start, s.stop) for s in box]}

    damage = np.zeros((20, 30), bool)
    damage[2:5, 3:6] = True
    rows = read_marks(Given(), buf.getvalue(), damage, 2, measure)
    assert rows == [{"pixels": 18, "damage": 0.5, "box": [(0, 7), (1, 11)]},
                    {"pixels": 12, "damage": 0.0, "box": [(10, 20), (18, 24)]}]
    assert seen[0][1:] == ((7, 10), (20, 30, 3), (20, 30))
    assert [r["damage"] for r in read_marks(Given(), buf.getvalue(), None, 0, lambda *a: {})] == [0.0, 0.0]


def test_the_options_every_study_takes():
    @click.command()
    @study_options(per_photo=12)
    @click.option("--more", default=1)
    def with_draws(output, photos, per_photo, more):
        pass

    @click.command()
    @study_options()
    def without(output, photos):
        pass

    assert [p.name for p in with_draws.params] == ["output", "photos", "per_photo", "more"]
    assert [p.default for p in with_draws.params[1:]] == ["selection", 12, 1]
    assert [p.name for p in without.params] == ["output", "photos"] and without.params[0].required
