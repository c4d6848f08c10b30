"""An EXIF block Pillow cannot read whole is carried byte for byte, its orientation read and set
tag by tag (runtime/exif_raw.py)."""

from __future__ import annotations

import io
import json
import struct
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from runtime import exif_raw
from runtime.cli import main
from runtime.image_read import read_image


def _broken_exif(orientation: int = 6) -> bytes:
    """Big-endian IFD0 of three tags whose Make points 1 kB past the block's end: Pillow reads none."""
    entries = [(0x010F, 2, 30, 0x400), (0x0112, 3, 1, orientation << 16), (0x0131, 2, 4, int.from_bytes(b"abc\0", "big"))]
    ifd = struct.pack(">H", len(entries)) + b"".join(struct.pack(">HHII", *e) for e in entries) + struct.pack(">I", 0)
    return b"Exif\0\0MM\0*" + struct.pack(">I", 8) + ifd


def _photo(exif: bytes, size=(64, 48)) -> bytes:
    rgb = np.random.default_rng(3).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    rgb[10:30, 20:44] = (255, 0, 0)  # something for a model to find
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=92, exif=exif)
    return buf.getvalue()


def test_a_block_pillow_reads_whole_is_left_to_pillow():
    exif = Image.Exif()
    exif[0x010F], exif[0x0112] = "camera", 3
    exif.get_ifd(0x8769)[0x9003] = "2024:05:01 10:00:00"
    exif.get_ifd(0x8825)[0x0001] = "N"
    raw = exif.tobytes()
    assert exif_raw.tag_counts(raw) == {0: 4, 0x8769: 1, 0x8825: 1}
    assert exif_raw.pillow_reads_whole(raw) and exif_raw.orientation(raw) == 3
    assert exif_raw.kept_raw(Image.open(io.BytesIO(_photo(raw)))) is None


def test_a_broken_block_is_read_tag_by_tag_and_changed_in_two_bytes_only():
    raw = _broken_exif(6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert not exif_raw.pillow_reads_whole(raw)
        assert len(Image.open(io.BytesIO(_photo(raw))).getexif()) == 0  # Pillow: all or nothing
    assert exif_raw.orientation(raw) == 6
    turned = exif_raw.with_orientation(raw, 1)
    assert len(turned) == len(raw) and exif_raw.orientation(turned) == 1
    assert sum(a != b for a, b in zip(raw, turned)) == 1  # the SHORT's low byte (big-endian 00 06 -> 00 01)
    for lying in (raw[:20], b"Exif\0\0II*\0\xff\xff\xff\x7f", b"", b"not exif"):
        assert exif_raw.orientation(lying) is None and exif_raw.with_orientation(lying, 1) == lying


def test_reading_turns_the_pixels_by_the_broken_blocks_orientation_and_carries_it(tmp_path):
    path = tmp_path / "p.jpg"
    path.write_bytes(_photo(_broken_exif(6)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img, info = read_image(path)
    assert img.size == (48, 64) and info.orientation == 6  # turned a quarter, as viewers show it
    assert info.exif == exif_raw.with_orientation(_broken_exif(6), 1)
    assert any(n.startswith("EXIF carried as it was (Pillow reads 0 of its 3 tags)") for n in info.notes)


@pytest.mark.parametrize("fmt", ["png", None])
def test_restore_run_writes_the_block_back_as_it_came(tiny_onnx, tmp_path, fmt):
    src = tmp_path / "in"
    src.mkdir()
    (src / "p.jpg").write_bytes(_photo(_broken_exif(6)))
    args = ["--model", str(tiny_onnx), str(src), str(tmp_path / "out")] + (["--format", fmt] if fmt else [])
    with warnings.catch_warnings(record=True) as shown:  # what reaches Python's own display
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    # Said once, in the file's line; not by Python, not when the writer reads the block again.
    assert "WARNED p.jpg: Truncated File Read" in result.output and not shown
    out = Image.open(tmp_path / "out" / f"p.{fmt or 'jpg'}")
    # The turned pixels say orientation 1; a JPEG written back on its source's grid says 6, as it came.
    orientation = 1 if out.size == (48, 64) else 6
    assert (out.size, orientation) in {((48, 64), 1), ((64, 48), 6)} and (fmt is None or orientation == 1)
    assert out.info["exif"] == exif_raw.with_orientation(_broken_exif(6), orientation)
    record = json.loads((tmp_path / "out" / "restore-report.json").read_text())["records"][0]
    assert record["written"] == "changed"  # written here, not the input's bytes copied
    assert any(n.startswith("EXIF carried as it was") for n in record["notes"])


def _broken_exif_with_thumbnail(colour=(0, 255, 0)) -> bytes:
    """`_broken_exif` whose first directory links a second one holding a 16x12 JPEG thumbnail."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 12), colour).save(buf, "JPEG", quality=90)
    thumb = buf.getvalue()
    head = bytearray(_broken_exif(6))
    ifd1 = len(head) - 6  # offsets count from the TIFF header, after "Exif\0\0"
    head[-4:] = struct.pack(">I", ifd1)  # IFD0's link to the next directory
    data = ifd1 + 2 + 2 * 12 + 4
    ifd = struct.pack(">H", 2) + struct.pack(">HHII", 0x0201, 4, 1, data) + struct.pack(">HHII", 0x0202, 4, 1, len(thumb))
    return bytes(head) + ifd + struct.pack(">I", 0) + thumb


def test_a_carried_blocks_thumbnail_of_the_unrestored_photo_is_cut_off():
    from runtime import jpeg_pictures

    raw = _broken_exif_with_thumbnail()
    assert jpeg_pictures.exif_thumbnail(raw) is not None
    cut = exif_raw.without_thumbnail(raw)
    assert len(cut) == len(raw) and jpeg_pictures.exif_thumbnail(cut) is None
    assert cut[:len(_broken_exif(6)) - 4] == raw[:len(_broken_exif(6)) - 4]  # the first directory as it was, but its link
    assert b"\xff\xd8" not in cut[len(_broken_exif(6)):]  # the old thumbnail's bytes gone, not only unlinked
    assert exif_raw.orientation(cut) == 6
    for plain in (_broken_exif(6), b"", b"Exif\0\0II*\0\xff\xff\xff\x7f"):
        assert exif_raw.without_thumbnail(plain) == plain


@pytest.mark.parametrize("fmt", ["png", None])
def test_restore_run_writes_no_thumbnail_of_the_unrestored_photo(tiny_onnx, tmp_path, fmt):
    from runtime import jpeg_pictures

    src = tmp_path / "in"
    src.mkdir()
    (src / "p.jpg").write_bytes(_photo(_broken_exif_with_thumbnail((0, 255, 0))))
    args = ["--model", str(tiny_onnx), str(src), str(tmp_path / "out")] + (["--format", fmt] if fmt else [])
    assert CliRunner().invoke(main, args).exit_code == 0
    out = Image.open(tmp_path / "out" / f"p.{fmt or 'jpg'}")
    thumb = jpeg_pictures.exif_thumbnail(out.info["exif"])
    if fmt == "png":
        assert thumb is None  # a PNG has no thumbnail made for it
    else:  # made again from the restored photo: not the source's solid green
        shown = np.asarray(Image.open(io.BytesIO(thumb)).convert("RGB")).reshape(-1, 3).mean(axis=0)
        assert not (shown[1] > 200 and shown[0] < 50 and shown[2] < 50), shown
