"""benchmarks.surround_marks: each mark's ring distance, and what each threshold would drop."""

from __future__ import annotations

import numpy as np

from benchmarks.marks_common import KINDS
from benchmarks.surround_marks import markdown, marks, summarize


def test_the_summary_counts_marks_and_their_pixels_by_hand():
    rows = [{"pixels": 100, "damage": 1.0, "ring": 3.0},  # paint, near its surroundings' colour
            {"pixels": 50, "damage": 0.0, "ring": 10.0},  # photo
            {"pixels": 200, "damage": 0.4, "ring": 18.0},  # mostly photo, 80 pixels of damage
            {"pixels": 30, "damage": 1.0, "ring": 90.0},  # paint on another colour
            {"pixels": 9, "damage": 0.0, "ring": None}]  # too small a ring: never dropped
    s = summarize(rows)
    assert s["4"] == {"marks": 1, "paint_marks": 1, "damage_pixels": 100, "photo_pixels": 0}
    assert s["12"] == {"marks": 2, "paint_marks": 1, "damage_pixels": 100, "photo_pixels": 50}
    assert s["20"] == {"marks": 3, "paint_marks": 1, "damage_pixels": 180, "photo_pixels": 170}
    assert s["all"] == {"marks": 5, "paint_marks": 2, "damage_pixels": 210, "photo_pixels": 179}
    table = markdown({"photos": "selection", "per_photo": 12, "same": 16, "summary": s})
    assert "| 20 | 3 | 1 | 180 | 170 |" in table and "5 marks, 2 of them mostly paint" in table


def test_lossy_kinds_only():
    assert KINDS and not any(k.startswith("png") or "graphics" in k or "camera" in k for k in KINDS)


def test_a_painted_square_reads_far_from_its_surroundings():
    """With a restorer whose mask is given: a square of paint on grey noise is far from the
    grey around it; a mark on the grey is not."""
    import io

    from PIL import Image

    rgb = np.clip(np.full((48, 48, 3), 120) + np.random.default_rng(2).integers(-3, 4, (48, 48, 3)), 0, 255).astype(np.uint8)
    rgb[8:20, 8:20] = (240, 30, 30)
    mask = np.zeros((48, 48), np.uint8)
    mask[8:20, 8:20] = 255
    mask[30:40, 30:40] = 255
    damage = mask[..., None].astype(bool)[..., 0] & (np.arange(48)[:, None] < 24)

    class Given:
        def restore(self, pil, predicted=False):
            return type("R", (), {"mask": Image.fromarray(mask)})()

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    rows = sorted(marks(Given(), buf.getvalue(), damage), key=lambda r: -r["damage"])
    assert [r["pixels"] for r in rows] == [144, 100] and rows[0]["damage"] == 1.0 and rows[1]["damage"] == 0.0
    assert rows[0]["ring"] > 100 and rows[1]["ring"] <= 3


def test_marks_are_read_kind_by_kind_and_written(tmp_path, monkeypatch):
    """`kind_marks` reads every file of each kind, at its own draws a photo, naming the file on each
    mark; `write_marks_study` writes the report (the command and machine first) and its table."""
    import json

    from benchmarks import report as report_module
    from benchmarks.marks_common import kind_marks, write_marks_study

    seen = []

    def read(data, damage):
        seen.append(damage.shape)
        return [{"pixels": int(damage.sum())}]

    got = kind_marks([("jpeg-90-420", 1), ("clean-jpeg-90", 1)], "selection", read)
    assert list(got) == ["jpeg-90-420", "clean-jpeg-90"] and len(got["jpeg-90-420"]) == 5 == len(seen) // 2
    assert all(m["pixels"] > 0 for m in got["jpeg-90-420"]) and all(m["pixels"] == 0 for m in got["clean-jpeg-90"])
    assert got["jpeg-90-420"][0]["name"] != got["jpeg-90-420"][1]["name"]
    monkeypatch.setattr(report_module, "environment", lambda: {"machine": {"cpu": "test"}})
    write_marks_study(str(tmp_path / "r"), "benchmarks.surround_marks", {"photos": "selection"},
                      [("clean-jpeg-90", 1)], read, lambda rows: {"all": len(rows)},
                      lambda report: f"{len(report['marks'])} kinds, {report['summary']['all']} marks\n")
    written = json.loads((tmp_path / "r.json").read_text())
    assert list(written) == ["command", "machine", "photos", "marks", "summary"]
    assert written["command"].startswith("python -m benchmarks.surround_marks")
    assert written["marks"]["clean-jpeg-90"] == got["clean-jpeg-90"] and written["summary"] == {"all": 5}
    assert (tmp_path / "r.md").read_text() == "1 kinds, 5 marks\n"
