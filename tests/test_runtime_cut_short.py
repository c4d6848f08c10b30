"""A PNG or JPEG cut short and closed again is refused (runtime/cut_short.py)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import png
import pytest
from PIL import Image

from runtime.cut_short import grey_tail, missing_bytes, needed_bytes
from runtime.image_read import read_image
from runtime.images import ImageError


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _short_png(width: int, height: int, rows: int) -> bytes:
    """An RGB PNG whose one zlib stream, closed properly, holds only its first `rows` rows."""
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    raw = b"".join(b"\0" + pixels[r].tobytes() for r in range(rows))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "1", "I;16"])
def test_a_whole_png_lacks_nothing(mode):
    rgb = np.random.default_rng(1).integers(0, 256, (23, 37, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).convert(mode).save(buf, "PNG")
    assert missing_bytes(io.BytesIO(buf.getvalue())) == 0


@pytest.mark.parametrize("bit_depth,planes", [(8, 3), (16, 4), (1, 1), (4, 1)])
def test_the_bytes_needed_are_what_an_interlaced_writer_writes(bit_depth, planes):
    width, height = 29, 19  # not a multiple of 8: every Adam7 pass ends in a partial block
    rows = np.random.default_rng(2).integers(0, 2 ** bit_depth, (height, width * planes))
    buf = io.BytesIO()
    png.Writer(width, height, greyscale=planes == 1, alpha=planes == 4, bitdepth=bit_depth,
               interlace=True).write(buf, rows.tolist())
    data = buf.getvalue()
    idat, at = b"", 8
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        idat += data[at + 8:at + 8 + length] if kind == b"IDAT" else b""
        at += 12 + length
    colour = {1: 0, 3: 2, 4: 6}[planes]
    assert needed_bytes(width, height, bit_depth, colour, True) == len(zlib.decompress(idat))
    assert missing_bytes(io.BytesIO(data)) == 0


def test_a_png_closed_early_is_refused_with_what_it_lacks(tmp_path):
    data = _short_png(30, 20, 7)
    assert missing_bytes(io.BytesIO(data)) == 13 * (1 + 30 * 3)
    Image.open(io.BytesIO(data)).load()  # Pillow takes it as whole: its missing rows black
    path = tmp_path / "short.png"
    path.write_bytes(data)
    with pytest.raises(ImageError, match=r"truncated image data: its pixels end 1,183 bytes before its last row"):
        read_image(path)
    path.write_bytes(_short_png(30, 20, 20))
    assert read_image(path)[0].size == (30, 20)


def test_the_files_position_is_kept_and_a_foreign_file_lacks_nothing():
    f = io.BytesIO(_short_png(10, 10, 3))
    f.seek(5)
    assert missing_bytes(f) == 7 * 31 and f.tell() == 5
    assert missing_bytes(io.BytesIO(b"GIF89a not a png")) == 0


def _jpeg(rgb: np.ndarray, **params) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90, **params)
    return buf.getvalue()


def test_a_jpeg_cut_short_and_closed_is_refused_and_a_whole_one_read(tmp_path):
    y, x = np.mgrid[0:96, 0:128]
    noise = np.random.default_rng(4).normal(0, 6, (96, 128, 3))
    rgb = np.clip(np.stack([x * 2, y * 2, x + y], -1) + noise, 0, 255).astype(np.uint8)
    data = _jpeg(rgb)
    cut = data[:len(data) // 2] + b"\xff\xd9"  # libjpeg: "premature end of data segment", the rest mid-grey
    img = Image.open(io.BytesIO(cut))
    img.load()  # Pillow takes it as whole
    assert grey_tail(img) and (np.asarray(img)[-8:] == 128).all()
    (tmp_path / "cut.jpg").write_bytes(cut)
    with pytest.raises(ImageError, match=r"truncated image data: its last 8 rows are exactly mid-grey"):
        read_image(tmp_path / "cut.jpg")
    (tmp_path / "whole.jpg").write_bytes(data)
    assert read_image(tmp_path / "whole.jpg")[0].size == (128, 96)
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    cut_grey = _jpeg(grey)[:len(_jpeg(grey)) // 2] + b"\xff\xd9"
    (tmp_path / "cut_grey.jpg").write_bytes(cut_grey)
    with pytest.raises(ImageError, match=r"mid-grey"):
        read_image(tmp_path / "cut_grey.jpg")


def test_a_grey_strip_short_of_the_full_width_is_not_a_cut():
    rgb = np.full((64, 64, 3), 128, np.uint8)
    rgb[-8:, :4] = 127  # one level off, at the very edge
    assert not grey_tail(Image.open(io.BytesIO(_jpeg(rgb, subsampling=0))))
    assert grey_tail(Image.open(io.BytesIO(_jpeg(np.full((64, 64, 3), 128, np.uint8)))))
