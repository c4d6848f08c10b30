"""Write-back rules of `restore-run`: a JPEG comes back with its own quantization tables and
subsampling, an image in which nothing is found comes back as its own bytes, a file whose
suffix lies is written back as what it holds, and the report says which images were changed,
which copied, and what metadata an output format could not hold.

Two tiny graphs pin the mask: one finds nothing anywhere, one replaces every pixel.
"""

from __future__ import annotations

import io
import json
import os
import stat

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, JpegImagePlugin

from runtime.cli import main

RNG = np.random.default_rng(22)


def _shift_mask_head(tiny_onnx, path, bias_shift: float):
    """The tiny graph with its mask head's bias pushed far below (nothing found) or above (every
    pixel found) the threshold: the same graph, one initializer changed (no new export)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(tiny_onnx))
    for init in model.graph.initializer:
        if init.name.endswith("mask_decoder.head.bias"):
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + np.float32(bias_shift), init.name))
            break
    else:
        raise AssertionError("no mask head bias in the tiny graph")
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def finds_nothing(tiny_onnx, tmp_path_factory):
    return _shift_mask_head(tiny_onnx, tmp_path_factory.mktemp("onnx") / "nothing.onnx", -1000.0)


@pytest.fixture(scope="module")
def finds_all(tiny_onnx, tmp_path_factory):
    return _shift_mask_head(tiny_onnx, tmp_path_factory.mktemp("onnx") / "all.onnx", 1000.0)


def _photo(h=48, w=64):
    """A smooth photo-like image (JPEG tables matter on it), with some noise."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (h + w) + 64], axis=2)
    return np.clip(base + RNG.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def _run(model, inp, out, *args):
    result = CliRunner().invoke(main, ["--model", str(model), str(inp), str(out), "--device", "cpu", "--quiet", *args])
    report = json.loads((out / "restore-report.json").read_text()) if (out / "restore-report.json").exists() else None
    return result, report


def _records(report):
    return {r["input"]: r for r in report["records"]}


# ---------------------------------------------------------------------------------------------
# JPEG: its own tables and subsampling.

JPEG_SOURCES = {  # name: (mode, save keywords)
    "4:4:4": ("RGB", {"quality": 83, "subsampling": 0}),
    "4:2:2": ("RGB", {"quality": 83, "subsampling": 1}),
    "4:2:0": ("RGB", {"quality": 83, "subsampling": 2}),
    "4:4:4 progressive, custom tables": ("RGB", {"qtables": [list(range(1, 65)), list(range(64, 0, -1))],
                                                 "subsampling": 0, "progressive": True}),
    "grey": ("L", {"quality": 70}),
    "CMYK": ("CMYK", {"quality": 88}),
}


@pytest.mark.parametrize("name", list(JPEG_SOURCES))
def test_jpeg_written_with_its_own_tables_and_subsampling(name, finds_all, tmp_path):
    mode, params = JPEG_SOURCES[name]
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    Image.fromarray(_photo()).convert(mode).save(inp / "p.jpg", "JPEG", **params)
    result, report = _run(finds_all, inp, out)
    assert result.exit_code == 0, result.output
    src, got = Image.open(inp / "p.jpg"), Image.open(out / "p.jpg")
    assert got.mode == mode and _records(report)["p.jpg"]["written"] == "changed"
    assert got.quantization == src.quantization  # every table, every coefficient
    assert [c[1:3] for c in got.layer] == [c[1:3] for c in src.layer]  # sampling factors per component
    assert JpegImagePlugin.get_sampling(got) == JpegImagePlugin.get_sampling(src)
    assert bool(got.info.get("progressive")) == bool(params.get("progressive"))
    assert not np.array_equal(np.asarray(got), np.asarray(src))  # restored (every pixel replaced), not copied


def _exif_with_thumbnail(thumbnail: bytes) -> bytes:
    """EXIF as cameras write it: IFD0 (an artist tag) linked to IFD1, which holds a JPEG preview."""
    import struct

    artist = b"A. Photographer\0"
    ifd0_at = 8
    ifd1_at = ifd0_at + 2 + 12 + 4
    artist_at = ifd1_at + 2 + 2 * 12 + 4
    thumb_at = artist_at + len(artist)
    ifd0 = struct.pack("<H", 1) + struct.pack("<HHII", 0x013B, 2, len(artist), artist_at) + struct.pack("<I", ifd1_at)
    ifd1 = (struct.pack("<H", 2) + struct.pack("<HHII", 0x0201, 4, 1, thumb_at)
            + struct.pack("<HHII", 0x0202, 4, 1, len(thumbnail)) + struct.pack("<I", 0))
    return b"Exif\0\0II*\0" + struct.pack("<I", ifd0_at) + ifd0 + ifd1 + artist + thumbnail


def test_a_changed_jpeg_gets_its_exif_thumbnail_made_again(finds_all, finds_nothing, tmp_path):
    """The EXIF thumbnail (IFD1) is a small picture of the photo as it was read, damage and all:
    a changed file gets one made again from the restored photo (its size and tables), and keeps
    the other tags; a copied file keeps the old one with every other byte."""
    from PIL import ExifTags

    from runtime import jpeg_pictures

    preview = io.BytesIO()
    Image.new("RGB", (16, 12), (255, 0, 0)).save(preview, "JPEG", quality=60)
    inp = tmp_path / "in"
    inp.mkdir()
    Image.fromarray(_photo()).save(inp / "p.jpg", "JPEG", quality=90, exif=_exif_with_thumbnail(preview.getvalue()))
    assert preview.getvalue() in (inp / "p.jpg").read_bytes()
    result, report = _run(finds_all, inp, tmp_path / "changed")
    assert result.exit_code == 0, result.output
    assert _records(report)["p.jpg"]["written"] == "changed" and not _records(report)["p.jpg"]["dropped"]
    got = Image.open(tmp_path / "changed" / "p.jpg")
    exif = got.getexif()
    assert exif[0x013B] == "A. Photographer" and exif.get_ifd(ExifTags.IFD.IFD1)[0x0103] == 6
    thumbnail = Image.open(io.BytesIO(jpeg_pictures.exif_thumbnail(got.info["exif"])))
    assert thumbnail.size == (16, 12) and thumbnail.quantization == Image.open(preview).quantization
    small = np.asarray(got.convert("RGB").resize((16, 12), Image.Resampling.LANCZOS)).astype(int)
    assert np.abs(np.asarray(thumbnail.convert("RGB")).astype(int) - small).mean() < 12  # the restored photo, not red
    result, _ = _run(finds_nothing, inp, tmp_path / "copied")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "copied" / "p.jpg").read_bytes() == (inp / "p.jpg").read_bytes()


def test_a_jfif_file_is_a_jpeg_written_back_under_its_own_name(finds_all, finds_nothing, tmp_path):
    # Browsers on Windows save downloaded JPEGs as .jfif: the same file, restored and written back alike.
    inp = tmp_path / "in"
    inp.mkdir()
    Image.fromarray(_photo()).save(inp / "download.jfif", "JPEG", quality=80, subsampling=2)
    result, report = _run(finds_all, inp, tmp_path / "changed")
    assert result.exit_code == 0, result.output
    got, src = Image.open(tmp_path / "changed" / "download.jfif"), Image.open(inp / "download.jfif")
    assert got.format == "JPEG" and _records(report)["download.jfif"]["written"] == "changed"
    assert got.quantization == src.quantization and JpegImagePlugin.get_sampling(got) == 2
    result, report = _run(finds_nothing, inp, tmp_path / "copied")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "copied" / "download.jfif").read_bytes() == (inp / "download.jfif").read_bytes()
    result, _ = _run(finds_all, inp, tmp_path / "as-png", "--format", "png")
    assert result.exit_code == 0 and Image.open(tmp_path / "as-png" / "download.png").format == "PNG", result.output


def test_jpeg_quality_option_reencodes_at_that_quality_keeping_subsampling(finds_all, tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    Image.fromarray(_photo()).save(inp / "p.jpg", "JPEG", quality=92, subsampling=0)
    result, _ = _run(finds_all, inp, out, "--quality", "60")
    assert result.exit_code == 0, result.output
    reference = io.BytesIO()  # Pillow's standard tables at quality 60
    Image.fromarray(_photo()).save(reference, "JPEG", quality=60, subsampling=0)
    got = Image.open(out / "p.jpg")
    assert got.quantization == Image.open(reference).quantization != Image.open(inp / "p.jpg").quantization
    assert JpegImagePlugin.get_sampling(got) == 0


# ---------------------------------------------------------------------------------------------
# Nothing found: the input's own bytes.


def _clean_inputs(d):
    photo = _photo()
    Image.fromarray(photo).save(d / "photo.jpg", "JPEG", quality=75)
    Image.fromarray(photo).save(d / "shot.png", "PNG", compress_level=9)
    Image.fromarray(photo).save(d / "lossy.webp", "WEBP", quality=70)
    Image.fromarray(np.dstack([photo, RNG.integers(0, 256, photo.shape[:2], dtype=np.uint8)]), "RGBA").save(
        d / "alpha.webp", "WEBP", lossless=True)
    Image.fromarray(photo).save(d / "scan.tif", "TIFF")
    Image.fromarray(photo).save(d / "paint.bmp", "BMP")
    return ["photo.jpg", "shot.png", "lossy.webp", "alpha.webp", "scan.tif", "paint.bmp"]


def test_clean_images_come_back_byte_identical(finds_nothing, tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    names = _clean_inputs(inp)
    os.chmod(inp / "photo.jpg", 0o640)  # mode bits travel with the bytes
    result, report = _run(finds_nothing, inp, out)
    assert result.exit_code == 0, result.output
    records = _records(report)
    for name in names:
        assert (out / name).read_bytes() == (inp / name).read_bytes(), name
        assert records[name]["written"] == "copied" and records[name]["masked_share"] == 0.0
    assert stat.S_IMODE(os.stat(out / "photo.jpg").st_mode) == 0o640
    assert report["summary"]["copied"] == len(names) and report["summary"]["changed"] == 0
    assert f"of the {len(names)} restored: 0 changed, {len(names)} copied as they were (nothing found)" in result.output


def test_clean_image_asked_in_another_format_is_rewritten_not_copied(finds_nothing, tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    Image.fromarray(_photo()).save(inp / "photo.jpg", "JPEG", quality=90)
    result, report = _run(finds_nothing, inp, out, "--format", "png")
    assert result.exit_code == 0, result.output
    assert Image.open(out / "photo.png").format == "PNG" and _records(report)["photo.jpg"]["written"] == "rewritten"
    assert np.array_equal(np.asarray(Image.open(out / "photo.png")), np.asarray(Image.open(inp / "photo.jpg")))
    assert "0 changed, 0 copied as they were (nothing found), 1 rewritten" in result.output


def test_found_and_nothing_found_counted_apart(finds_all, tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    _clean_inputs(inp)
    result, report = _run(finds_all, inp, out)
    assert result.exit_code == 0, result.output
    assert {r["written"] for r in report["records"]} == {"changed"}
    assert report["summary"]["changed"] == 6 and report["summary"]["copied"] == 0
    assert (out / "photo.jpg").read_bytes() != (inp / "photo.jpg").read_bytes()


def test_the_solid_check_is_for_the_shipped_model_unless_asked(finds_all, tmp_path):
    """A model of one's own may be trained on damage that is not solid paint, so its marks in a
    lossless file are kept; --solid-check asks for the shipped model's rule: a PNG of a noisy
    photo, all of it marked and nothing of it solid, is then copied as it was (runtime/solid.py)."""
    from runtime import Restorer

    assert Restorer(device="cpu").solid_check is True  # the shipped weights
    assert Restorer(finds_all, device="cpu").solid_check is False
    inp = tmp_path / "in"
    inp.mkdir()
    Image.fromarray(_photo()).save(inp / "photo.png")
    Image.fromarray(_photo()).save(inp / "photo.jpg", quality=90)
    for args, png in (((), "changed"), (("--solid-check",), "copied")):
        out = tmp_path / ("out" + "".join(args))
        result, report = _run(finds_all, inp, out, *args)
        assert result.exit_code == 0, result.output
        records = _records(report)
        assert records["photo.png"]["written"] == png and records["photo.jpg"]["written"] == "changed"
    assert (tmp_path / "out--solid-check" / "photo.png").read_bytes() == (inp / "photo.png").read_bytes()


# ---------------------------------------------------------------------------------------------
# A suffix that lies, and metadata a format cannot hold.


def test_rgba_png_named_jpg_is_written_back_as_what_it_holds(finds_all, tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    rgba = np.dstack([_photo(), RNG.integers(0, 256, (48, 64), dtype=np.uint8)])
    Image.fromarray(rgba, "RGBA").save(inp / "liar.jpg", "PNG")
    result, report = _run(finds_all, inp, out)
    assert result.exit_code == 0, result.output
    got = Image.open(out / "liar.jpg")
    assert got.format == "PNG" and got.mode == "RGBA"
    assert np.array_equal(np.asarray(got)[..., 3], rgba[..., 3])  # alpha whole, never flattened
    record = _records(report)["liar.jpg"]
    assert record["output_mode"] == "RGBA" and any("holds a PNG image" in n for n in record["notes"])
    # Asked for a JPEG, the alpha cannot be kept: that is said in the summary, not only in a note.
    result, report = _run(finds_all, inp, tmp_path / "asked", "--format", "jpeg")
    assert result.exit_code == 0 and Image.open(tmp_path / "asked" / "liar.jpg").format == "JPEG"
    assert "LOSSY liar.jpg: alpha dropped (JPEG cannot store it)" in result.output


def test_metadata_an_output_format_cannot_hold_is_named(finds_all, tmp_path):
    from PIL import PngImagePlugin

    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    text = PngImagePlugin.PngInfo()
    text.add_text("Title", "a harbour")
    Image.fromarray(_photo()).save(inp / "t.png", "PNG", pnginfo=text)
    result, report = _run(finds_all, inp, out, "--format", "jpeg")
    assert result.exit_code == 0, result.output
    assert "1 restored (1 lossy, see below)" in result.output
    assert "LOSSY t.png: PNG chunk tEXt not kept (JPEG cannot hold it)" in result.output
    assert _records(report)["t.png"]["dropped"] == ["PNG chunk tEXt not kept (JPEG cannot hold it)"]
    # The same file into PNG keeps its chunk, and says nothing is lost.
    result, report = _run(finds_all, inp, tmp_path / "png")
    assert "LOSSY" not in result.output and Image.open(tmp_path / "png" / "t.png").text == {"Title": "a harbour"}


def test_nothing_found_in_a_multipage_tiff_copies_every_page(finds_nothing, tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    pages = [Image.fromarray(_photo(20, 24)) for _ in range(3)]
    pages[0].save(inp / "pages.tif", save_all=True, append_images=pages[1:])
    result, report = _run(finds_nothing, inp, out, "--allow-lossy")
    assert result.exit_code == 0 and "LOSSY" not in result.output, result.output
    assert (out / "pages.tif").read_bytes() == (inp / "pages.tif").read_bytes()
    assert Image.open(out / "pages.tif").n_frames == 3 and _records(report)["pages.tif"]["dropped"] == []


def test_an_input_changed_after_decoding_is_never_copied(tmp_path):
    from runtime import job_io
    from runtime.image_metadata import digest
    from runtime.images import SourceInfo
    from runtime.plan import Job
    from runtime.report import Record

    src, dst = tmp_path / "a.png", tmp_path / "out" / "a.png"
    buf = io.BytesIO()
    Image.fromarray(_photo(8, 8)).save(buf, "PNG")
    source = SourceInfo(format="PNG", digest=digest(buf.getvalue()))  # the file as it was decoded
    Image.fromarray(_photo(8, 8)).save(src, "PNG")  # another image, by the time of the write
    job = Job(source=src, output=dst, format="PNG", mask=None, predicted=None, record=Record(input="a.png"))
    assert job_io._unchanged_input(job, source) is None
    src.write_bytes(buf.getvalue())  # the same bytes again: copied
    assert job_io._unchanged_input(job, source) == buf.getvalue()
