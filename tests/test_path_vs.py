"""benchmarks.path_vs: this checkout's restore-run against another checkout's, run in turn on the
same photos (here the checkout against itself, on tiny photos: the mechanics, not a speed)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from benchmarks import path_vs


def test_cases_are_clean_and_painted_photos_then_a_folder(tmp_path):
    cases = path_vs.make_cases(tmp_path, [0.05], folder=3)
    assert [c[0] for c in cases] == ["clean 0.05 Mpx JPEG", "painted 0.05 Mpx JPEG",
                                     "folder of 3 photos of about 1 Mpx, half painted"]
    clean, painted, folder = (sorted(c[1].iterdir()) for c in cases)
    assert len(clean) == len(painted) == 1 and len(folder) == 3
    assert clean[0].read_bytes() != painted[0].read_bytes()
    assert 0.04 < cases[0][2] < 0.06 and 2.0 < cases[2][2] < 3.5  # megapixels, summed over the folder


def test_both_checkouts_run_in_turn_and_the_ratio_is_pair_by_pair(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    from benchmarks.memory import make_photo

    w, h = make_photo(src / "a.jpg", 0.03, painted=True)
    seen = []
    rows = path_vs.compare({"this": path_vs.HERE, "baseline": path_vs.HERE}, [("one", src, w * h / 1e6)], 2,
                           tmp_path, log=lambda line, err=True: seen.append(line))
    (row,) = rows
    # A B, then B A: each checkout twice, in alternating order.
    assert [line.split(": ")[1].split()[0] for line in seen] == ["this", "baseline", "baseline", "this"]
    for key in ("this", "baseline"):
        r = row[key]
        assert len(r["wall_s"]) == 2 and r["median_wall_s"] > 0 and r["peak_rss_mb"] > 50
        assert r["mp_per_s"] == pytest.approx(row["megapixels"] / r["median_wall_s"], abs=2e-3)  # both rounded to 3 places
    ratios = [b / a for a, b in zip(row["this"]["wall_s"], row["baseline"]["wall_s"])]
    assert row["speed_ratio"]["min"] == pytest.approx(min(ratios), abs=2e-3)
    assert row["speed_ratio"]["max"] == pytest.approx(max(ratios), abs=2e-3)
    # Each run wrote its own output folder, the photo restored in it.
    assert len(list(tmp_path.glob("out-*/a.jpg"))) == 4


def test_a_checkout_that_fails_names_itself(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(click.ClickException, match="exited 3"):
        path_vs.run_once(path_vs.HERE, src, tmp_path / "out")


def test_markdown_names_the_machine_both_revisions_and_the_ratio():
    row = {"case": "painted 12 Mpx JPEG", "megapixels": 12.0,
           "this": {"median_wall_s": 6.0, "mp_per_s": 2.0, "peak_rss_mb": 1000.0},
           "baseline": {"median_wall_s": 12.0, "mp_per_s": 1.0, "peak_rss_mb": 3500.0},
           "speed_ratio": {"median": 2.0, "min": 1.9, "max": 2.1}}
    result = {"machine": {"cpu": "Some CPU", "cpu_features": "avx2", "usable_cpus": 2}, "load_before": 0.5,
              "load_after": 1.0, "repeats": 3,
              "versions": {"onnxruntime": "1.31.1", "numpy": "2.4.6", "ml_dtypes": "0.6.0", "torch": "x"}, "revisions": {"this": "abc1 now", "baseline": "def2 then"},
              "rows": [row], "command": "python -m benchmarks.path_vs --baseline B"}
    md = path_vs.to_markdown(result)
    assert "same packages: onnxruntime 1.31.1, numpy 2.4.6, ml_dtypes 0.6.0." in md
    assert "Some CPU (avx2; 2 usable CPUs)" in md and "abc1 now" in md and "def2 then" in md
    assert "| painted 12 Mpx JPEG | 12.0 | 6.00 | 2.00 | 1,000 | 12.00 | 1.00 | 3,500 | 2.00× (1.90–2.10) |" in md
    json.dumps(result)  # the report is plain JSON
    assert Path(path_vs.__file__).parent.name == "benchmarks"
