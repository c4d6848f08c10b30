"""A PNG cut short and closed again is refused (runtime/cut_short.py)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import png
import pytest
from PIL import Image

from runtime.cut_short import jpeg_problem, missing_bytes, needed_bytes
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



def test_the_stream_is_inflated_again_only_where_a_cut_could_be(monkeypatch):
    import runtime.cut_short as cut_short

    calls = []
    monkeypatch.setattr(cut_short, "missing_bytes", lambda f: calls.append(f) or 0)
    rgb = np.random.default_rng(7).integers(1, 256, (20, 30, 3), dtype=np.uint8)
    for last_row, interlace in ((1, False), (0, False), (1, True)):
        rows = rgb.copy()
        rows[-1] *= last_row
        buf = io.BytesIO()
        png.Writer(30, 20, greyscale=False, interlace=interlace).write(buf, rows.reshape(20, -1).tolist())
        img = Image.open(io.BytesIO(buf.getvalue()))
        img.load()
        cut_short.problem(img, buf)
    assert len(calls) == 2  # the black last row and the interlaced file; not the plain whole one


def test_an_interlaced_png_cut_between_passes_is_refused(tmp_path):
    rows = np.random.default_rng(8).integers(1, 256, (40, 48 * 3))
    buf = io.BytesIO()
    png.Writer(48, 40, greyscale=False, interlace=True).write(buf, rows.tolist())
    data = buf.getvalue()
    at = data.index(b"IDAT") - 4
    length = struct.unpack(">I", data[at:at + 4])[0]
    raw = zlib.decompress(data[at + 8:at + 8 + length])
    short = zlib.compress(raw[:len(raw) // 2])  # the early passes only, closed properly
    path = tmp_path / "half.png"
    path.write_bytes(data[:at] + _chunk(b"IDAT", short) + _chunk(b"IEND", b""))
    with pytest.raises(ImageError, match="^truncated"):  # by Pillow or by the count: refused either way
        read_image(path)


def _jpeg(size=(64, 48), **save) -> bytes:
    rgb = np.random.default_rng(9).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90, **save)
    return buf.getvalue()


@pytest.mark.parametrize("save", [{}, {"progressive": True}, {"subsampling": 0}])
def test_a_jpeg_cut_and_closed_with_an_end_marker_is_refused(tmp_path, save):
    data = _jpeg(**save)
    cut = data[:len(data) * 6 // 10] + b"\xff\xd9"
    Image.open(io.BytesIO(cut)).load()  # Pillow decodes it, the blocks it lacks mid-grey, and says nothing
    assert jpeg_problem(io.BytesIO(data)) is None
    path = tmp_path / "cut.jpg"
    path.write_bytes(cut)
    with pytest.raises(ImageError, match=r'^truncated image data: libjpeg reads "Corrupt JPEG data: premature end of data segment"$'):
        read_image(path)


@pytest.mark.parametrize("mode", ["L", "CMYK"])
def test_a_whole_grey_or_cmyk_jpeg_is_whole_and_a_cut_one_is_not(mode):
    rgb = np.random.default_rng(10).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).convert(mode).save(buf, "JPEG", quality=85)
    data = buf.getvalue()
    assert jpeg_problem(io.BytesIO(data)) is None
    assert jpeg_problem(io.BytesIO(data[:len(data) * 7 // 10] + b"\xff\xd9")).startswith("truncated image data")


def test_a_jpegs_harmless_warnings_and_what_pillow_refuses_are_left_alone():
    data = _jpeg()
    # Bytes before the end marker, as some cameras leave: libjpeg warns, the pixels are all there.
    assert jpeg_problem(io.BytesIO(data[:-2] + b"\0\0\0\xff\xd9")) is None
    assert jpeg_problem(io.BytesIO(data + b"trailing bytes after the end")) is None
    # Cut with no end marker: libjpeg's "Premature end of JPEG file", which Pillow refuses itself.
    assert jpeg_problem(io.BytesIO(data[:len(data) // 2])) is None
    f = io.BytesIO(data[:len(data) // 2] + b"\xff\xd9")
    f.seek(3)
    assert jpeg_problem(f) and f.tell() == 3


def test_restore_run_names_the_cut_jpeg_and_restores_the_rest(tiny_onnx, tmp_path):
    from click.testing import CliRunner

    from runtime.cli import main

    src = tmp_path / "in"
    src.mkdir()
    data = _jpeg()
    (src / "whole.jpg").write_bytes(data)
    (src / "cut.jpg").write_bytes(data[:len(data) // 2] + b"\xff\xd9")
    result = CliRunner().invoke(main, ["--model", str(tiny_onnx), str(src), str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 3, result.output
    assert 'FAILED cut.jpg: truncated image data: libjpeg reads "Corrupt JPEG data: premature end of data segment"' in result.output
    assert (tmp_path / "out" / "whole.jpg").exists() and not (tmp_path / "out" / "cut.jpg").exists()
