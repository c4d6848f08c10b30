"""The folder pipeline end to end on the tiny model: every mode, tiling, bad files, resume, safety."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from export.parity import FP32, pixel_parity, violations
from runtime import image_read as rr
from runtime.batch import PlanError, RunOptions, run_folder
from runtime.restorer import Restorer
from runtime.tiling import least_tile

RNG = np.random.default_rng(11)
MAX_PIXELS = 1_000_000
TILE_BUDGET = 60_000  # 'big.png' (300x260 = 78,000 pixels) takes the tiling path
LOSSLESS = (".png", ".bmp", ".tif", ".tiff", ".webp")


def _rgb(h, w, c=3):
    return RNG.integers(0, 256, (h, w, c), dtype=np.uint8)


def build_folder(root: Path) -> dict:
    """Every mode, a subfolder, odd sizes, a big image, and the bad files. Returns expectations."""
    (root / "sub" / "deeper").mkdir(parents=True)
    good = {
        "rgb.png": Image.fromarray(_rgb(37, 45)),
        "rgba.png": Image.fromarray(_rgb(40, 52, 4), "RGBA"),
        "la.png": Image.fromarray(_rgb(33, 21, 2), "LA"),
        "sub/grey.png": Image.fromarray(_rgb(33, 21)[..., 0]),
        "sub/bw.tif": Image.fromarray(_rgb(30, 34)[..., 0]).convert("1"),
        "sub/deeper/deep16.png": Image.fromarray(RNG.integers(0, 65536, (29, 31)).astype(np.uint16)),
        "sub/deeper/deep16.tif": Image.fromarray(RNG.integers(0, 65536, (20, 24)).astype(np.uint16)),
        "cmyk.tif": Image.fromarray(_rgb(24, 28)).convert("CMYK"),
        "photo.jpg": Image.fromarray(_rgb(40, 52)),
        "cmyk.jpg": Image.fromarray(_rgb(16, 16)).convert("CMYK"),
        "lossless.webp": Image.fromarray(_rgb(26, 30)),
        "alpha.webp": Image.fromarray(_rgb(26, 30, 4), "RGBA"),
        "paint.bmp": Image.fromarray(_rgb(19, 23)),
        "tiny.png": Image.fromarray(_rgb(3, 2)),  # smaller than the stride: the graph pads
        "dot.png": Image.fromarray(_rgb(1, 1)),
        "ünïcødé 名前.png": Image.fromarray(_rgb(30, 30)),
        "big.png": Image.fromarray(_rgb(260, 300)),
        # three of one size: batched together
        "same1.png": Image.fromarray(_rgb(32, 32)),
        "same2.png": Image.fromarray(_rgb(32, 32)),
        "same3.png": Image.fromarray(_rgb(32, 32)),
    }
    pal = Image.fromarray(_rgb(30, 30)).quantize(16)
    for name, img in good.items():
        kwargs = {"lossless": True} if name == "lossless.webp" or name == "alpha.webp" else {}
        img.save(root / name, **kwargs)
    pal.save(root / "pal.png", transparency=3)
    good["pal.png"] = Image.open(root / "pal.png")
    # EXIF-rotated JPEG: 20 wide stored, 12 wide as viewed
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(_rgb(12, 20)).save(root / "rotated.jpg", exif=exif, quality=95)
    good["rotated.jpg"] = None

    (root / "zero.png").write_bytes(b"")
    (root / "text.jpg").write_text("this is not a JPEG")
    data = (root / "big.png").read_bytes()
    (root / "sub" / "trunc.png").write_bytes(data[: len(data) // 2])
    Image.new("L", (1200, 1000)).save(root / "bomb.png")  # 1.2 MP > MAX_PIXELS, compresses to nothing
    (root / "locked.png").write_bytes((root / "rgb.png").read_bytes())
    (root / "notes.txt").write_text("skipped, with a line: not an image suffix")
    bad = {
        "zero.png": "empty file",
        "text.jpg": "not a PNG, JPEG",
        "sub/trunc.png": "truncated or corrupt",
        "bomb.png": "exceeds the limit",
        "locked.png": "permission denied",
    }
    return {"good": good, "bad": bad}


@pytest.fixture(scope="module")
def restorer(tiny_onnx):
    return Restorer(tiny_onnx, device="cpu")


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory, restorer):
    """One run over the whole folder, then a second run over the same OUTPUT."""
    root = tmp_path_factory.mktemp("batch")
    src, out = root / "in", root / "out"
    src.mkdir()
    expect = build_folder(src)
    locked = src / "locked.png"
    mp = pytest.MonkeyPatch()
    if os.geteuid() == 0:  # root reads anything: simulate the unreadable file instead
        real = rr._open_file

        def open_file(path):
            if path.name == "locked.png":
                raise PermissionError(13, "Permission denied", str(path))
            return real(path)

        mp.setattr(rr, "_open_file", open_file)
    else:
        locked.chmod(0)
    opts = dict(batch_size=3, save_mask=True, save_predicted=True, max_pixels=MAX_PIXELS, tile_budget=TILE_BUDGET,
                progress=False)
    try:
        first = restorer.restore_folder(src, out, **opts)
        first_report = json.loads(first.report_path.read_text())
        mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.suffix != ".json"}
        second = restorer.restore_folder(src, out, **opts)
    finally:
        mp.undo()
        locked.chmod(0o644)
    return {"src": src, "out": out, "expect": expect, "first": first, "first_report": first_report, "second": second, "mtimes": mtimes}


def _by_input(result):
    return {r.input: r for r in result.records}


def test_every_good_file_is_restored_in_its_own_mode(folder_run):
    src, expect = folder_run["src"], folder_run["expect"]
    recs = _by_input(folder_run["first"])
    for name in expect["good"]:
        rec = recs[name]
        assert rec.status == "ok", (name, rec.error)
        source, _ = rr.read_image(src / name)  # EXIF applied, as the runner saw it
        out = Image.open(rec.output)
        mask = np.asarray(Image.open(rec.mask)) > 0
        assert out.size == source.size and mask.shape == (source.height, source.width), name
        assert Image.open(rec.predicted).mode == "RGB"
        expected_mode = {"I": "I;16"}.get(source.mode, source.mode)
        assert out.mode == expected_mode, (name, out.mode)
        assert abs(rec.masked_share - mask.mean()) < 1e-9
        a_in, a_out = np.asarray(source), np.asarray(out)
        if Path(name).suffix in LOSSLESS:
            # the contract: every pixel outside the mask is the input's, bit for bit (alpha, 16-bit, inks)
            assert np.array_equal(a_out[~mask], a_in[~mask]), name
        if a_in.ndim == 3 and source.mode in ("RGBA", "LA"):
            assert np.array_equal(a_out[..., -1], a_in[..., -1]), name  # alpha kept everywhere
        if source.mode == "P":
            assert out.getpalette() == source.getpalette() and out.info.get("transparency") == 3


def test_masks_are_meaningful(folder_run):
    recs = _by_input(folder_run["first"])
    shares = [recs[n].masked_share for n in ("rgb.png", "big.png", "same1.png")]
    assert all(0.2 < s < 0.8 for s in shares), shares  # about half: outside-mask checks are not vacuous


def test_exif_rotation_and_tiling_and_tiny_images(folder_run):
    recs = _by_input(folder_run["first"])
    rotated = Image.open(recs["rotated.jpg"].output)
    assert rotated.size == (12, 20) and rotated.getexif().get(0x0112, 1) == 1
    assert recs["big.png"].tiles > 1 and recs["rgb.png"].tiles == 0
    assert (recs["tiny.png"].width, recs["tiny.png"].height) == (2, 3)
    assert Image.open(recs["dot.png"].output).size == (1, 1)


def test_bad_files_are_reported_and_the_rest_completes(folder_run):
    first = folder_run["first"]
    recs = _by_input(first)
    for name, reason in folder_run["expect"]["bad"].items():
        assert recs[name].status == "failed" and reason in recs[name].error, (name, recs[name].error)
        assert not Path(recs[name].output).exists()
    assert recs["notes.txt"].status == "skipped" and recs["notes.txt"].reason == "not an image (no image suffix)"
    assert "SKIPPED 1 file(s) that are not images (1 .txt; each named in the report)" in first.lines
    assert first.exit_code == 3
    assert first.summary.failed == len(folder_run["expect"]["bad"])
    assert first.summary.ok == len(folder_run["expect"]["good"])
    assert any("FAILED sub/trunc.png: truncated" in line for line in first.lines)


def test_report_holds_one_record_per_input_and_both_speeds(folder_run):
    first = folder_run["first"]
    report = folder_run["first_report"]
    assert json.loads(first.report_path.read_text())["summary"]["skipped"] > 0  # the second run's, now
    assert first.report_path == folder_run["out"] / "restore-report.json"
    assert len(report["records"]) == first.summary.total == len(folder_run["expect"]["good"]) + 5 + 1  # + notes.txt
    ok = [r for r in report["records"] if r["status"] == "ok"]
    assert all(r["seconds"] > 0 and r["output"] and r["error"] is None for r in ok)
    failed = [r for r in report["records"] if r["status"] == "failed"]
    assert all(r["error"] for r in failed)
    s = report["summary"]
    assert s["images_per_second"] > 0 and s["inference_images_per_second"] >= s["images_per_second"]
    assert 0 < s["model_busy_share"] <= 1
    assert not list(folder_run["out"].rglob("*.tmp"))  # atomic writes leave nothing behind


def test_second_run_skips_everything_and_rewrites_nothing(folder_run):
    second = folder_run["second"]
    good = folder_run["expect"]["good"]
    assert second.summary.already_there == len(good) and second.summary.ok == 0
    assert second.summary.skipped == len(good) + 1  # notes.txt
    assert second.summary.failed == len(folder_run["expect"]["bad"]) and second.exit_code == 3
    now = {p: p.stat().st_mtime_ns for p in folder_run["mtimes"]}
    assert now == folder_run["mtimes"]


@pytest.fixture(scope="module")
def ensemble_restorer(tmp_path_factory):
    """A tiny graph that runs the flip ensemble (RestorationPipeline): its mirrored view's
    pooling grid starts at the image's right edge, which tiling must respect too."""
    from export.onnx_export import build_metadata, save_onnx, to_onnx_proto
    from restore_core.pipeline import RestorationPipeline
    from tests.conftest import make_tiny_model

    pipeline = RestorationPipeline(make_tiny_model(seed=13), flip_ensemble=True).eval()
    path = tmp_path_factory.mktemp("ensemble") / "ensemble.onnx"
    save_onnx(to_onnx_proto(pipeline, "pixels"), path, build_metadata(pipeline, "pixels", "fp32", parity=None))
    return Restorer(path, device="cpu")


@pytest.mark.parametrize("graph", ["one view", "flip ensemble"])
def test_tiled_equals_untiled_within_fp32_tolerance(graph, request):
    restorer = request.getfixturevalue("restorer" if graph == "one view" else "ensemble_restorer")
    rgb = _rgb(70, 90)  # 90 is not a multiple of the stride (4)
    whole = restorer.restore_rgb(rgb, tile=0)
    # 16-pixel cores with the receptive-field halo, below what --tile gives (least_tile): run as planned
    tiled = restorer.run_rgb(rgb, 16)
    assert restorer.tile_for(70, 90, 16) == least_tile(restorer.halo, restorer.stride) > 16
    assert whole[3] == 0 and tiled[3] == 5 * 6
    ref = [whole[0][None], whole[1][None, ..., None], whole[2][None]]
    got = [tiled[0][None], tiled[1][None, ..., None], tiled[2][None]]
    figures = pixel_parity(rgb[None], ref, got)
    assert violations(figures, FP32) == [], figures
    assert 0.2 < (whole[1] > 0).mean() < 0.8


def test_batched_equals_single(restorer):
    imgs = np.stack([_rgb(24, 28) for _ in range(3)])
    batched = restorer.infer(imgs)
    for i in range(3):
        single = restorer.infer(imgs[i:i + 1])
        figures = pixel_parity(imgs[i:i + 1], [o[i:i + 1] for o in batched], single)
        assert violations(figures, FP32) == []


def test_restore_api_pil_and_numpy(restorer):
    rgba = Image.fromarray(_rgb(20, 24, 4), "RGBA")
    res = restorer.restore(rgba)
    assert res.image.mode == "RGBA" and res.mask.mode == "L" and res.predicted.size == (24, 20)
    m = np.asarray(res.mask) > 0
    assert np.array_equal(np.asarray(res.image)[~m], np.asarray(rgba)[~m])
    assert abs(res.masked_share - m.mean()) < 1e-12
    deep = RNG.integers(0, 65536, (10, 12)).astype(np.uint16)
    out = restorer.restore(deep)
    assert out.image.dtype == np.uint16 and out.image.shape == (10, 12) and out.mask.shape == (10, 12)
    assert np.array_equal(out.image[out.mask == 0], deep[out.mask == 0])


def test_colliding_output_names_both_reported(restorer, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(_rgb(16, 16)).save(src / "a.png")
    Image.fromarray(_rgb(16, 16)).save(src / "a.jpg")
    Image.fromarray(_rgb(16, 16)).save(src / "b.png")
    result = restorer.restore_folder(src, tmp_path / "out", format="png", progress=False)
    recs = _by_input(result)
    assert recs["a.png"].status == recs["a.jpg"].status == "failed"
    assert "a.jpg" in recs["a.png"].error and "a.png" in recs["a.jpg"].error
    assert not (tmp_path / "out" / "a.png").exists()
    assert recs["b.png"].status == "ok" and result.exit_code == 3


def test_output_inside_input_and_output_equal_input(restorer, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(_rgb(16, 16)).save(src / "a.png")
    with pytest.raises(PlanError, match="would overwrite the input"):
        restorer.restore_folder(src, src, progress=False)
    assert not (src / "restore-report.json").exists()
    # Inside INPUT is fine: the outputs' folder is never read back as input.
    first = restorer.restore_folder(src, src / "restored", save_mask=True, progress=False)
    second = restorer.restore_folder(src, src / "restored", save_mask=True, progress=False)
    assert [r.input for r in first.records] == ["a.png"] and first.summary.ok == 1
    assert [r.input for r in second.records] == ["a.png"] and second.summary.skipped == 1
    # Into INPUT itself with --format making every name new: names cannot collide, allowed.
    third = restorer.restore_folder(src / "restored", src / "restored", format="tiff", progress=False)
    assert third.summary.ok == 2 and (src / "restored" / "a.tif").exists()  # a.png and masks/a.png


def test_resume_and_overwrite(restorer, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        Image.fromarray(_rgb(16, 20)).save(src / f"{i}.png")
    out = tmp_path / "out"
    restorer.restore_folder(src, out, save_mask=True, progress=False)
    (out / "1.png").unlink()  # as if interrupted before this one was written
    resumed = restorer.restore_folder(src, out, save_mask=True, progress=False)
    assert sorted(r.status for r in resumed.records) == ["ok", "skipped", "skipped"]
    assert _by_input(resumed)["1.png"].status == "ok"
    again = restorer.restore_folder(src, out, save_mask=True, overwrite=True, progress=False)
    assert again.summary.ok == 3


def test_single_image_to_file_and_to_folder(restorer, tmp_path):
    Image.fromarray(_rgb(18, 22)).save(tmp_path / "one.jpg")
    to_file = restorer.restore_folder(tmp_path / "one.jpg", tmp_path / "res" / "one.png", progress=False)
    assert to_file.records[0].status == "ok" and Image.open(tmp_path / "res" / "one.png").format == "PNG"
    to_dir = restorer.restore_folder(tmp_path / "one.jpg", tmp_path / "dir", progress=False)
    assert Path(to_dir.records[0].output) == tmp_path / "dir" / "one.jpg"
    with pytest.raises(PlanError, match="no such file"):
        run_folder(restorer, tmp_path / "nope", tmp_path / "x", RunOptions(progress=False))


def test_inference_error_without_message_fails_those_images_only(tiny_onnx, tmp_path, monkeypatch):
    """A bare MemoryError() (empty message) is reported by its type; the run still finishes."""
    from runtime import Restorer

    restorer = Restorer(tiny_onnx, device="cpu")
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(_rgb(16, 16)).save(src / "a.png")

    def boom(batch, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(restorer, "infer", boom)
    result = restorer.restore_folder(src, tmp_path / "out", progress=False)
    rec = _by_input(result)["a.png"]
    assert rec.status == "failed" and rec.error == "inference failed: MemoryError"
    assert result.exit_code == 3 and result.report_path.is_file()


def test_the_walk_keeps_os_walk_order_and_accounts_for_every_entry(tmp_path):
    """runtime/scan.py walks with a stack and follows links after the real tree, yet lists entries in
    the order `os.walk` (sorted) gives, which the Ray engine's URI listing follows too."""
    from runtime.scan import scan

    for rel in ("b.png", "a/z.png", "a/c/d.png", "a/b.txt", "ab.png", "a b/x.png", "c/y.jpg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    expected = []
    for here, dirs, files in os.walk(tmp_path):
        dirs.sort()
        expected += [os.path.relpath(os.path.join(here, f), tmp_path) for f in sorted(files)]
    entries = scan(tmp_path)
    assert [e.rel for e in entries] == expected
    assert [e.status for e in entries if e.rel == "a/b.txt"] == ["skipped"]
