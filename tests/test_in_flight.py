"""benchmarks.in_flight: what each kind of image costs in flight, set beside what the memory gate
counts for it (here on tiny photos: the mechanics and the counted figures, not the slopes)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from benchmarks import in_flight
from runtime.memory import IMAGE_BYTES_PER_PIXEL, JPEG_BYTES_PER_PIXEL, PREDICTED_BYTES_PER_PIXEL, WIDE_BYTES_PER_PIXEL


def test_each_kind_is_the_file_it_names(tmp_path):
    files = in_flight.make_files(list(in_flight.KINDS), [0.02, 0.04], tmp_path)
    assert set(files) == set(in_flight.KINDS) and not any("," in kind for kind in files)  # --kinds splits on commas
    for kind, made in files.items():
        assert [round(mp, 2) for _, mp in made] == [0.02, 0.04], kind
        with Image.open(made[0][0]) as im:
            if kind.startswith("JPEG") and kind != "JPEG grey":
                sampling = kind.split(" with ")[0].split(" turned ")[0].removesuffix(" progressive")[5:]
                assert im.format == "JPEG" and JpegImagePlugin.get_sampling(im) == {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}[sampling]
                assert bool(im.info.get("progressive")) == ("progressive" in kind), kind
                assert im.getexif().get(0x0112, 1) == (6 if "turned" in kind else 1), kind
            expected = {"JPEG grey": "L", "PNG grey": "L", "PNG palette": "P", "PNG grey+alpha": "LA", "PNG RGBA": "RGBA",
                        "PNG 16-bit RGBA": "RGBA", "WebP lossless RGBA": "RGBA"}.get(kind, "RGB")
            assert im.mode == expected, kind


def test_counted_is_what_the_gate_reserves(tmp_path):
    files = in_flight.make_files(["PNG RGB", "PNG RGBA", "PNG 16-bit RGBA", "JPEG 4:4:4", "JPEG 4:2:0"], [0.05], tmp_path)
    got = {kind: in_flight.counted(made[0][0]) for kind, made in files.items()}
    assert got["PNG RGB"] == IMAGE_BYTES_PER_PIXEL and got["PNG RGBA"] == WIDE_BYTES_PER_PIXEL["RGBA"]
    assert got["PNG 16-bit RGBA"] == WIDE_BYTES_PER_PIXEL["RGBA;16"]
    # A colour JPEG: its coefficients and its file three times, at least what its steps before the write hold.
    assert got["JPEG 4:4:4"] > got["JPEG 4:2:0"] >= JPEG_BYTES_PER_PIXEL
    path = files["JPEG 4:2:0"][0][0]
    assert in_flight.counted(path, predicted=True) == got["JPEG 4:2:0"] + PREDICTED_BYTES_PER_PIXEL


def test_a_row_is_the_slope_of_the_peak(tmp_path, monkeypatch):
    peaks = iter([290.0, 300.0, 300.0 + 18e6 * 20 / 2**20, 250.0])  # two runs a size: the larger counts
    monkeypatch.setattr(in_flight, "peak", lambda path, out, options: {"peak_mib": next(peaks), "wall_s": 1.0})
    (row,) = in_flight.measure(["PNG RGB"], [0.02, 0.04], tmp_path, repeats=2, log=lambda *a, **k: None)
    assert [r["peaks_mib"] for r in row["runs"]] == [[290.0, 300.0], [300.0 + 18e6 * 20 / 2**20, 250.0]]
    rise_px = (row["runs"][1]["megapixels"] - row["runs"][0]["megapixels"]) * 1e6
    assert row["measured_bytes_per_pixel"] == pytest.approx(18e6 * 20 / rise_px, rel=0.01)
    assert row["counted_bytes_per_pixel"] == IMAGE_BYTES_PER_PIXEL
    assert not list(tmp_path.glob("PNG*"))  # the photos are removed once measured
    md = in_flight.to_markdown({"machine": {"cpu": "X", "cpu_features": "avx2", "usable_cpus": 2}, "sizes": [0.02, 0.04], "repeats": 2,
                                "rows": [row], "command": "python -m benchmarks.in_flight"})
    assert "| PNG RGB | 300 / " in md and f"| {IMAGE_BYTES_PER_PIXEL:.1f} |" in md


def test_a_real_run_measures_a_peak(tmp_path):
    kind = "JPEG 4:2:0 with --save-predicted --save-mask"
    (path, _mp), = in_flight.make_files([kind], [0.03], tmp_path)[kind]
    got = in_flight.peak(path, tmp_path / "out", in_flight.OPTIONS[kind])
    assert got["peak_mib"] > 50 and (tmp_path / "out" / path.name).is_file()
    assert (tmp_path / "out" / "masks" / (path.name + ".png")).is_file()  # its options reached the run
    assert np.asarray(Image.open(tmp_path / "out" / path.name)).shape[:2] == np.asarray(Image.open(path)).shape[:2]


def test_results_are_written_whole_and_printed(tmp_path, capsys):
    from benchmarks.memory import write_result

    write_result({"command": "x", "rows": []}, str(tmp_path / "r.json"), str(tmp_path / "r.md"), "## table\n")
    assert json.loads((tmp_path / "r.json").read_text()) == {"command": "x", "rows": []}
    assert (tmp_path / "r.md").read_text() == "## table\n" and "## table" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.md"]  # no temp file left behind
